"""Expected calibration error and the reliability diagram (spec section 10).

Confidence is the top softmax probability, a sample is correct when its top class is the label.
Bins are equal-width and left-open, right-closed, (m/n, (m+1)/n], compared against the float64
edges `np.linspace(0, 1, n_bins + 1)`, so a confidence of 1.0 falls in the last bin (and 0.0,
which cannot be a top probability, in the first).
"""

from __future__ import annotations

import numpy as np

from ._arrays import labels, positive_int, scores_2d

_SUM_TOLERANCE = 1e-3  # float32 softmax rows sum to 1 within ~1e-6; logits essentially never do


def expected_calibration_error(probs, y, n_bins: int = 15) -> float:
    """ECE = sum over non-empty bins of (bin size / N) * |accuracy - confidence|, in [0, 1]."""
    return _ece(reliability_bins(probs, y, n_bins))


def reliability_bins(probs, y, n_bins: int = 15) -> list[dict]:
    """Per-bin {lower, upper, count, confidence, accuracy}; the last two are None for empty bins."""
    n_bins = positive_int(n_bins, "n_bins")
    p = _check_probs(probs)
    target = labels(y, len(p), p.shape[1])
    confidence = p.max(axis=1)
    correct = p.argmax(axis=1) == target
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # searchsorted(side="left") gives i with edges[i-1] < c <= edges[i]: bin i - 1.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    bins = []
    for m in range(n_bins):
        members = index == m
        count = int(members.sum())
        bins.append(
            {
                "lower": float(edges[m]),
                "upper": float(edges[m + 1]),
                "count": count,
                "confidence": float(confidence[members].mean()) if count else None,
                "accuracy": float(correct[members].mean()) if count else None,
            }
        )
    return bins


def plot_reliability(bins: list[dict], title: str = "Reliability diagram"):
    """A reliability diagram (accuracy bars against the diagonal, plus gap bars) as a Figure."""
    from matplotlib.figure import Figure  # lazy: importing the metrics must not load matplotlib

    if not bins or not all(isinstance(b, dict) for b in bins):
        raise ValueError("bins must be the non-empty list returned by reliability_bins()")
    filled = [b for b in bins if b["count"]]
    fig = Figure(figsize=(4.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    lefts = [b["lower"] for b in filled]
    widths = [b["upper"] - b["lower"] for b in filled]
    accs = [b["accuracy"] for b in filled]
    confs = [b["confidence"] for b in filled]
    ax.bar(lefts, accs, widths, align="edge", color="tab:blue", edgecolor="black", label="Accuracy")
    ax.bar(
        lefts,
        [c - a for a, c in zip(accs, confs)],
        widths,
        bottom=accs,
        align="edge",
        color="tab:red",
        alpha=0.3,
        edgecolor="tab:red",
        hatch="//",
        label="Gap",
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="Perfect calibration")
    ax.text(0.04, 0.92, f"ECE = {_ece(bins):.4f}", transform=ax.transAxes, fontsize=11)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Confidence", ylabel="Accuracy", title=title)
    ax.legend(loc="lower right")
    return fig


def _ece(bins: list[dict]) -> float:
    total = sum(b["count"] for b in bins)
    if total == 0:
        raise ValueError("bins hold no samples")
    gaps = (b["count"] / total * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"])
    return float(sum(gaps))


def _check_probs(probs) -> np.ndarray:
    p = scores_2d(probs, "probs")
    if np.isnan(p).any() or p.min() < 0.0 or p.max() > 1.0:
        raise ValueError(
            "probs must lie in [0, 1]: pass softmax probabilities (e.g. logits.softmax(dim=1)), "
            "not logits"
        )
    worst = float(np.abs(p.sum(axis=1) - 1.0).max())
    if worst > _SUM_TOLERANCE:
        raise ValueError(
            f"probs rows must sum to 1 (worst row is off by {worst:.3g}): pass softmax "
            "probabilities (e.g. logits.softmax(dim=1)), not logits or unnormalised scores"
        )
    return p
