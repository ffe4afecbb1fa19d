"""yw_core.metrics calibration: ECE and reliability bins vs the spec and an independent loop."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from yw_core.metrics import expected_calibration_error, plot_reliability, reliability_bins


def _two_class(conf, correct):
    """Probabilities [c, 1 - c] with label 0 where correct, else 1."""
    conf = np.asarray(conf, dtype=np.float64)
    probs = np.stack([conf, 1.0 - conf], axis=1)
    return probs, np.where(correct, 0, 1)


def test_spec_vector_ece_is_015():
    probs, y = _two_class([0.95] * 4 + [0.55] * 2, [1, 1, 1, 0, 1, 0])
    assert expected_calibration_error(probs, y) == pytest.approx(0.15)
    assert expected_calibration_error(
        torch.tensor(probs, dtype=torch.float32), torch.tensor(y)
    ) == (pytest.approx(0.15, abs=1e-6))
    bins = reliability_bins(probs, y)
    filled = {i: b for i, b in enumerate(bins) if b["count"]}
    assert sorted(filled) == [8, 14]
    assert filled[14] == pytest.approx(
        {"lower": 14 / 15, "upper": 1.0, "count": 4, "confidence": 0.95, "accuracy": 0.75}
    )
    assert filled[8]["count"] == 2 and filled[8]["accuracy"] == 0.5
    assert bins[0]["confidence"] is None and bins[0]["accuracy"] is None
    json.dumps(bins)  # JSON-ready


def test_bins_are_left_open_right_closed():
    edges = np.linspace(0.0, 1.0, 16)
    probs, y = _two_class([1.0, edges[8], edges[8] + 1e-9], [1, 1, 0])
    bins = reliability_bins(probs, y)
    assert bins[14]["count"] == 1  # confidence 1.0 falls in the last bin
    assert bins[7]["count"] == 1  # exactly 8/15 closes bin 7, (7/15, 8/15]
    assert bins[8]["count"] == 1  # just above 8/15 opens bin 8
    assert sum(b["count"] for b in bins) == 3


def _ece_loop(probs: np.ndarray, y: np.ndarray, n_bins: int) -> float:
    """Straightforward independent ECE: a masked loop over (lower, upper] bins."""
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for lower, upper in zip(edges[:-1], edges[1:]):
        inside = (conf > lower) & (conf <= upper)
        if inside.any():
            gap = abs((pred[inside] == y[inside]).mean() - conf[inside].mean())
            ece += inside.mean() * gap
    return ece


@pytest.mark.parametrize("n_bins", [15, 10, 1])
def test_ece_matches_independent_loop_on_random_data(n_bins):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2000, 10)) * 3.0
    y = np.where(rng.random(2000) < 0.6, logits.argmax(axis=1), rng.integers(0, 10, 2000))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    expected = _ece_loop(probs, y, n_bins)
    assert expected > 0.01  # the random data is miscalibrated, so the comparison means something
    assert expected_calibration_error(probs, y, n_bins=n_bins) == pytest.approx(expected, abs=1e-12)


def test_ece_matches_torchmetrics_when_installed():
    tm = pytest.importorskip("torchmetrics.functional.classification")
    gen = torch.Generator().manual_seed(1)
    probs = (torch.randn(500, 5, generator=gen) * 2).softmax(dim=1)
    y = torch.randint(0, 5, (500,), generator=gen)
    oracle = tm.multiclass_calibration_error(probs, y, num_classes=5, n_bins=15, norm="l1")
    assert expected_calibration_error(probs, y) == pytest.approx(float(oracle), abs=1e-5)


def test_logits_are_refused_with_a_clear_message():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.1]])
    with pytest.raises(ValueError, match="pass softmax probabilities"):
        expected_calibration_error(logits, torch.tensor([0, 1]))
    unnormalised = torch.tensor([[0.5, 0.2], [0.3, 0.3]])  # in [0, 1] but rows do not sum to 1
    with pytest.raises(ValueError, match="sum to 1"):
        expected_calibration_error(unnormalised, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(logits.softmax(dim=1), torch.tensor([0, 1]), n_bins=0)


def test_plot_reliability_draws_bars_without_pyplot(tmp_path):
    probs, y = _two_class([0.95] * 4 + [0.55] * 2, [1, 1, 1, 0, 1, 0])
    fig = plot_reliability(reliability_bins(probs, y), title="Toy model")
    ax = fig.axes[0]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == (
        "Toy model",
        "Confidence",
        "Accuracy",
    )
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == [0.05, 0.2, 0.5, 0.75]  # two accuracy bars and two gap bars
    assert any("ECE = 0.1500" in t.get_text() for t in ax.texts)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    # A library must not touch pyplot's global state.
    code = (
        "import sys, numpy as np; from yw_core.metrics import plot_reliability, reliability_bins; "
        "plot_reliability(reliability_bins(np.array([[0.9, 0.1]]), np.array([0]))); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
