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

    What a host relies on (the conformance suite checks it, except the training itself):

    - `capabilities.post_hoc` says which kind it is; hosts pick defenses by it. The caller
      moves the model with `runtime.to` before `protect`.
    - A post-hoc defense returns a wrapper whose forward gives defended logits of the same shape
      as the model's, and leaves the model's weights alone. `data` is optional; when given, it
      is calibration data (hosts pass a TensorDataset of (x, y) with x in [0, 1]).
    - A training-time defense trains on `data` (required: without it, a ValueError that names
      `data`) and returns the robust model.
    - With `capabilities.deterministic`, a wrapper made after seeding the runtime gives the
      same logits for the same sequence of calls, run after run, even when it draws fresh
      noise on every call (from a generator such as `runtime.generator()`).
    """

    interface = "defense"
    group = GROUPS["defense"]

    @abstractmethod
    def protect(self, model: nn.Module, *, data: Any = None, runtime: Runtime) -> nn.Module:
        """Return the protected model (a wrapper for post-hoc methods)."""
