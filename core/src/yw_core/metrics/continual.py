"""Continual-learning metrics on an accuracy matrix R (§13): R[i][j] is the accuracy on task j
after training through task i (entries with j > i are ignored).

- `average_accuracy`: mean_j R[T-1][j] (Mammoth's final average accuracy).
- `forgetting`: mean over j < T-1 of max_{l <= T-2} R[l][j] - R[T-1][j] (Chaudhry et al. 2018);
  `variant="mammoth"` takes the max over every row, the last included, so it is never negative.
- `backward_transfer`: mean over j < T-1 of R[T-1][j] - R[j][j] (Mammoth's BWT).
All return floats in R's units; forgetting and BWT are 0.0 for a single task.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from yw_core.metrics._arrays import to_numpy


def average_accuracy(matrix) -> float:
    """Mean accuracy over all tasks after the last one."""
    r = _matrix(matrix)
    return float(r[-1].mean())


def forgetting(matrix, variant: Literal["chaudhry", "mammoth"] = "chaudhry") -> float:
    """Average forgetting of the tasks before the last (see the module docstring)."""
    r = _matrix(matrix)
    t = len(r)
    if t < 2:
        return 0.0
    if variant not in ("chaudhry", "mammoth"):
        raise ValueError(f"variant must be 'chaudhry' or 'mammoth', got {variant!r}")
    rows = r[: t - 1] if variant == "chaudhry" else r
    best = [rows[j : len(rows), j].max() for j in range(t - 1)]  # rows l >= j: task j was seen
    return float(np.mean([b - r[-1, j] for j, b in enumerate(best)]))


def backward_transfer(matrix) -> float:
    """Mean change of each earlier task's accuracy from just after it to the end."""
    r = _matrix(matrix)
    t = len(r)
    if t < 2:
        return 0.0
    return float(np.mean([r[-1, j] - r[j, j] for j in range(t - 1)]))


def _matrix(matrix) -> np.ndarray:
    r = to_numpy(matrix, "the accuracy matrix").astype(np.float64)
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.size == 0:
        raise ValueError(f"the accuracy matrix must be square (T, T), got shape {r.shape}")
    if np.isnan(np.tril(r)).any():
        raise ValueError("the accuracy matrix holds NaN on or below its diagonal")
    return r
