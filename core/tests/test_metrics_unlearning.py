"""yw_core.metrics unlearning metrics: the spec's §12 vectors, hand-computed features, and clear
errors on logits or mismatched sets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from yw_core.metrics import (
    MIA_FEATURES,
    avg_gap,
    entropy_mia,
    gaps,
    mia_efficacies,
    mia_efficacy,
    mia_efficacy_from_features,
    mia_features,
)


def _shadow(seed=0):
    """The spec's 1-D confidences: members N(0.99, 0.01), non-members N(0.3, 0.1), 500 each."""
    rng = np.random.default_rng(seed)
    return rng.normal(0.99, 0.01, 500), rng.normal(0.3, 0.1, 500)


def _two_class(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (N, 2) whose label-0 confidence is `conf`, and labels 0."""
    conf = np.clip(conf, 0.0, 1.0)
    return np.stack([conf, 1 - conf], 1), np.zeros(len(conf), dtype=np.int64)


def test_spec_vectors_member_like_forget_set_is_never_called_a_non_member():
    members, nonmembers = _shadow()
    assert mia_efficacy_from_features(members, nonmembers, np.full(50, 0.99)) == 0.0
    assert mia_efficacy_from_features(members, nonmembers, np.full(50, 0.3)) == 1.0


def test_mia_efficacy_on_probabilities_matches_the_feature_form():
    members, nonmembers = _shadow()
    forget = np.r_[np.full(30, 0.99), np.full(10, 0.3)]
    (rp, ry), (tp, ty), (fp, fy) = (_two_class(a) for a in (members, nonmembers, forget))
    assert mia_efficacy(rp, ry, tp, ty, fp, fy) == pytest.approx(0.25)
    assert mia_efficacy(torch.tensor(rp), ry, tp, ty, fp, fy) == pytest.approx(0.25)
    every = mia_efficacies(rp, ry, tp, ty, fp, fy)
    assert tuple(every) == MIA_FEATURES and every["confidence"] == pytest.approx(0.25)


def test_features_by_hand():
    p = np.array([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]])
    f = mia_features(p, [1, 0])
    assert f["correctness"].tolist() == [0.0, 1.0]
    assert f["confidence"].tolist() == [0.25, 1.0]
    assert f["entropy"] == pytest.approx([-(0.5 * np.log(0.5) + 0.5 * np.log(0.25)), 0.0])
    # Song & Mittal: -(1 - p_y) log p_y - sum_{c != y} p_c log(1 - p_c)
    row0 = -(0.75 * np.log(0.25)) - (0.5 * np.log(0.5) + 0.25 * np.log(0.75))
    assert f["m_entropy"] == pytest.approx([row0, 0.0])
    assert f["prob"].shape == (2, 3)


def test_entropy_mia_separates_confident_members_from_uncertain_non_members():
    rng = np.random.default_rng(0)
    sharp = np.eye(4)[rng.integers(0, 4, 200)] * 0.96 + 0.01  # low entropy: members
    flat = rng.dirichlet(np.ones(4), 200)  # high entropy: non-members
    assert entropy_mia(sharp, flat, sharp[:50]) == 1.0
    assert entropy_mia(sharp, flat, np.full((50, 4), 0.25)) == 0.0


def test_avg_gap_is_zero_against_itself_and_the_mean_absolute_difference():
    retrain = {"ra": 99.0, "fa": 0.0, "ta": 97.0, "mia": 100.0}
    other = {"ra": 98.0, "fa": 4.0, "ta": 97.5, "mia": 90.0}
    assert avg_gap(retrain, retrain) == 0.0
    assert gaps(other, retrain) == {"ra": 1.0, "fa": 4.0, "ta": 0.5, "mia": 10.0}
    assert avg_gap(other, retrain) == pytest.approx(15.5 / 4)
    assert avg_gap(other, retrain, keys=("ra", "fa", "ta")) == pytest.approx(5.5 / 3)


def test_logits_are_a_clear_error():
    logits = np.array([[2.0, -1.0], [0.5, 0.1]])
    with pytest.raises(ValueError, match="not logits"):
        mia_features(logits, [0, 1])
    with pytest.raises(ValueError, match="not logits"):
        entropy_mia(logits, logits, logits)


def test_mismatched_sets_are_clear_errors():
    p2, p3 = np.full((4, 2), 0.5), np.full((4, 3), 1 / 3)
    y = np.zeros(4, dtype=np.int64)
    with pytest.raises(ValueError, match="same number of classes"):
        mia_efficacy(p2, y, p3, y, p2, y)
    with pytest.raises(ValueError, match="feature must be one of"):
        mia_efficacy(p2, y, p2, y, p2, y, feature="loss")
    with pytest.raises(ValueError, match="empty"):
        mia_features(np.zeros((0, 2)), [])
    with pytest.raises(ValueError, match="missing 'mia'"):
        avg_gap({"ra": 1.0}, {"ra": 1.0, "mia": 2.0}, keys=("ra", "mia"))
    with pytest.raises(ValueError, match="finite"):
        gaps({"ra": float("nan")}, {"ra": 1.0}, keys="ra")
