"""Input conversion shared by the metrics: tensors or array-likes to validated numpy arrays.

Torch is recognised by duck typing (`.detach()`), so importing the metrics does not import torch.
"""

from __future__ import annotations

import numpy as np


def to_numpy(x, name: str) -> np.ndarray:
    """A numpy array holding `x` (a torch tensor on any device, a numpy array or a sequence)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.is_floating_point():
            x = x.double()  # bfloat16 has no numpy dtype
        return x.numpy()
    try:
        return np.asarray(x)
    except Exception as err:  # ragged lists and other non-arrays
        raise ValueError(f"{name} must be a tensor or an array, got {type(x).__name__}") from err


def vector(x, name: str) -> np.ndarray:
    """`x` as a non-empty 1-D array."""
    arr = to_numpy(x, name)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {tuple(arr.shape)}")
    return arr


def scores_2d(x, name: str) -> np.ndarray:
    """`x` as a non-empty float (N, C) array of per-class scores."""
    arr = to_numpy(x, name)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, C) with N, C >= 1, got {tuple(arr.shape)}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def labels(y, n: int, num_classes: int | None = None, name: str = "y") -> np.ndarray:
    """`y` as an integer label vector of length `n`, checked against `num_classes` when given."""
    arr = vector(y, name)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class labels, got dtype {arr.dtype}")
    if len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} labels but there are {n} samples")
    if num_classes is not None and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes}), got [{arr.min()}, {arr.max()}]")
    return arr


def mask(x, name: str, n: int | None = None) -> np.ndarray:
    """`x` as a boolean vector (bools or 0/1 values), of length `n` when given."""
    arr = vector(x, name)
    if arr.dtype != np.bool_:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{name} must be a boolean mask (or 0/1 values)")
        arr = arr.astype(bool)
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has length {len(arr)} but there are {n} samples")
    return arr


def positive_int(value, name: str) -> int:
    """`value` as a Python int, checked to be a positive integer (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
