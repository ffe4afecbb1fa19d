"""Conformance suite for Forecaster plugins: the promises of `yw_core.interfaces.Forecaster`."""

from __future__ import annotations

import copy
import re
from typing import Any, ClassVar

import pytest

from yw_core.testing.method import MethodConformance

CODES = ("A01", "B02", "C03", "G06", "H04", "H01")


class ForecasterConformance(MethodConformance):
    """A forecaster declares the columns it reads; `fit` returns self; `predict` gives a float
    tensor with one finite score per query row (a one-row query included); `predict` before
    `fit` is a RuntimeError; a missing `history_columns` or `query_columns` column is a
    ValueError naming it; neither call modifies its records; with `capabilities.deterministic`
    the same history gives the same scores.

    The default tables are synthetic co-occurrence events: history rows (year, a, b) of code
    pairs seen together in 2000-2009, query rows (year, a, b) of pairs to score for 2010, seen
    and unseen. A forecaster that reads other columns must override `make_history` and
    `make_query`; until it does, the suite fails with NotImplementedError saying so."""

    default_columns: ClassVar[tuple[str, ...]] = ("year", "a", "b")

    def _default_table(self, declared: tuple[str, ...], hook: str) -> None:
        if missing := [c for c in declared if c not in self.default_columns]:
            raise NotImplementedError(
                f"{self.method.__qualname__} reads column(s) {', '.join(missing)} that the "
                f"suite's synthetic table ({', '.join(self.default_columns)}) lacks: override "
                f"{hook} in its conformance suite"
            )

    def make_history(self):
        """(year, a, b) events: frequent pairs recur every year, others now and then."""
        from yw_core.interfaces import Records

        self._default_table(self.method.history_columns, "make_history")
        rows = []
        for year in range(2000, 2010):
            rows.append({"year": year, "a": CODES[0], "b": CODES[1]})
            rows.append({"year": year, "a": CODES[year % 3], "b": CODES[3 + year % 2]})
            if year >= 2006:  # a pair that is converging lately
                rows.append({"year": year, "a": CODES[2], "b": CODES[5]})
        return Records.from_rows(rows)

    def make_query(self):
        """(year, a, b) candidate pairs for 2010: seen pairs and never-seen ones."""
        from yw_core.interfaces import Records

        self._default_table(self.method.query_columns, "make_query")
        pairs = [(0, 1), (2, 5), (1, 3), (0, 4), (3, 5), (4, 5)]
        return Records(
            {
                "year": [2010] * len(pairs),
                "a": [CODES[i] for i, _ in pairs],
                "b": [CODES[j] for _, j in pairs],
            }
        )

    def fitted(self, history=None):
        return self.make().fit(self.make_history() if history is None else history)

    def test_declares_the_columns_it_reads(self):
        for what in ("history_columns", "query_columns"):
            names = getattr(self.method, what)
            assert isinstance(names, tuple) and all(isinstance(n, str) and n for n in names), (
                f"{what} must be a tuple of column names, got {names!r}"
            )
        assert self.method.history_columns, "history_columns must name the columns fit reads"

    def test_fit_returns_self_and_predict_scores_each_query_row(self):
        import torch

        from yw_core.interfaces import Records

        forecaster = self.make()
        assert forecaster.fit(self.make_history()) is forecaster
        query = self.make_query()
        scores = forecaster.predict(query)
        assert isinstance(scores, torch.Tensor), f"predict() returned {type(scores).__name__}"
        assert scores.dtype.is_floating_point, f"scores are {scores.dtype}"
        assert scores.shape == (len(query),), f"scores have shape {tuple(scores.shape)}"
        assert torch.isfinite(scores).all()
        one = Records({name: query[name][:1] for name in query.columns})
        assert forecaster.predict(one).shape == (1,)

    def test_predict_before_fit_raises(self):
        with pytest.raises(RuntimeError):
            self.make().predict(self.make_query())

    def test_missing_history_column_is_a_value_error_naming_it(self):
        history = self.make_history()
        for name in self.method.history_columns:
            with pytest.raises(ValueError, match=re.escape(name)):
                self.make().fit(_without(history, name))

    def test_missing_query_column_is_a_value_error_naming_it(self):
        if not self.method.query_columns:
            pytest.skip("declares no query columns")
        forecaster, query = self.fitted(), self.make_query()
        for name in self.method.query_columns:
            with pytest.raises(ValueError, match=re.escape(name)):
                forecaster.predict(_without(query, name))

    def test_records_are_not_modified(self):
        history, query = self.make_history(), self.make_query()
        before = _snapshot(history), _snapshot(query)
        self.make().fit(history).predict(query)
        assert _same(before[0], _snapshot(history)), "fit() modified the history"
        assert _same(before[1], _snapshot(query)), "predict() modified the query"

    def test_same_history_same_scores(self):
        import torch

        if not self.method.capabilities.deterministic:
            pytest.skip("not deterministic by its capabilities")
        first = self.fitted().predict(self.make_query())
        second = self.fitted().predict(self.make_query())
        assert torch.allclose(first, second, rtol=1e-5, atol=1e-6)


def _without(records, name: str):
    from yw_core.interfaces import Records

    return Records({c: records[c] for c in records.columns if c != name})


def _snapshot(records) -> dict[str, Any]:
    """Deep copies of every column (tensors and arrays cloned)."""
    out = {}
    for name in records.columns:
        column = records[name]
        out[name] = column.clone() if hasattr(column, "clone") else copy.deepcopy(column)
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    import numpy
    import torch

    if list(a) != list(b):
        return False
    for name in a:
        x, y = a[name], b[name]
        if isinstance(x, torch.Tensor):
            if not (isinstance(y, torch.Tensor) and torch.equal(x, y)):
                return False
        elif isinstance(x, numpy.ndarray):
            if not numpy.array_equal(x, y):
                return False
        elif x != y:
            return False
    return True
