"""Binary-forecast metrics of the technology-convergence forecast (spec section 7 (e)).

The paper scores its link predictor by KS (the largest gap TPR - FPR over thresholds), AUC-PR
and the normalised misclassification Cost = FPR + theta * FNR, theta = cost(FN) / cost(FP). Scores
are "higher = more likely positive" and labels are 0/1 (or bools). AUC-PR is average precision,
the step-wise sum that scikit-learn's `average_precision_score` computes (not a trapezoid), and, as
in scikit-learn, equal scores form one threshold, so ties count half in the ROC AUC.
"""

from __future__ import annotations

import math

import numpy as np

from ._arrays import vector
from .ood import _counts, _roc, auroc


def ks_statistic(scores, labels) -> float:
    """Kolmogorov-Smirnov statistic: the largest TPR - FPR over all thresholds (0 = no signal)."""
    fpr, tpr = _roc(*_split(scores, labels))
    return float(np.max(tpr - fpr))


def average_precision(scores, labels) -> float:
    """AUC-PR as average precision: sum over thresholds of precision x the recall it adds."""
    pos, neg = _split(scores, labels)
    fps, tps = _counts(pos, neg)
    recall = np.r_[0.0, tps / len(pos)]
    return float(np.sum(np.diff(recall) * tps / (tps + fps)))


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative."""
    return auroc(*_split(scores, labels))


def cost(predicted, labels, theta: float = 1.0) -> float:
    """The paper's normalised Cost of hard predictions: FPR + theta * FNR (0 = no error)."""
    theta = _theta(theta)
    y = _labels(labels, "labels")
    pred = _labels(predicted, "predicted", len(y))
    _both_classes(y)
    fpr = np.sum(pred & ~y) / np.sum(~y)
    fnr = np.sum(~pred & y) / np.sum(y)
    return float(fpr + theta * fnr)


def precision_recall_f1(predicted, labels) -> dict[str, float]:
    """Precision, recall and F1 of hard predictions; a ratio with nothing to count is 0.0."""
    y = _labels(labels, "labels")
    pred = _labels(predicted, "predicted", len(y))
    tp = int(np.sum(pred & y))
    precision = tp / max(int(pred.sum()), 1)
    recall = tp / max(int(y.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def best_threshold(scores, labels, theta: float = 1.0) -> float:
    """The score t minimising the Cost of `scores >= t`, over the distinct scores (the highest
    such t on ties)."""
    theta = _theta(theta)
    pos, neg = _split(scores, labels)
    fps, tps = _counts(pos, neg)
    costs = fps / len(neg) + theta * (1.0 - tps / len(pos))
    distinct = np.unique(np.concatenate([pos, neg]))[::-1]  # same order as _counts: high to low
    return float(distinct[np.argmin(costs)])


def _split(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the positives and of the negatives, after checking both inputs."""
    y = _labels(labels, "labels")
    s = vector(scores, "scores")
    if not (np.issubdtype(s.dtype, np.number) or s.dtype == np.bool_):
        raise ValueError(f"scores must hold numbers, got dtype {s.dtype}")
    s = s.astype(np.float64)
    if len(s) != len(y):
        raise ValueError(f"scores has length {len(s)} but labels has length {len(y)}")
    if np.isnan(s).any():
        raise ValueError("scores contains NaN")
    _both_classes(y)
    return s[y], s[~y]


def _labels(x, name: str, n: int | None = None) -> np.ndarray:
    """`x` as a boolean vector, from bools or 0/1 values, of length `n` when given."""
    arr = vector(x, name)
    if arr.dtype != np.bool_:
        if not np.isin(arr, (0, 1)).all():
            found = np.unique(arr)[:5].tolist()
            raise ValueError(f"{name} must hold 0/1 values (or bools), found {found}")
        arr = arr.astype(bool)
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has length {len(arr)} but labels has length {n}")
    return arr


def _both_classes(y: np.ndarray) -> None:
    if y.all() or not y.any():
        raise ValueError(
            f"labels must contain both classes, got {int(y.sum())} positives of {len(y)}"
        )


def _theta(theta) -> float:
    if isinstance(theta, bool) or not isinstance(theta, (int, float, np.integer, np.floating)):
        raise ValueError(f"theta must be a positive number, got {theta!r}")
    if not (math.isfinite(theta) and theta > 0):
        raise ValueError(f"theta must be a positive finite number, got {theta!r}")
    return float(theta)
