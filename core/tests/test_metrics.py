"""yw_core.metrics: classification and query-budget robustness metrics; the package import."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from yw_core.metrics import (
    accuracy,
    argmax_agreement,
    logit_distortion,
    query_stats,
    recheck_accuracy,
    recheck_rates,
    robust_accuracy,
    robust_accuracy_curve,
    success_rate,
)


def test_import_is_light():
    code = (
        "import sys, yw_core.metrics; "
        "print([m for m in ('matplotlib', 'scipy', 'sklearn', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---- classification -------------------------------------------------------------------------


def test_accuracy_by_hand():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [9.0, 0.0, 0.0]])
    y = torch.tensor([0, 1, 0, 1])
    assert accuracy(logits, y) == 0.5
    assert accuracy(logits.numpy(), y.numpy()) == 0.5
    assert accuracy(logits.to(torch.bfloat16), y) == 0.5


def test_accuracy_rejects_bad_labels():
    logits = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="3 samples"):
        accuracy(logits, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        accuracy(logits, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="integer class labels"):
        accuracy(logits, torch.tensor([0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match=r"shape \(N, C\)"):
        accuracy(torch.zeros(3), torch.tensor([0, 1, 0]))


def test_argmax_agreement_and_distortion_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    b = torch.tensor([[4.0, 0.0], [1.0, 0.0], [2.0, 1.0]])  # rows differ by (3,0), (1,-1), (0,0)
    assert argmax_agreement(a, b) == pytest.approx(2 / 3)
    assert argmax_agreement(a, a) == 1.0
    assert logit_distortion(b, a) == pytest.approx((3.0 + 2**0.5 + 0.0) / 3)
    assert logit_distortion(a, a) == 0.0


def test_shape_mismatch_names_both_arguments():
    with pytest.raises(ValueError, match="defended and undefended"):
        logit_distortion(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="logits_a and logits_b"):
        argmax_agreement(torch.zeros(2, 3), torch.zeros(3, 3))


# ---- robustness -----------------------------------------------------------------------------

# Six samples: 0 initially wrong (success, 0 queries); 1-3 fooled after 5, 50 and 500 queries;
# 4-5 never fooled (they used the whole budget of 1000).
SUCCESS = torch.tensor([True, True, True, True, False, False])
QUERIES = torch.tensor([0, 5, 50, 500, 1000, 1000])
CORRECT = torch.tensor([False, True, True, True, True, True])


def test_robust_accuracy_counts_initially_wrong_as_non_robust():
    assert robust_accuracy(SUCCESS, QUERIES, 1000) == pytest.approx(2 / 6)
    assert robust_accuracy(SUCCESS, QUERIES, 50) == pytest.approx(3 / 6)  # 50 queries: fooled
    assert robust_accuracy(SUCCESS, QUERIES, 4) == pytest.approx(5 / 6)


def test_robust_accuracy_curve_is_json_ready():
    curve = robust_accuracy_curve(SUCCESS, QUERIES, [1, 10, 100, 1000])
    assert curve == pytest.approx({1: 5 / 6, 10: 4 / 6, 100: 3 / 6, 1000: 2 / 6})
    assert json.loads(json.dumps(curve)) == {str(k): v for k, v in curve.items()}


def test_success_rate_and_query_stats_over_initially_correct():
    assert success_rate(SUCCESS, QUERIES, 1000, CORRECT) == pytest.approx(3 / 5)
    assert success_rate(SUCCESS, QUERIES, 49, CORRECT) == pytest.approx(1 / 5)
    assert query_stats(SUCCESS, QUERIES, 1000, CORRECT) == {"mean": 185.0, "median": 50.0}
    assert query_stats(SUCCESS, QUERIES, 100, CORRECT) == {"mean": 27.5, "median": 27.5}


def test_no_initially_correct_or_no_success_gives_none():
    none_correct = torch.zeros(6, dtype=torch.bool)
    assert success_rate(SUCCESS, QUERIES, 1000, none_correct) is None
    assert query_stats(SUCCESS, QUERIES, 1000, none_correct) == {"mean": None, "median": None}
    assert query_stats(SUCCESS, QUERIES, 4, CORRECT) == {"mean": None, "median": None}


def test_recheck_scores_every_sample_over_every_requery():
    # 3 re-queries of 4 final adversarial inputs, labels 0 1 2 3
    predictions = torch.tensor([[0, 1, 5, 5], [0, 9, 5, 3], [0, 1, 5, 3]])
    y = torch.tensor([0, 1, 2, 3])
    assert recheck_rates(predictions, y) == pytest.approx([0.0, 1 / 3, 1.0, 1 / 3])
    assert recheck_accuracy(predictions, y) == pytest.approx(1 - 5 / 12)
    assert recheck_accuracy(np.array([[1, 1]]), [1, 1]) == 1.0  # one re-query, numpy input


def test_recheck_validation():
    with pytest.raises(ValueError, match=r"predictions must have shape \(R, N\)"):
        recheck_accuracy(torch.tensor([0, 1]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="integer classes"):
        recheck_rates(torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="y has 3 labels but there are 2 samples"):
        recheck_accuracy(torch.zeros(2, 2, dtype=torch.long), torch.tensor([0, 1, 2]))


def test_robustness_validation():
    with pytest.raises(ValueError, match="budget must be a positive integer"):
        robust_accuracy(SUCCESS, QUERIES, 0)
    with pytest.raises(ValueError, match="budget must be a positive integer"):
        robust_accuracy(SUCCESS, QUERIES, 2.5)
    with pytest.raises(ValueError, match="budget must be a positive integer"):
        robust_accuracy_curve(SUCCESS, QUERIES, [100, -1])
    with pytest.raises(ValueError, match="queries has length 5"):
        robust_accuracy(SUCCESS, QUERIES[:5], 10)
    with pytest.raises(ValueError, match="initially_correct has length 5"):
        success_rate(SUCCESS, QUERIES, 10, CORRECT[:5])
    with pytest.raises(ValueError, match="boolean mask"):
        robust_accuracy(torch.tensor([0, 2]), torch.tensor([1, 1]), 10)
    with pytest.raises(ValueError, match="integer counts"):
        robust_accuracy(SUCCESS, QUERIES.float(), 10)
    assert robust_accuracy(np.array([1, 0]), np.array([3, 9]), 10) == 0.5  # 0/1 masks are fine
