"""TWA's two training steps for `yw_core.train.fit`: projected SGD in the span of the checkpoints
(ICLR) and AdamW on averaging coefficients (journal); both recompute BN statistics at the end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from yw_core.interfaces import TrainStep
from yw_core.runtime import Runtime
from yw_core.subspace import ProjectedStep, assign_, flatten_grads
from yw_core.train import TrainConfig, unwrap
from yw_plugin_twa.coefficients import CoefficientSpace

BN_BATCH = 256  # images per forward when BN statistics are recomputed


def recompute_bn(model: nn.Module, data: Any, batch_size: int = BN_BATCH) -> None:
    """Reset every BatchNorm's running statistics and re-estimate them over `data` in one pass.

    `data` is a dataset of (x, y) or x, or a DataLoader; weights change nothing else. Averaged or
    projected weights need this: their old running statistics belong to other weights.
    """
    loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size=batch_size)
    device = next(model.parameters()).device
    torch.optim.swa_utils.update_bn(loader, model, device=device)


class _TWAStep(TrainStep):
    """What both variants share: BN statistics recomputed over the training data at the end."""

    def finalize(self, data: Any = None) -> nn.Module:
        """Recompute BN statistics over `data` (when given) and return the model."""
        if data is not None:
            recompute_bn(unwrap(self.model), data)
        return self.model


class SpanStep(ProjectedStep, _TWAStep):
    """ICLR TWA: one forward/backward, the gradient projected onto span(checkpoints), then the
    base optimizer's step (SGD with momentum and weight decay), so the weights stay in the span."""


class CoefficientStep(_TWAStep):
    """Journal TWA: the weights' gradient g gives dL/dX = d_ib . g_b, AdamW updates the
    coefficients X (cosine lr with linear warm-up over the run), and the weights are rebuilt as
    mean + sum X d. The base optimizer `fit` passes is not used."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        runtime: Runtime,
        space: CoefficientSpace,
        params: Sequence[nn.Parameter],
        *,
        lr: float,
        weight_decay: float,
        warmup: float,
    ):
        super().__init__(model, optimizer, runtime)
        self.space = space
        self.params = list(params)
        self.lr = lr
        self.adamw = torch.optim.AdamW([space.coefficients], lr=lr, weight_decay=weight_decay)
        self.schedule = TrainConfig(schedule="cosine", warmup=warmup, progress=False)
        self.updates = 0
        self._grad = torch.empty_like(space.mean)

    def lr_now(self) -> float:
        """AdamW's lr for the next update (constant `lr` if `begin` was never called)."""
        if not self.total_updates:
            return self.lr
        return self.lr * self.schedule.lr_factor(self.updates, self.total_updates)

    def step(self, batch, loss_fn) -> torch.Tensor:
        self.model.zero_grad(set_to_none=True)
        loss = loss_fn(self.model, batch)
        loss.backward()
        g = flatten_grads(self.params, out=self._grad)
        self.space.coefficients.grad = self.space.coefficient_grad(g)
        for group in self.adamw.param_groups:
            group["lr"] = self.lr_now()
        self.adamw.step()
        self.updates += 1
        assign_(self.params, self.space.weights())
        return loss.detach()
