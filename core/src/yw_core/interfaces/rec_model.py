"""RecModel: a ranking model that scores candidate items for a user, built from a RecSchema.

Features travel as plain dicts of tensors, one entry per field: `{"user_id": LongTensor (N,),
"age": FloatTensor (N, 1)}`. `RecSchema.check_features` says whether such a dict fits.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from yw_core.groups import GROUPS
from yw_core.interfaces.method import Method

if TYPE_CHECKING:
    import torch
    from torch import nn

SIDES = ("user", "item")
KINDS = ("categorical", "dense")


@dataclass(frozen=True)
class FeatureField:
    """One input feature: its name, which side it describes, and its kind and size.

    `side="user"` holds everything shared by all candidates of a request (user profile, request
    context); `side="item"` everything that differs per candidate, user-item crosses included
    (UG-Sep puts every feature it cannot separate on the item side). A categorical field holds
    ids in [0, cardinality) as a LongTensor (N,); a dense field a float tensor (N, dim).
    """

    name: str
    side: Literal["user", "item"]
    kind: Literal["categorical", "dense"] = "categorical"
    cardinality: int | None = None
    dim: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"field name must be a non-empty string, got {self.name!r}")
        if self.side not in SIDES:
            raise ValueError(
                f"field {self.name!r}: side must be 'user' or 'item', not {self.side!r}"
            )
        if self.kind not in KINDS:
            raise ValueError(
                f"field {self.name!r}: kind must be 'categorical' or 'dense', not {self.kind!r}"
            )
        size, other = ("cardinality", "dim")
        if self.kind == "dense":
            size, other = other, size
        value = getattr(self, size)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{self.kind} field {self.name!r} needs {size} >= 1, got {value!r}")
        if getattr(self, other) is not None:
            raise ValueError(f"{self.kind} field {self.name!r} takes {size}, not {other}")


@dataclass(frozen=True)
class RecSchema:
    """The feature fields a recommendation model reads: at least one per side, names unique."""

    fields: tuple[FeatureField, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", tuple(self.fields))
        if any(not isinstance(f, FeatureField) for f in self.fields):
            raise TypeError("a RecSchema is made of FeatureField objects")
        names = [f.name for f in self.fields]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"field names must be unique; repeated: {', '.join(dupes)}")
        for side in SIDES:
            if not self.side_fields(side):
                raise ValueError(f"a RecSchema needs at least one {side} field")

    @property
    def user_fields(self) -> tuple[FeatureField, ...]:
        return self.side_fields("user")

    @property
    def item_fields(self) -> tuple[FeatureField, ...]:
        return self.side_fields("item")

    def side_fields(self, side: str) -> tuple[FeatureField, ...]:
        return tuple(f for f in self.fields if f.side == side)

    def check_features(self, side: str, features: Mapping[str, torch.Tensor]) -> int:
        """Check a dict of one side's features against the schema; returns the row count N.

        ValueError naming the problem: a missing or unknown field, a wrong dtype or shape, an id
        outside [0, cardinality), a non-finite dense value, or fields of unequal length.
        """
        import torch

        if side not in SIDES:
            raise ValueError(f"side must be 'user' or 'item', not {side!r}")
        if not isinstance(features, Mapping):
            raise TypeError(f"{side} features must be a dict of tensors, not {type(features)}")
        fields = self.side_fields(side)
        if missing := [f.name for f in fields if f.name not in features]:
            raise ValueError(f"{side} features miss field(s): {', '.join(missing)}")
        if unknown := sorted(set(features) - {f.name for f in fields}):
            raise ValueError(f"unknown {side} feature(s): {', '.join(unknown)}")
        rows = set()
        for f in fields:
            value = features[f.name]
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"feature {f.name!r} must be a tensor, not {type(value).__name__}")
            if f.kind == "categorical":
                _check_ids(f, value)
            else:
                _check_dense(f, value)
            rows.add(len(value))
        if len(rows) > 1:
            raise ValueError(f"{side} features differ in length: {sorted(rows)}")
        (n,) = rows
        if n < 1:
            raise ValueError(f"{side} features have no rows")
        return n


def _check_ids(f: FeatureField, value: torch.Tensor) -> None:
    if value.dim() != 1 or value.dtype.is_floating_point or value.dtype.is_complex:
        raise ValueError(
            f"categorical feature {f.name!r} must be an integer tensor (N,), "
            f"got {value.dtype} {tuple(value.shape)}"
        )
    if len(value) and (value.min() < 0 or value.max() >= f.cardinality):
        raise ValueError(f"feature {f.name!r} holds ids outside [0, {f.cardinality})")


def _check_dense(f: FeatureField, value: torch.Tensor) -> None:
    import torch

    if value.dim() != 2 or value.shape[1] != f.dim or not value.dtype.is_floating_point:
        raise ValueError(
            f"dense feature {f.name!r} must be a float tensor (N, {f.dim}), "
            f"got {value.dtype} {tuple(value.shape)}"
        )
    if not torch.isfinite(value).all():
        raise ValueError(f"dense feature {f.name!r} holds NaN or infinite values")


class RecModel(Method):
    """A ranking model that scores candidate items for a user (UG-Sep, RankMixer, baselines).

    `build(schema)` returns a fresh, untrained nn.Module with two paths:

    - `forward(user, items) -> scores (N,)` for training: user and items are feature dicts of
      N rows each, row i pairing user i with item i;
    - `serve(user, candidates) -> scores (C,)` for inference: one user (dicts of 1 row) against
      C candidates. In eval mode it equals `forward` on the user repeated C times, within float
      tolerance, while it may compute the user side once.

    Scores are real numbers, higher = more relevant (logits for click models). Both paths check
    their features with `schema.check_features`. The caller seeds, moves and trains the module.
    Optionally the module offers `w8a16() -> nn.Module`, a copy for serving with int8 weights
    (UG-Sep's W8A16); `yw-core bench rec` reports that copy as a row of its own.
    """

    interface = "rec_model"
    group = GROUPS["rec_model"]

    @abstractmethod
    def build(self, schema: RecSchema) -> nn.Module:
        """Return the model for this feature schema."""
