"""Interpreter: explain a model's decisions, and say how far each explanation can be trusted."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from yw_core.groups import GROUPS
from yw_core.interfaces.method import Method

if TYPE_CHECKING:
    import torch
    from torch import nn

    from yw_core.runtime import Runtime


@dataclass
class Explanation:
    """Per-feature attributions of shape like the input, and a per-sample reliability score.

    `attributions[i]` says how much each feature of x[i] mattered for the class `target[i]`
    (larger magnitude = more). `reliability` (N,) in [0, 1] says how far each explanation can be
    trusted (AnomalyAID: the agreement of local and global attributions), or None when the
    method gives none. `target` (N,) is the class explained, or None for the model's prediction.
    """

    attributions: torch.Tensor
    reliability: torch.Tensor | None = None
    target: torch.Tensor | None = None

    def check(self, x: torch.Tensor) -> Explanation:
        """Returns self when the explanation fits the inputs x; else a ValueError naming why."""
        import torch

        if tuple(self.attributions.shape) != tuple(x.shape):
            raise ValueError(
                f"attributions have shape {tuple(self.attributions.shape)}, "
                f"the inputs {tuple(x.shape)}"
            )
        if not torch.isfinite(self.attributions).all():
            raise ValueError("attributions hold NaN or infinite values")
        for name in ("reliability", "target"):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != (len(x),):
                raise ValueError(f"{name} must have shape ({len(x)},), got {tuple(value.shape)}")
        r = self.reliability
        if r is not None and not ((r >= 0) & (r <= 1)).all():
            raise ValueError("reliability must lie in [0, 1] (and not be NaN)")
        return self

    def top_features(self, k: int) -> torch.Tensor:
        """Indices (N, k) into the flattened features, by decreasing |attribution|."""
        return self.attributions.flatten(1).abs().topk(k, dim=1).indices


class Interpreter(Method):
    """Explains a model's decisions, and says how far each explanation can be trusted.

    What a host relies on (the conformance suite checks it):

    - `fit(model, data, *, runtime)` gets a model the caller moved with `runtime.to` and
      reference data in any form `iter_batches` reads (a Dataset of (x, y), a DataLoader or a
      tensor of inputs); it keeps the runtime and returns self.
    - `explain(x)` takes inputs (N, ...) on any device and moves them with the runtime; it
      returns an Explanation that passes `check(x)`, with tensors detached and on x's device.
      Before `fit` it raises RuntimeError.
    - Both leave the model's weights and training mode as they found them and manage autograd
      themselves, so a caller may explain under `torch.no_grad()`.
    """

    interface = "interpreter"
    group = GROUPS["interpreter"]

    @abstractmethod
    def fit(self, model: nn.Module, data: Any, *, runtime: Runtime) -> Interpreter:
        """Prepare the explainer on reference data; returns self."""

    @abstractmethod
    def explain(self, x: torch.Tensor) -> Explanation:
        """Attributions (and reliability) for the inputs x."""
