"""Sub-AT's pieces for `yw_core.train.fit`: the trajectory sampler (an SGD step that records the
parameters twice per epoch), the DLDR subspace (PCA of the trajectory) and the projected step."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from yw_core.interfaces import TrainStep
from yw_core.runtime import Runtime
from yw_core.subspace import ProjectedStep, flatten, pca_directions
from yw_core.train import SGDStep


class StepMethod:
    """What `fit` asks of a method (a `name` and `attach`), for a TrainStep built here; the step
    `fit` used stays in `.step` for what it recorded."""

    def __init__(self, name: str, build: Callable[..., TrainStep]):
        self.name = name
        self.build = build
        self.step: TrainStep | None = None

    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, runtime: Runtime):
        """The TrainStep `build(model, optimizer, runtime)` makes (kept in `.step`)."""
        self.step = self.build(model, optimizer, runtime)
        return self.step


class SamplingStep(SGDStep):
    """Plain SGD that records the trainable parameters (flat, on the CPU): once at the start,
    after the middle update of every epoch and at every epoch end (Sub-AT saves after iteration
    200 of about 352 and at the end). With one batch per epoch only the epoch ends are taken."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        runtime: Runtime,
        *,
        params: Sequence[torch.Tensor],
        batches_per_epoch: int,
    ):
        super().__init__(model, optimizer, runtime)
        self.params = list(params)
        self.mid = batches_per_epoch // 2 if batches_per_epoch >= 2 else None
        self.in_epoch = 0
        self.checkpoints = [self.snapshot()]

    def snapshot(self) -> torch.Tensor:
        """The trainable parameters now, as one CPU vector (a copy)."""
        return flatten(self.params).cpu()

    def step(self, batch, loss_fn) -> torch.Tensor:
        loss = super().step(batch, loss_fn)
        self.in_epoch += 1
        if self.in_epoch == self.mid:
            self.checkpoints.append(self.snapshot())
        return loss

    def on_epoch_end(self, epoch: int) -> None:
        """Record the epoch-end parameters."""
        self.in_epoch = 0
        self.checkpoints.append(self.snapshot())


def checkpoints_taken(epochs: int, batches_per_epoch: int) -> int:
    """How many vectors `SamplingStep` records over `epochs` epochs (the start included)."""
    return 1 + epochs * (2 if batches_per_epoch >= 2 else 1)


def dldr(checkpoints: Sequence[torch.Tensor], n_components: int, device=None) -> torch.Tensor:
    """The DLDR subspace: the top `n_components` principal directions (k x D, orthonormal rows)
    of the trajectory's flat parameter vectors, centred as PCA does, computed on `device`."""
    rows = torch.stack(list(checkpoints)).to(device)
    return pca_directions(rows, n_components, center=True)


class SubspaceStep(ProjectedStep):
    """One forward/backward, g <- Pᵀ P g, then the base optimizer's step: with no weight decay
    the weights stay in w0 + span(P), whatever w0 is."""
