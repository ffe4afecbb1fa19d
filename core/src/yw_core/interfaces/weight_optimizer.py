"""WeightOptimizer: change how weights are updated or combined; TrainStep is its one step."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from yw_core.groups import GROUPS
from yw_core.interfaces.method import Method

if TYPE_CHECKING:
    import torch
    from torch import nn

    from yw_core.runtime import Runtime
    from yw_core.train import TrainConfig


class TrainStep(ABC):
    """One optimisation step as a WeightOptimizer defines it; `yw_core.train.fit` drives it.

    The contract, in the order `fit` calls it:

    - `begin(total_updates)` once, before the first batch: methods with schedules (ARWP's sigma
      ramp, SWA's start) read the plan from it.
    - `step(batch, loss_fn)` once per mini-batch: zero the gradients, run the forward/backward
      passes the method needs (`loss_fn(model, batch)` returns a scalar loss), step the
      optimizer and return the detached loss. A method that uses `batches_per_update` > 1
      batches per update (sequential RWP, m-ARWP) updates on every k-th call; `fit` then passes
      over the data k times per epoch so the number of updates matches plain SGD.
    - `on_epoch_end(epoch)` after each epoch of updates: where TWA and SWA collect weights.
    - `finalize(data)` once after training: average or project, recompute BN; returns the model.

    Under torchrun `model` is the DistributedDataParallel wrapper `fit` made; the parameters are
    the same objects as the wrapped module's.
    """

    batches_per_update: int = 1

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, runtime: Runtime):
        self.model = model
        self.optimizer = optimizer
        self.runtime = runtime
        self.total_updates: int | None = None

    def begin(self, total_updates: int) -> None:
        """Called once before training with the number of optimizer updates `fit` will make."""
        self.total_updates = int(total_updates)

    @abstractmethod
    def step(self, batch: Any, loss_fn) -> torch.Tensor:
        """Do one update (or one pass of a multi-batch update) and return the loss it saw."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called after each epoch: where trajectory methods (TWA, SWA) collect checkpoints."""

    def finalize(self, data: Any = None) -> nn.Module:
        """Called once after training: average or project weights, recompute BN; returns model."""
        return self.model


class WeightOptimizer(Method):
    """Changes how weights are updated (RWP, ARWP, SAM) or combined (TWA, SWA) during training.

    What a host relies on (the conformance suite checks it): `attach` returns a TrainStep that
    `yw_core.train.fit` can drive through the contract above; the model it gets is on the
    runtime's device and in train mode. `step` returns a finite, detached loss tensor and,
    after `batches_per_update` calls, has updated the weights; `finalize` returns the model.
    With `capabilities.deterministic` the same seed gives the same weights.
    """

    interface = "weight_optimizer"
    group = GROUPS["weight_optimizer"]

    @abstractmethod
    def attach(
        self,
        model: nn.Module,
        base_optimizer: torch.optim.Optimizer,
        *,
        runtime: Runtime,
        **kwargs: Any,
    ) -> TrainStep:
        """Wrap a model and its base optimizer (e.g. SGD) into the method's TrainStep.

        Method-specific inputs come as keyword arguments (TWA's `checkpoints`); `fit` passes
        its `attach_kwargs` through."""

    def train_config(self, base: TrainConfig, *, runtime: Runtime) -> TrainConfig:
        """The `yw_core.train.TrainConfig` this method trains with, given the host's recipe.

        Default: `base` itself. A method whose paper prescribes its own recipe returns it (TWA:
        its lr, weight decay, step schedule and a fraction of the epochs; RWP under torchrun:
        twice the epochs, as its parallel reference does). Hosts such as `bench
        weight-optimizer` call it, so no host needs to know a method's recipe."""
        return base

    def base_run(self) -> float | None:
        """None, or the fraction of a base SGD run's epochs whose checkpoints the method trains
        from (TWA's head stage). A host that returns a fraction runs SGD with
        `keep_checkpoints=True` and passes `checkpoints` (the first ones, up to that fraction)
        and `bn_data` (the training data) to `attach`."""
        return None
