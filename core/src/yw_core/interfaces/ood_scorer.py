"""OODScorer: fit on in-distribution data, then score inputs (higher = more in-distribution)."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from yw_core.groups import GROUPS
from yw_core.interfaces.method import Method

if TYPE_CHECKING:
    import torch
    from torch import nn

    from yw_core.runtime import Runtime


class OODScorer(Method):
    """Fits on in-distribution data, then scores inputs: higher means more in-distribution.

    What a host relies on (the conformance suite checks it):

    - `fit(model, id_data, *, runtime)` gets a model the caller already moved with `runtime.to`
      and in-distribution data in any form `iter_batches` reads: a Dataset of (x, y), a
      DataLoader, or a tensor of inputs (a scorer that needs labels raises ValueError on a bare
      tensor). It keeps the runtime and returns self.
    - `score(x)` takes inputs (N, ...) on any device and moves them with the runtime; it returns
      a detached float tensor of shape (N,) on x's device. Before `fit` it raises RuntimeError;
      it checks x first with `check_inputs`, so NaN or a missing batch dimension is a
      ValueError naming the scorer.
    - Both run the model in eval mode, then restore its training mode, and never change its
      weights. They manage autograd themselves: gradient-based scorers enable it, so a caller
      may score under `torch.no_grad()` and gets the same scores.
    - On CPU the same data and seed give the same scores, whether the data came as a Dataset or
      as a DataLoader over it.
    """

    interface = "ood_scorer"
    group = GROUPS["ood_scorer"]

    @abstractmethod
    def fit(self, model: nn.Module, id_data: Any, *, runtime: Runtime) -> OODScorer:
        """Learn what the scorer needs from the in-distribution data; returns self."""

    @abstractmethod
    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of shape (N,), higher = more in-distribution."""


def check_inputs(name: str, x: Any) -> None:
    """What every scorer's `score` checks first: a tensor of shape (N, ...) without NaN; the
    error names the scorer."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: inputs must be a tensor, not {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"{name}: inputs must have shape (N, ...), got {tuple(x.shape)}")
    if torch.isnan(x).any():
        raise ValueError(f"{name}: inputs contain NaN")
