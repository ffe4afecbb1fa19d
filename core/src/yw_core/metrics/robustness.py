"""Robustness under a query budget, from per-sample attack results (spec section 0).

Inputs are `AttackResult.success` (bool, N) and `AttackResult.total_queries` (integer, N). A sample
is fooled within budget Q when its attack succeeded after at most Q queries. Samples the model got
wrong before the attack come with success=True and 0 queries, so they count as non-robust.
"""

from __future__ import annotations

import numpy as np

from ._arrays import mask, positive_int, vector


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
