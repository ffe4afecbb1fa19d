"""ARWP's one-pass step (spec §5 (b)3): the cost of SGD, with the perturbed gradient only."""

from __future__ import annotations

import torch
from torch import nn

from yw_core.interfaces import TrainStep
from yw_plugin_marwp.adaptive import FisherScale, ramped_sigma
from yw_plugin_rwp.noise import FilterNoise


class ARWPStep(TrainStep):
    """Per update: add noise with std sigma_t ||W_i|| / sqrt(1 + eta S_i), forward and backward
    one batch, restore the weights exactly, fold the raw gradient into F, and let the base
    optimizer step from the clean weights with the perturbed gradient.

    sigma_t ramps from sigma0 to sigma0 (1 + inc) over the `total_updates` that `begin` gives.
    BatchNorm statistics update as usual: this perturbed pass is the only pass there is.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        runtime,
        *,
        sigma: float,
        inc: float,
        eta: float,
        beta: float,
    ):
        super().__init__(model, optimizer, runtime)
        if not sigma >= 0:
            raise ValueError(f"sigma (the noise scale) must be >= 0, got {sigma}")
        if not inc >= 0:
            raise ValueError(f"inc (the growth of sigma over training) must be >= 0, got {inc}")
        self.sigma0, self.inc = float(sigma), float(inc)
        self.noise = FilterNoise.for_optimizer(optimizer, runtime)
        self.fisher = FisherScale(self.noise.layout, eta=eta, beta=beta)
        self.updates = 0

    def sigma_at(self, update: int) -> float:
        """The noise scale of update number `update` (0-based): sigma0 at 0, sigma0 (1 + inc) at
        `total_updates`."""
        if self.inc == 0:
            return self.sigma0
        if self.total_updates is None:
            raise ValueError(
                "ARWP's sigma ramp needs the number of updates: call begin(total_updates) before "
                "the first step (yw_core.train.fit does)"
            )
        return ramped_sigma(self.sigma0, self.inc, update / max(self.total_updates, 1))

    def step(self, batch, loss_fn) -> torch.Tensor:
        """One perturbed forward/backward and one base-optimizer update."""
        self.optimizer.zero_grad(set_to_none=True)
        self.noise.perturb(self.sigma_at(self.updates), self.fisher.scale())
        try:
            loss = loss_fn(self.model, batch)
            loss.backward()
        finally:
            self.noise.restore()
        self.fisher.update()
        self.optimizer.step()
        self.updates += 1
        return loss.detach()
