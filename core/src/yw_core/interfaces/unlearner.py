"""Unlearner: remove the influence of a forget set (or concept) from a trained model."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from yw_core.groups import GROUPS
from yw_core.interfaces.method import Method

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.data import Dataset

    from yw_core.runtime import Runtime


@dataclass(frozen=True)
class UnlearningRequest:
    """What to forget and, when the caller has it, what to keep: the data of every unlearner.

    `forget` and `retain` are map-style Datasets of (x, y) pairs: x an input tensor, y its label
    (a class index for classifiers, the concept's condition for generative models). `retain` is
    None when there is no remaining data; remaining-data-free methods ignore it. Construction
    checks that each set is non-empty and that its first item is such a pair.
    """

    forget: Dataset
    retain: Dataset | None = None

    def __post_init__(self) -> None:
        _check_pairs("forget", self.forget)
        if self.retain is not None:
            _check_pairs("retain", self.retain)

    @classmethod
    def of(cls, forget: UnlearningRequest | Dataset, retain: Dataset | None = None):
        """The request behind `unlearn(model, forget, retain)`: forget is a Dataset or a request."""
        if isinstance(forget, cls):
            if retain is not None:
                raise ValueError("retain is given twice: in the UnlearningRequest and beside it")
            return forget
        return cls(forget, retain)


def _check_pairs(what: str, data: Any) -> None:
    import torch

    if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        raise TypeError(f"{what} must be a map-style Dataset of (x, y), not {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"the {what} set is empty")
    item = data[0]
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        raise ValueError(f"{what} items must be (x, y) pairs, got {type(item).__name__}")
    if not isinstance(item[0], torch.Tensor):
        raise ValueError(f"{what} inputs must be tensors, got {type(item[0]).__name__}")


class Unlearner(Method):
    """Removes the influence of a forget set (or concept) from a trained model.

    What a host relies on (the conformance suite checks it):

    - `unlearn(model, forget, retain=None, *, runtime)` takes either Datasets of (x, y) or one
      `UnlearningRequest` as `forget`; implementations start with
      `request = UnlearningRequest.of(forget, retain)`, so bad data is a clear ValueError.
    - The caller moves the model with `runtime.to`; the method may train it in place and return
      it (hosts that need the original pass a copy). The result gives outputs of the model's
      shape. The forget and retain data are never modified.
    - `remaining_data_free = True` says the method uses only the model and the forget set
      (MU-Mis, MiM-MU): it ignores `retain`, and a host need not provide one.
    """

    interface = "unlearner"
    group = GROUPS["unlearner"]
    remaining_data_free: ClassVar[bool] = False

    @abstractmethod
    def unlearn(
        self,
        model: nn.Module,
        forget: UnlearningRequest | Dataset,
        retain: Dataset | None = None,
        *,
        runtime: Runtime,
    ) -> nn.Module:
        """Return the unlearned model; `retain` is None for remaining-data-free methods."""
