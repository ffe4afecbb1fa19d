"""yw_core.metrics OOD metrics: the spec's hand-computed vectors and scikit-learn as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import auc, precision_recall_curve, roc_curve

from yw_core.metrics import aupr_in, aupr_out, auroc, fpr_at_95, ood_metrics

ID, OOD = [0.9, 0.8, 0.7], [0.6, 0.85]  # spec section 11; higher = more in-distribution


def test_spec_vectors():
    assert auroc(ID, OOD) == pytest.approx(2 / 3)
    assert fpr_at_95(ID, OOD) == pytest.approx(2 / 3)  # OOD positive (OpenOOD)
    assert fpr_at_95(ID, OOD, positive="id") == pytest.approx(0.5)  # ID positive (ODIN)
    assert aupr_in(ID, OOD) == pytest.approx(0.7639, abs=5e-5)
    assert aupr_out(ID, OOD) == pytest.approx(0.7083, abs=5e-5)
    assert ood_metrics(torch.tensor(ID), torch.tensor(OOD)) == pytest.approx(
        {
            "auroc": 2 / 3,
            "aupr_in": 0.7639,
            "aupr_out": 0.7083,
            "fpr95_ood": 2 / 3,
            "fpr95_id": 0.5,
        },
        abs=5e-5,
    )


def test_spec_tie_vector():
    assert auroc([0.5], [0.5]) == 0.5
    assert fpr_at_95([0.5], [0.5]) == 1.0


def test_perfect_and_reversed_separation():
    assert ood_metrics([3.0, 2.0], [1.0, 0.0]) == {
        "auroc": 1.0,
        "aupr_in": 1.0,
        "aupr_out": 1.0,
        "fpr95_ood": 0.0,
        "fpr95_id": 0.0,
    }
    assert auroc([0.0, 1.0], [2.0, 3.0]) == 0.0
    assert fpr_at_95([0.0, 1.0], [2.0, 3.0]) == 1.0


def _sklearn(id_s: np.ndarray, ood_s: np.ndarray) -> dict[str, float]:
    """OpenOOD's recipe with scikit-learn (full ROC for FPR@95, see the module docstring)."""
    conf = np.concatenate([id_s, ood_s])
    is_ood = np.r_[np.zeros(len(id_s)), np.ones(len(ood_s))]
    fpr, tpr, _ = roc_curve(is_ood, -conf)
    fpr_full, tpr_full, _ = roc_curve(is_ood, -conf, drop_intermediate=False)
    fpr_id, tpr_id, _ = roc_curve(1 - is_ood, conf, drop_intermediate=False)
    p_in, r_in, _ = precision_recall_curve(1 - is_ood, conf)
    p_out, r_out, _ = precision_recall_curve(is_ood, -conf)
    return {
        "auroc": auc(fpr, tpr),
        "aupr_in": auc(r_in, p_in),
        "aupr_out": auc(r_out, p_out),
        "fpr95_ood": fpr_full[np.argmax(tpr_full >= 0.95)],
        "fpr95_id": fpr_id[np.argmax(tpr_id >= 0.95)],
    }


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_on_random_data_with_ties(seed):
    rng = np.random.default_rng(seed)
    id_s = np.round(rng.normal(1.0, 1.0, 300), 1)  # rounding makes many ties, within and across
    ood_s = np.round(rng.normal(0.0, 1.0, 200), 1)
    ours = ood_metrics(id_s, ood_s)
    assert ours == pytest.approx(_sklearn(id_s, ood_s), abs=1e-12)
    # Independent check of AUROC: pairwise wins with half credit for ties (Mann-Whitney).
    wins = (id_s[:, None] > ood_s[None, :]).mean() + 0.5 * (id_s[:, None] == ood_s[None, :]).mean()
    assert ours["auroc"] == pytest.approx(wins, abs=1e-12)


def test_fpr_at_95_reads_every_threshold():
    # 18 OOD alone, then two ties of one OOD and one ID: the ROC points (0,18), (1,19), (2,20) are
    # collinear and roc_curve's default drop_intermediate removes (1,19), where TPR first hits 95%.
    ood_s = np.r_[np.arange(18) / 100, 0.2, 0.3]
    id_s = np.array([0.9, 0.8, 0.3, 0.2])
    assert fpr_at_95(id_s, ood_s) == 0.25
    conf, is_ood = np.r_[id_s, ood_s], np.r_[np.zeros(4), np.ones(20)]
    fpr, tpr, _ = roc_curve(is_ood, -conf)  # OpenOOD's call reports 0.5 here
    assert fpr[np.argmax(tpr >= 0.95)] == 0.5


def test_validation():
    with pytest.raises(ValueError, match="positive must be 'ood' or 'id'"):
        fpr_at_95(ID, OOD, positive="in")
    with pytest.raises(ValueError, match="ood_scores must be a non-empty 1-D array"):
        auroc(ID, [])
    with pytest.raises(ValueError, match="id_scores contains NaN"):
        auroc([0.1, float("nan")], OOD)
