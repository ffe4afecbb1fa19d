"""Defense: protect a classifier, post-hoc (a wrapper) or by training (a robust model)."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from yw_core.groups import GROUPS
from yw_core.interfaces.method import Method

if TYPE_CHECKING:
    from torch import nn

    from yw_core.runtime import Runtime


class Defense(Method):
    """Protects a classifier, either post-hoc (AAA, UniG) or by training (Sub-AT, DIO, SOME).

    `capabilities.post_hoc` says which. A post-hoc defense returns a wrapper whose forward gives
    defended logits of the same shape as the model's; `data`, when given, is calibration data.
    A training-time defense trains on `data` (required) and returns the robust model.
    """

    interface = "defense"
    group = GROUPS["defense"]

    @abstractmethod
    def protect(self, model: nn.Module, *, data: Any = None, runtime: Runtime) -> nn.Module:
        """Return the protected model (a wrapper for post-hoc methods)."""
