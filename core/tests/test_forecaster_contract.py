"""The Forecaster contract on a trivial forecaster (recency-weighted co-occurrence counts), the
suite catching broken ones, and the checks of `Records`."""

import pytest
import torch
from pydantic import Field

from yw_core.interfaces import Capabilities, Forecaster, MethodConfig, Records
from yw_core.testing import conformance_suite


class CoOccurrence(Forecaster):
    """A pair of codes converges next if it co-occurred often, and lately, in the history."""

    name = "cooccurrence-contract"
    summary = "Recency-weighted co-occurrence counts of code pairs."
    license = "MIT"
    status = "baseline"
    capabilities = Capabilities()
    history_columns = ("year", "a", "b")
    query_columns = ("a", "b")

    class Config(MethodConfig):
        decay: float = Field(0.8, gt=0.0, le=1.0, description="weight lost per year of age")

    counts = None

    def fit(self, history):
        history.require(self.history_columns, "history")
        last = max(history["year"])
        self.counts = {}
        for row in history.rows():
            pair = frozenset((row["a"], row["b"]))
            weight = self.config.decay ** (last - row["year"])
            self.counts[pair] = self.counts.get(pair, 0.0) + weight
        return self

    def predict(self, query):
        if self.counts is None:
            raise RuntimeError("call fit() before predict()")
        query.require(self.query_columns, "query")
        pairs = (frozenset((a, b)) for a, b in zip(query["a"], query["b"]))
        return torch.tensor([self.counts.get(p, 0.0) for p in pairs], dtype=torch.float32)


TestCoOccurrenceConformance = conformance_suite(CoOccurrence)


def test_counts_rank_frequent_pairs_first():
    scores = CoOccurrence().fit(TestCoOccurrenceConformance().make_history())
    query = Records({"a": ["A01", "C03", "A01"], "b": ["B02", "H01", "Z99"]})
    assert scores.predict(query).argsort(descending=True).tolist() == [0, 1, 2]


def test_suite_catches_a_forecaster_that_sorts_its_history_in_place():
    class Sorter(CoOccurrence):
        name = "sorter"

        def fit(self, history):
            history["year"].sort(reverse=True)  # "most recent first", in the caller's table
            return super().fit(history)

    suite = conformance_suite(Sorter)()
    with pytest.raises(AssertionError, match="modified the history"):
        suite.test_records_are_not_modified()


def test_suite_catches_a_forecaster_without_the_fit_check():
    class Eager(CoOccurrence):
        name = "eager"
        counts = {}

    suite = conformance_suite(Eager)()
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        suite.test_predict_before_fit_raises()


def test_suite_asks_for_tables_when_the_method_reads_other_columns():
    class Citations(CoOccurrence):
        name = "citations"
        history_columns = ("year", "a", "b", "cited_by")

    suite = conformance_suite(Citations)()
    with pytest.raises(NotImplementedError, match="cited_by.*override make_history"):
        suite.test_fit_returns_self_and_predict_scores_each_query_row()


def test_records_columns_rows_and_from_rows():
    records = Records.from_rows([{"year": 2001, "a": "A01"}, {"year": 2002, "a": "B02"}])
    assert records.columns == ("year", "a") and len(records) == 2
    assert list(records.rows()) == [{"year": 2001, "a": "A01"}, {"year": 2002, "a": "B02"}]
    assert records["year"] == [2001, 2002] and "a" in records and "b" not in records
    tensor = Records({"x": torch.arange(3), "y": (1, 2, 3)})
    assert isinstance(tensor["x"], torch.Tensor) and tensor["y"] == [1, 2, 3]
    assert len(Records({})) == 0 and len(Records({"a": []})) == 0
    assert repr(records) == "Records(2 rows: year, a)"


@pytest.mark.parametrize(
    ("columns", "error", "message"),
    [
        ([("a", [1])], TypeError, "dict of name"),
        ({"": [1]}, ValueError, "non-empty strings"),
        ({"a": "abc"}, ValueError, "column 'a' must be a sequence"),
        ({"a": 3}, ValueError, "column 'a' must be a sequence"),
        ({"a": [1, 2], "b": [1]}, ValueError, "differ in length: a=2, b=1"),
    ],
)
def test_records_errors_name_the_column(columns, error, message):
    with pytest.raises(error, match=message):
        Records(columns)


def test_from_rows_and_require_errors_name_the_columns():
    with pytest.raises(ValueError, match="no rows"):
        Records.from_rows([])
    with pytest.raises(
        ValueError, match=r"row 1 differs from row 0: missing \['b'\], extra \['c'\]"
    ):
        Records.from_rows([{"a": 1, "b": 2}, {"a": 1, "c": 3}])
    records = Records({"a": [1]})
    with pytest.raises(ValueError, match=r"history miss column\(s\): year, b \(have: a\)"):
        records.require(["year", "a", "b"], "history")
    with pytest.raises(ValueError, match="year"):
        records["year"]
