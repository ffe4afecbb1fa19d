"""The data forms that `fit` accepts (OODScorer, Interpreter), turned into one kind of batch.

A user hands over what they have: a Dataset of (x, y) pairs or of bare inputs, a DataLoader of
such batches, or a tensor of inputs (N, ...). `iter_batches` gives the method (x, y) batches in
the data's order either way, so no method writes this conversion itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def iter_batches(
    data: Any, batch_size: int = 256, *, labels: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield (x, y) batches from a Tensor, a Dataset or a DataLoader; y is None without labels.

    Batches stay where the data lies (the method moves them with its runtime); a DataLoader keeps
    its own batch size. ValueError for empty data, inputs not shaped (N, ...), NaN, or missing
    labels when `labels=True`; TypeError for any other kind of object.
    """
    import torch
    from torch.utils.data import DataLoader, Dataset

    if isinstance(data, torch.Tensor):
        batches: Any = (data[i : i + batch_size] for i in range(0, len(data), batch_size))
        if data.dim() < 2:
            raise ValueError(f"inputs must have shape (N, ...), got {tuple(data.shape)}")
    elif isinstance(data, DataLoader):
        batches = data
    elif isinstance(data, Dataset):
        batches = DataLoader(data, batch_size=batch_size, shuffle=False)
    else:
        raise TypeError(
            "data must be a Tensor of inputs, a Dataset of (x, y) or a DataLoader, "
            f"not {type(data).__name__}"
        )
    empty = True
    for batch in batches:
        x, y = (batch, None) if isinstance(batch, torch.Tensor) else (batch[0], _label(batch))
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            raise ValueError(f"inputs must be tensors of shape (N, ...), got {_shape(x)}")
        if torch.isnan(x).any():
            raise ValueError("inputs contain NaN")
        if labels and y is None:
            raise ValueError("this method needs labels: pass a Dataset or DataLoader of (x, y)")
        empty = False
        yield x, y
    if empty:
        raise ValueError("data is empty")


def _label(batch) -> Any:
    return batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else None


def _shape(x) -> Any:
    return tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
