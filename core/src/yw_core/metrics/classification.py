"""Clean-accuracy metrics and the distance between a defended and an undefended classifier."""

from __future__ import annotations

import numpy as np

from ._arrays import labels, scores_2d


def accuracy(logits, y) -> float:
    """Fraction of samples whose highest score is the label: a classifier's clean accuracy."""
    scores = scores_2d(logits, "logits")
    target = labels(y, len(scores), scores.shape[1])
    return float(np.mean(scores.argmax(axis=1) == target))


def argmax_agreement(logits_a, logits_b) -> float:
    """Fraction of samples on which two classifiers predict the same class (1.0 = all same)."""
    a, b = _same_shape(logits_a, "logits_a", logits_b, "logits_b")
    return float(np.mean(a.argmax(axis=1) == b.argmax(axis=1)))


def logit_distortion(defended, undefended) -> float:
    """Mean over samples of the L2 norm of the logit change a defense makes (0.0 = unchanged)."""
    a, b = _same_shape(defended, "defended", undefended, "undefended")
    return float(np.mean(np.linalg.norm(a - b, axis=1)))


def _same_shape(a, name_a: str, b, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = scores_2d(a, name_a), scores_2d(b, name_b)
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {a.shape} and {b.shape}"
        )
    return a, b
