"""RWP's two training steps: both passes in one process, or split over even and odd ranks.

Both give the update direction g = alpha * g(w + eps; B2) + (1 - alpha) * g(w; B1): the clean and
the perturbed gradients come from different mini-batches, eps is fresh filter-wise noise each
update, and the base optimizer steps from the clean weights (weight decay acts on them).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from yw_core.interfaces import TrainStep
from yw_plugin_rwp.batchnorm import frozen_bn_stats
from yw_plugin_rwp.noise import FilterNoise


def check_mix(alpha: float, gamma: float) -> None:
    """ValueError unless the mixing weight is in [0, 1] and the noise scale is >= 0."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha (the weight of the perturbed loss) must be in [0, 1], got {alpha}")
    if not gamma >= 0:
        raise ValueError(f"gamma (the noise scale) must be >= 0, got {gamma}")


def mix_gradients(
    params: Sequence[torch.Tensor], clean: Sequence[torch.Tensor | None], alpha: float
) -> None:
    """Set each p.grad (the perturbed gradient) to alpha * p.grad + (1 - alpha) * clean."""
    pairs = [(p.grad, c) for p, c in zip(params, clean) if p.grad is not None and c is not None]
    if pairs:
        perturbed, kept = (list(t) for t in zip(*pairs))
        torch._foreach_mul_(perturbed, alpha)
        torch._foreach_add_(perturbed, kept, alpha=1 - alpha)
    for p, c in zip(params, clean):  # a parameter used in only one of the two passes
        if p.grad is None and c is not None:
            p.grad = c.mul_(1 - alpha)
        elif p.grad is not None and c is None:
            p.grad.mul_(alpha)


class TwoPassStep(TrainStep):
    """Sequential RWP, m-RWP and m-ARWP: a clean pass on one batch, a pass at w + eps on the next
    with BatchNorm running statistics frozen, then one base-optimizer step on the mix.

    The first call of each pair computes g(w; B1) and keeps it; the second perturbs the weights,
    computes g(w + eps; B2), restores the weights exactly, sets the gradient to
    alpha * g(w + eps; B2) + (1 - alpha) * g(w; B1) and steps. With `fisher` (m-ARWP's adaptive
    scale, from yw-plugin-marwp) the noise std is multiplied by `fisher.scale()` and
    `fisher.update()` sees the raw perturbed gradient before the mix.
    """

    batches_per_update = 2

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        runtime,
        *,
        alpha: float,
        gamma: float,
        noise: FilterNoise | None = None,
        fisher=None,
    ):
        super().__init__(model, optimizer, runtime)
        check_mix(alpha, gamma)
        self.alpha, self.gamma = float(alpha), float(gamma)
        self.noise = noise if noise is not None else FilterNoise.for_optimizer(optimizer, runtime)
        self.fisher = fisher
        self._clean: list[torch.Tensor | None] | None = None  # g(w; B1) until the second call

    def step(self, batch, loss_fn) -> torch.Tensor:
        """The clean pass (odd calls) or the perturbed pass and the update (even calls)."""
        params = self.noise.params
        self.optimizer.zero_grad(set_to_none=True)  # drops the grads; self._clean keeps them
        if self._clean is None:
            loss = loss_fn(self.model, batch)
            loss.backward()
            self._clean = [p.grad for p in params]
            return loss.detach()
        scale = self.fisher.scale() if self.fisher is not None else None
        with frozen_bn_stats(self.model):
            self.noise.perturb(self.gamma, scale)
            try:
                loss = loss_fn(self.model, batch)
                loss.backward()
            finally:
                self.noise.restore()
        if self.fisher is not None:
            self.fisher.update()
        mix_gradients(params, self._clean, self.alpha)
        self._clean = None
        self.optimizer.step()
        return loss.detach()


class ParityStep(TrainStep):
    """Distributed RWP (and m-RWP) under torchrun: one pass per rank and update.

    Even ranks back-propagate the clean loss x 2(1 - alpha); odd ranks add the noise, run the
    loss x 2 alpha with BatchNorm running statistics frozen (DDP broadcasts rank 0's clean
    buffers at every forward anyway) and restore the weights after the backward. DDP's gradient
    average over an even number of ranks then is alpha * mean(g_odd) + (1 - alpha) * mean(g_even),
    and every rank steps from the same clean weights. All odd ranks draw the same noise.
    `model` should be the DistributedDataParallel wrapper: the average is DDP's.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        runtime,
        *,
        alpha: float,
        gamma: float,
    ):
        super().__init__(model, optimizer, runtime)
        check_mix(alpha, gamma)
        if not runtime.is_distributed or runtime.world_size % 2:
            raise ValueError(
                "distributed RWP pairs clean (even) and perturbed (odd) ranks, so it needs an "
                f"even number of processes under torchrun, got world size {runtime.world_size}"
            )
        self.alpha, self.gamma = float(alpha), float(gamma)
        self.perturbed = runtime.rank % 2 == 1
        self.weight = 2 * self.alpha if self.perturbed else 2 * (1 - self.alpha)
        self.noise = FilterNoise.for_optimizer(optimizer, runtime) if self.perturbed else None

    def step(self, batch, loss_fn) -> torch.Tensor:
        """This rank's pass (clean or perturbed), DDP's average, and the base-optimizer step."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.perturbed:
            with frozen_bn_stats(self.model):
                self.noise.perturb(self.gamma)
                try:
                    loss = loss_fn(self.model, batch)
                    (loss * self.weight).backward()
                finally:
                    self.noise.restore()
        else:
            loss = loss_fn(self.model, batch)
            (loss * self.weight).backward()
        self.optimizer.step()
        return loss.detach()


def rwp_step(model, optimizer, runtime, *, alpha: float, gamma: float) -> TrainStep:
    """RWP's step for this run: `ParityStep` under torchrun, `TwoPassStep` in one process."""
    if runtime.is_distributed:
        if not isinstance(model, DistributedDataParallel):
            raise ValueError(
                "distributed RWP needs the DistributedDataParallel-wrapped model, whose backward "
                "averages the ranks' gradients (yw_core.train.fit passes it), got "
                f"{type(model).__name__}"
            )
        return ParityStep(model, optimizer, runtime, alpha=alpha, gamma=gamma)
    return TwoPassStep(model, optimizer, runtime, alpha=alpha, gamma=gamma)


def parallel_recipe(base, runtime):
    """The training recipe of the parallel (even/odd rank) mode: twice the epochs under
    torchrun, as the reference's DDP scripts (`epochs x 2`): each update there sees one clean
    and one perturbed batch where DDP SGD sees two clean ones. In one process: `base` itself."""
    if not runtime.is_distributed:
        return base
    return type(base)(**{**base.model_dump(), "epochs": 2 * base.epochs})
