"""bench forecast: its split and metrics, and a run with two in-test forecasters (one with a
threshold and opportunities) through the whole protocol."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import Field, ValidationError

from yw_bench.forecast import ForecastBench, ForecastBenchConfig, scores_metrics, split
from yw_core.interfaces import Capabilities, Forecaster, MethodConfig, Records


class Attachment(Forecaster):
    """A pair converges next in proportion to how many patents its two codes have."""

    name = "attachment"
    summary = "test forecaster: preferential attachment of the codes' patent counts"
    capabilities = Capabilities()
    history_columns = ("year", "ipc")
    query_columns = ("year", "a", "b")

    class Config(MethodConfig):
        window: int = Field(3, ge=1, description="unused; the protocol sets it")

    counts = None

    def fit(self, history):
        history.require(self.history_columns, "history")
        self.counts = {}
        for codes in history["ipc"]:
            for code in codes:
                self.counts[code] = self.counts.get(code, 0) + 1
        return self

    def predict(self, query):
        if self.counts is None:
            raise RuntimeError("call fit() before predict()")
        query.require(self.query_columns, "query")
        scores = [
            self.counts.get(a, 0) * self.counts.get(b, 0) for a, b in zip(query["a"], query["b"])
        ]
        return torch.tensor(scores, dtype=torch.float32)


class Advisor(Attachment):
    """Attachment with a decision threshold and a firm's opportunities."""

    name = "advisor"
    summary = "test forecaster with a threshold and opportunities"
    threshold = 1000.0

    def opportunities(self, firm, *, pairs, judge):
        ranked = sorted(self.counts, key=self.counts.get, reverse=True)[:2]
        topic = {
            "firm_code": ranked[0],
            "firm_topic": 0,
            "target_code": ranked[1],
            "target_topic": 1,
            "firm_terms": ["alpha", "beta"],
            "target_terms": ["gamma"],
            "fusion": 0.9,
            "develop": 5.0,
            "score": 4.5,
            "judge_score": 5.05,
        }
        return {
            "firm": firm,
            "judge": f"{judge} (test)",
            "pairs": [{"pair": sorted(ranked), "type": "II", "score": 3.0}],
            "topics": [topic],
            "agreement": None,
        }


SMALL = {
    "device": "cpu",
    "codes": 15,
    "first_year": 2012,
    "last_year": 2021,
    "patents_per_year": 80,
    "seeds": (0, 1),
    "reference": "advisor",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from yw_core.bench import run_protocol
    from yw_core.registry import Registry

    out = tmp_path_factory.mktemp("forecast")
    bench = ForecastBench(Registry.from_classes([Attachment, Advisor]))
    run_protocol(bench, ForecastBenchConfig(**SMALL), out=out, progress=False)
    return json.loads((out / "results.json").read_text()), out


def test_every_forecaster_and_the_truth_get_a_row(report):
    data, out = report
    results = data["results"]
    assert sorted(results) == ["advisor", "attachment", "truth"]
    for row in results.values():
        assert 0 <= row["aupr"] <= 1 and 0 <= row["ks"] <= 1
        assert [r["seed"] for r in row["runs"]] == [0, 1]
    assert "f1" in results["advisor"] and "f1" not in results["attachment"]  # no threshold
    assert results["truth"]["auc"] > 0.6  # 0.73 measured on these 54 pairs; chance is 0.5
    assert data["manifest"]["window"] == [2019, 2021] and data["manifest"]["positives"] > 0
    table = (out / "results.txt").read_text()
    assert "opportunities for Focal Corp" in table and "alpha beta | gamma" in table
    assert data["opportunities"]["pairs"][0]["converged"] in (0, 1, None)  # None: connected
    assert (out / "forecast_quality.png").stat().st_size > 0


def test_split_hides_the_last_window_and_keeps_unconnected_pairs():
    patents = Records(
        {
            "id": list("123456"),
            "year": [2000, 2001, 2002, 2003, 2004, 2004],
            "assignee": ["x"] * 6,
            "ipc": [
                ["A01B", "B25J"],
                ["C12N"],
                ["G01N"],
                ["B25J", "C12N"],
                ["A01B"],
                ["G01N", "C12N"],
            ],
            "cited": [[]] * 6,
            "text": ["t"] * 6,
        }
    )
    history, query, labels, start = split(patents, 2)
    assert start == 2003 and max(history["year"]) == 2002
    pairs = list(zip(query["a"], query["b"]))
    assert ("A01B", "B25J") not in pairs and len(pairs) == 5
    assert dict(zip(pairs, labels.tolist())) == {
        ("A01B", "C12N"): 0,
        ("A01B", "G01N"): 0,
        ("B25J", "C12N"): 1,
        ("B25J", "G01N"): 0,
        ("C12N", "G01N"): 1,
    }
    assert set(query["year"]) == {2003}
    with pytest.raises(ValueError, match="no history before its window"):
        split(patents, 5)


def test_metrics_of_a_perfect_and_a_reversed_ranker():
    labels = np.array([0, 0, 1, 1, 0])
    perfect = scores_metrics(labels.astype(float), labels, 1.0, 0.5)
    assert perfect["auc"] == perfect["aupr"] == perfect["ks"] == perfect["f1"] == 1.0
    assert perfect["cost"] == 0.0
    reversed_ = scores_metrics(-labels.astype(float), labels, 1.0, None)
    assert reversed_["auc"] == 0.0 and "f1" not in reversed_


@pytest.mark.parametrize(
    "values, field",
    [
        ({"seeds": ()}, "seeds"),
        ({"window": 0}, "window"),
        ({"codes": 2}, "codes"),
        ({"seed_": 1}, "seed_"),
    ],
)
def test_bad_settings_name_the_field(values, field):
    with pytest.raises(ValidationError, match=field):
        ForecastBenchConfig(**values)


def test_a_missing_patent_file_is_a_value_error_naming_it(tmp_path):
    from yw_bench.forecast import load_patents

    with pytest.raises(ValueError, match="absent.csv"):
        load_patents(ForecastBenchConfig(data=str(tmp_path / "absent.csv")), 0)
