"""Unlearner: remove the influence of a forget set (or concept) from a trained model."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

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


def forget_set(forget: UnlearningRequest | Dataset) -> Dataset:
    """The checked forget Dataset of a request or a Dataset, never reading any retain set:
    what a remaining-data-free method starts with instead of `UnlearningRequest.of`."""
    if isinstance(forget, UnlearningRequest):
        return forget.forget
    _check_pairs("forget", forget)
    return forget


def labels_of(data: Dataset) -> Any:
    """Every label of a Dataset of (x, y) as one long tensor (a TensorDataset's directly)."""
    import torch

    tensors = getattr(data, "tensors", None)
    if tensors is not None and len(tensors) >= 2:
        return tensors[1].long()
    return torch.as_tensor([int(data[i][1]) for i in range(len(data))], dtype=torch.long)


def check_model(model: nn.Module, forget: Dataset, *, runtime: Runtime, name: str) -> int:
    """Check that `model` can be unlearned on `forget` and return its number of classes.

    A ValueError names the problem: no trainable parameters, parameters made under
    `torch.inference_mode()`, outputs that are not (N, classes) logits, or forget labels
    outside the model's classes."""
    import torch

    params = list(model.parameters())
    if any(p.is_inference() for p in params):
        raise ValueError(
            f"{name}: the model's parameters were created under torch.inference_mode() and "
            "cannot be trained; build or load the model outside inference mode"
        )
    if not any(p.requires_grad for p in params):
        raise ValueError(
            f"{name}: the model has no trainable parameters (requires_grad is False for all); "
            "unfreeze the parameters to unlearn"
        )
    x = forget[0][0].unsqueeze(0)
    from yw_core.models import eval_mode

    with torch.no_grad(), eval_mode(model):
        out = model(runtime.to(x))
    if out.dim() != 2:
        raise ValueError(
            f"{name}: the model must return (N, classes) logits, got shape {tuple(out.shape)} "
            f"for one input of shape {tuple(x.shape[1:])}"
        )
    classes = out.shape[1]
    labels = labels_of(forget)
    outside = sorted({int(v) for v in labels[(labels < 0) | (labels >= classes)].tolist()})
    if outside:
        shown = ", ".join(map(str, outside[:10])) + (", ..." if len(outside) > 10 else "")
        raise ValueError(
            f"{name}: forget labels {shown} are outside the model's {classes} classes "
            f"(0..{classes - 1})"
        )
    return classes


def working_model(model: nn.Module, in_place: bool) -> nn.Module:
    """The model an unlearner trains: a deep copy, so the caller's model is unchanged,
    unless the caller asked for `in_place=True`."""
    import copy

    return model if in_place else copy.deepcopy(model)


def _check_pairs(what: str, data: Any) -> None:
    import torch

    if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        raise TypeError(f"{what} must be a map-style Dataset of (x, y), not {type(data).__name__}")
    if len(data) == 0:
        extra = (
            ": forgetting the whole training set leaves no remaining data (retrain from "
            "scratch instead, or pass retain=None to a remaining-data-free method)"
            if what == "retain"
            else ""
        )
        raise ValueError(f"the {what} set is empty{extra}")
    item = data[0]
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        raise ValueError(f"{what} items must be (x, y) pairs, got {type(item).__name__}")
    if not isinstance(item[0], torch.Tensor):
        raise ValueError(f"{what} inputs must be tensors, got {type(item[0]).__name__}")


class Unlearner(Method):
    """Removes the influence of a forget set (or concept) from a trained model.

    What a host relies on (the conformance suite checks it):

    - `unlearn(model, forget, retain=None, *, runtime, in_place=False)` takes either Datasets of
      (x, y) or one `UnlearningRequest` as `forget`; implementations start with
      `request = UnlearningRequest.of(forget, retain)` (remaining-data-free ones with
      `forget_set(forget)`) and `check_model`, so bad data or a bad model is a clear ValueError.
    - The caller moves the model with `runtime.to`. The method trains `working_model(model,
      in_place)`: a copy unless the caller passes `in_place=True`, so the caller's model is
      unchanged by default. The result gives outputs of the model's shape, in eval mode. The
      forget and retain data are never modified.
    - `remaining_data_free = True` says the method uses only the model and the forget set
      (MU-Mis, MiM-MU): it never reads `retain`, and a host need not provide one.
    - `model_kind` says what it unlearns: "classifier" (the model returns (N, classes) logits;
      forget labels are classes) or "diffusion" (a `yw_core.diffusion.ConditionalDiffusion`;
      forget pairs are (image, concept) with the concept a class index or a prompt). Hosts pick
      the unlearners of the kind they hold: `bench unlearn` classifiers, `bench erase` diffusion.
    """

    interface = "unlearner"
    group = GROUPS["unlearner"]
    remaining_data_free: ClassVar[bool] = False
    model_kind: ClassVar[Literal["classifier", "diffusion"]] = "classifier"

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """`Method.describe` plus the kind of model it unlearns and whether it reads retain data."""
        info = super().describe()
        info["unlearns"] = {
            "model_kind": cls.model_kind,
            "remaining_data_free": bool(cls.remaining_data_free),
        }
        return info

    @abstractmethod
    def unlearn(
        self,
        model: nn.Module,
        forget: UnlearningRequest | Dataset,
        retain: Dataset | None = None,
        *,
        runtime: Runtime,
        in_place: bool = False,
    ) -> nn.Module:
        """Return the unlearned model (a trained copy unless `in_place`); `retain` is None for
        remaining-data-free methods."""
