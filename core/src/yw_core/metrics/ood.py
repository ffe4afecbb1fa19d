"""OOD-detection metrics with OpenOOD v1.5 conventions (spec section 11).

Scores follow the OODScorer convention: higher = more in-distribution. AUROC and FPR@95 treat OOD
as the positive class (score = -score), AUPR-In treats ID as positive, AUPR-Out OOD as positive; the
AUPRs are the trapezoidal area under the precision-recall curve (not average precision). As in
scikit-learn, equal scores form one threshold, so ties give one diagonal ROC step (half credit).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ._arrays import vector


def auroc(id_scores, ood_scores) -> float:
    """Area under the ROC curve: the chance a random ID sample outscores a random OOD one."""
    fpr, tpr = _roc(*_as_pos_neg(id_scores, ood_scores, positive="ood"))
    return _trapezoid(fpr, tpr)


def aupr_in(id_scores, ood_scores) -> float:
    """Area under the precision-recall curve with ID samples as the positives."""
    return _aupr(*_as_pos_neg(id_scores, ood_scores, positive="id"))


def aupr_out(id_scores, ood_scores) -> float:
    """Area under the precision-recall curve with OOD samples as the positives."""
    return _aupr(*_as_pos_neg(id_scores, ood_scores, positive="ood"))


def fpr_at_95(id_scores, ood_scores, positive: Literal["ood", "id"] = "ood") -> float:
    """False-positive rate at the first threshold whose true-positive rate reaches 95%.

    positive="ood" (OpenOOD): the fraction of ID samples flagged OOD when 95% of OOD is caught.
    positive="id" (ODIN/Hendrycks): the fraction of OOD samples kept when 95% of ID is kept.
    The rate is read off every distinct threshold (no ROC points are dropped).
    """
    fpr, tpr = _roc(*_as_pos_neg(id_scores, ood_scores, positive=positive))
    return float(fpr[np.argmax(tpr >= 0.95)])


def ood_metrics(id_scores, ood_scores) -> dict[str, float]:
    """All OOD metrics at once: auroc, aupr_in, aupr_out, fpr95_ood and fpr95_id."""
    return {
        "auroc": auroc(id_scores, ood_scores),
        "aupr_in": aupr_in(id_scores, ood_scores),
        "aupr_out": aupr_out(id_scores, ood_scores),
        "fpr95_ood": fpr_at_95(id_scores, ood_scores, positive="ood"),
        "fpr95_id": fpr_at_95(id_scores, ood_scores, positive="id"),
    }


def _as_pos_neg(id_scores, ood_scores, positive: str) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) scores oriented so that higher means more positive."""
    if positive not in ("ood", "id"):
        raise ValueError(f"positive must be 'ood' or 'id', got {positive!r}")
    id_s, ood_s = _scores(id_scores, "id_scores"), _scores(ood_scores, "ood_scores")
    return (id_s, ood_s) if positive == "id" else (-ood_s, -id_s)


def _scores(x, name: str) -> np.ndarray:
    arr = vector(x, name)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"{name} must hold numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    return arr


def _counts(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positives at each distinct threshold, from the highest score down."""
    scores = np.concatenate([pos, neg])
    is_pos = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    order = np.argsort(-scores, kind="stable")
    scores, is_pos = scores[order], is_pos[order]
    last_of_group = np.r_[np.flatnonzero(scores[1:] != scores[:-1]), len(scores) - 1]
    tps = np.cumsum(is_pos)[last_of_group]
    fps = last_of_group + 1 - tps
    return fps, tps


def _roc(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fps, tps = _counts(pos, neg)
    return np.r_[0.0, fps / len(neg)], np.r_[0.0, tps / len(pos)]


def _aupr(pos: np.ndarray, neg: np.ndarray) -> float:
    fps, tps = _counts(pos, neg)
    precision = tps / (tps + fps)
    recall = tps / len(pos)
    return _trapezoid(np.r_[0.0, recall], np.r_[1.0, precision])


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))
