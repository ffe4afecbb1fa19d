"""Robustness under a query budget, from per-sample attack results (spec section 0).

Inputs are `AttackResult.success` (bool, N) and `AttackResult.total_queries` (integer, N). A sample
is fooled within budget Q when its attack succeeded after at most Q queries. Samples the model got
wrong before the attack come with success=True and 0 queries, so they count as non-robust.

That is the first-fooled rule: a sample counts as fooled at the first query whose answer was
misclassified. Against a randomised defense the same adversarial input may be classified
correctly on the next query, so `recheck_rates` and `recheck_accuracy` score the final adversarial
inputs re-queried R times instead: `predictions` (R, N) holds the predicted class of each sample
on each re-query.
"""

from __future__ import annotations

import numpy as np

from ._arrays import labels, mask, positive_int, to_numpy, vector


def robust_accuracy(success, queries, budget: int) -> float:
    """Fraction of ALL samples not fooled within `budget` queries (initially wrong = non-robust)."""
    fooled = _fooled(success, queries, budget)
    return float(np.mean(~fooled))


def robust_accuracy_curve(success, queries, budgets) -> dict[int, float]:
    """Robust accuracy at each budget, as {budget: value} in the order given."""
    budgets = list(budgets)
    if not budgets:
        raise ValueError("budgets must hold at least one budget")
    return {positive_int(b, "budget"): robust_accuracy(success, queries, b) for b in budgets}


def success_rate(success, queries, budget: int, initially_correct) -> float | None:
    """Fraction of initially correct samples fooled within `budget`; None when there is none."""
    fooled = _fooled(success, queries, budget)
    correct = mask(initially_correct, "initially_correct", len(fooled))
    if not correct.any():
        return None
    return float(np.mean(fooled[correct]))


def query_stats(success, queries, budget: int, initially_correct) -> dict[str, float | None]:
    """Mean and median queries of the successful attacks on initially correct samples.

    Returns {"mean": ..., "median": ...}; both are None when no such attack succeeded.
    """
    fooled = _fooled(success, queries, budget)
    correct = mask(initially_correct, "initially_correct", len(fooled))
    spent = _queries(queries, len(fooled))[fooled & correct]
    if spent.size == 0:
        return {"mean": None, "median": None}
    return {"mean": float(np.mean(spent)), "median": float(np.median(spent))}


def recheck_rates(predictions, y) -> list[float]:
    """Per sample, the fraction of R re-queries whose predicted class is not the label y.

    `predictions` is (R, N) predicted classes (R >= 1 re-queries of N final adversarial inputs),
    `y` the N labels; returns N rates in [0, 1].
    """
    return [float(r) for r in _misclassified(predictions, y).mean(0)]


def recheck_accuracy(predictions, y) -> float:
    """Robust accuracy by re-check: 1 - mean misclassification over samples and re-queries."""
    return float(np.mean(~_misclassified(predictions, y)))


def _misclassified(predictions, y) -> np.ndarray:
    pred = to_numpy(predictions, "predictions")
    if pred.ndim != 2 or pred.size == 0:
        raise ValueError(
            f"predictions must have shape (R, N): R >= 1 re-queries of N >= 1 samples, "
            f"got {tuple(pred.shape)}"
        )
    if not np.issubdtype(pred.dtype, np.integer):
        raise ValueError(f"predictions must hold integer classes, got dtype {pred.dtype}")
    return pred != labels(y, pred.shape[1])[None, :]


def _fooled(success, queries, budget) -> np.ndarray:
    budget = positive_int(budget, "budget")
    succeeded = mask(success, "success")
    return succeeded & (_queries(queries, len(succeeded)) <= budget)


def _queries(queries, n: int) -> np.ndarray:
    arr = vector(queries, "queries")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"queries must hold integer counts, got dtype {arr.dtype}")
    if len(arr) != n:
        raise ValueError(f"queries has length {len(arr)} but success has length {n}")
    if arr.min() < 0:
        raise ValueError("queries must be non-negative")
    return arr
