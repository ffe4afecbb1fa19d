"""yw_core.metrics forecast metrics: hand-computed vectors, brute force and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

from yw_core.metrics import (
    average_precision,
    best_threshold,
    cost,
    ks_statistic,
    precision_recall_f1,
    roc_auc,
)

SCORES = [0.9, 0.8, 0.7, 0.6, 0.5]
LABELS = [1, 0, 1, 0, 0]


def _rates(scores, labels, t):
    """FPR and FNR of `scores >= t`, by brute force."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    pred = s >= t
    return np.mean(pred[~y]), np.mean(~pred[y])


def _random(seed: int, n: int = 200, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    s = rng.normal(size=n) + y
    return (np.round(s, 1) if ties else s), y


def test_hand_computed_vector():
    # thresholds 0.9, 0.8, 0.7, ...: TPR 1/2, 1/2, 1, 1, 1; FPR 0, 1/3, 1/3, 2/3, 1
    assert ks_statistic(SCORES, LABELS) == pytest.approx(2 / 3)
    assert average_precision(SCORES, LABELS) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert roc_auc(SCORES, LABELS) == pytest.approx(5 / 6)
    assert best_threshold(SCORES, LABELS) == 0.7  # cost 1/3 + 0
    assert best_threshold(SCORES, LABELS, theta=0.1) == 0.9  # cost 0 + 0.1 * 1/2
    assert cost([1, 0, 1, 0, 0], LABELS) == 0.0
    assert cost([1, 1, 0, 0, 0], LABELS, theta=2.0) == pytest.approx(1 / 3 + 2 * 1 / 2)
    assert precision_recall_f1([1, 1, 0, 0, 0], LABELS) == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    )


def test_perfect_and_reversed():
    assert ks_statistic([2, 1], [1, 0]) == 1.0
    assert average_precision([2, 1], [1, 0]) == 1.0
    assert roc_auc([2, 1], [1, 0]) == 1.0
    assert ks_statistic([1, 2], [1, 0]) == 0.0  # the threshold above every score gives 0
    assert roc_auc([1, 2], [1, 0]) == 0.0


def test_ties_count_half():
    assert roc_auc([0.5, 0.5], [1, 0]) == 0.5
    assert ks_statistic([0.5, 0.5], [1, 0]) == 0.0
    assert average_precision([0.5, 0.5], [1, 0]) == 0.5


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_matches_sklearn_and_brute_force(seed, ties):
    s, y = _random(seed, ties=ties)
    assert average_precision(s, y) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert roc_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    gaps = [1 - fnr - fpr for fpr, fnr in (_rates(s, y, t) for t in np.unique(s))]
    assert ks_statistic(s, y) == pytest.approx(max(0.0, *gaps), abs=1e-12)


@pytest.mark.parametrize("theta", [0.2, 1.0, 5.0])
def test_best_threshold_minimises_cost(theta):
    s, y = _random(7, ties=True)
    costs = {t: cost(s >= t, y, theta) for t in np.unique(s)}
    t = best_threshold(s, y, theta)
    assert t in costs and costs[t] == pytest.approx(min(costs.values()), abs=1e-12)
    assert t == max(u for u, c in costs.items() if c <= min(costs.values()) + 1e-12)
    fpr, fnr = _rates(s, y, t)
    assert cost(s >= t, y, theta) == pytest.approx(fpr + theta * fnr)


def test_precision_recall_f1_matches_sklearn_and_empty_cases():
    s, y = _random(3)
    pred = s >= 0.5
    p, r, f, _ = precision_recall_fscore_support(y, pred, average="binary")
    assert precision_recall_f1(pred, y) == pytest.approx({"precision": p, "recall": r, "f1": f})
    assert precision_recall_f1([0, 0], [1, 0]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert precision_recall_f1([1, 0], [0, 0])["recall"] == 0.0


def test_tensors_bools_and_python_floats():
    s = torch.tensor(SCORES, dtype=torch.bfloat16)
    y = torch.tensor(LABELS, dtype=torch.bool)
    for value in (ks_statistic(s, y), average_precision(s, y), roc_auc(s, y)):
        assert type(value) is float
    assert type(best_threshold(s, y)) is float
    assert type(cost(torch.tensor([True, False, True, False, False]), y)) is float


@pytest.mark.parametrize("fn", [ks_statistic, average_precision, roc_auc, best_threshold])
def test_score_errors(fn):
    with pytest.raises(ValueError, match="length"):
        fn([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError, match="0/1"):
        fn([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="both classes"):
        fn([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        fn([0.1, float("nan")], [0, 1])
    with pytest.raises(ValueError, match="1-D"):
        fn([], [])


def test_cost_errors():
    with pytest.raises(ValueError, match="theta"):
        cost([1, 0], [1, 0], theta=0)
    with pytest.raises(ValueError, match="theta"):
        best_threshold([0.2, 0.1], [1, 0], theta=-1.0)
    with pytest.raises(ValueError, match="theta"):
        cost([1, 0], [1, 0], theta=float("inf"))
    with pytest.raises(ValueError, match="length"):
        cost([1, 0, 0], [1, 0])
    with pytest.raises(ValueError, match="0/1"):
        cost([0.5, 0], [1, 0])
    with pytest.raises(ValueError, match="both classes"):
        cost([1, 0], [0, 0])
    with pytest.raises(ValueError, match="length"):
        precision_recall_f1([1], [1, 0])
