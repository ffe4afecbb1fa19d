"""bench rec: its metrics, and a run with two in-test click models (one with a W8A16 copy)
through the whole protocol."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import Field, ValidationError

from yw_bench.rec import RecBench, RecBenchConfig, auc, quality
from yw_bench.rec_data import synthetic_click_log
from yw_core.interfaces import MethodConfig, RecModel


class DotNet(torch.nn.Module):
    """logit = <sum of user embeddings, sum of item embeddings> + item bias."""

    def __init__(self, schema, dim):
        super().__init__()
        self.schema = schema
        self.tables = torch.nn.ModuleDict(
            {
                f.name: torch.nn.Embedding(f.cardinality, dim)
                if f.kind == "categorical"
                else torch.nn.Linear(f.dim, dim)
                for f in schema.fields
            }
        )
        self.bias = torch.nn.Embedding(schema.item_fields[0].cardinality, 1)
        with torch.no_grad():  # small initial embeddings: unseen ids start near zero
            for p in self.parameters():
                p.mul_(0.05)

    def side(self, side, features):
        self.schema.check_features(side, features)
        return sum(self.tables[f.name](features[f.name]) for f in self.schema.side_fields(side))

    def forward(self, user, items):
        bias = self.bias(items[self.schema.item_fields[0].name]).squeeze(-1)
        return (self.side("user", user) * self.side("item", items)).sum(-1) + bias

    def serve(self, user, candidates):
        bias = self.bias(candidates[self.schema.item_fields[0].name]).squeeze(-1)
        return self.side("item", candidates) @ self.side("user", user)[0] + bias


class RoundedNet(DotNet):
    """DotNet with a `w8a16()` copy whose tables are rounded to 1/8 steps."""

    def w8a16(self):
        import copy

        other = copy.deepcopy(self)
        with torch.no_grad():
            for p in other.parameters():
                p.copy_(torch.round(p * 8) / 8)
        return other.eval()


class Dot(RecModel):
    name = "dot"
    summary = "test model: dot product of the two sides"

    class Config(MethodConfig):
        width: int = Field(8, ge=1, description="embedding width")

    def build(self, schema):
        return DotNet(schema, self.config.width)


class Rounded(Dot):
    name = "rounded"
    summary = "test model with a W8A16 copy"

    def build(self, schema):
        return RoundedNet(schema, self.config.width)


SMALL = {
    "device": "cpu",
    "requests": 300,
    "candidates": 20,
    "epochs": 2,
    "batch_size": 128,
    "lr": 0.03,
    "seeds": (0, 1),
    "latency_candidates": (1, 7),
    "latency_repeats": 2,
    "reference": "dot",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from yw_core.bench import run_protocol
    from yw_core.registry import Registry

    out = tmp_path_factory.mktemp("rec")
    bench = RecBench(Registry.from_classes([Dot, Rounded]))
    run_protocol(bench, RecBenchConfig(**SMALL), out=out, progress=False)
    return json.loads((out / "results.json").read_text()), out


def test_every_model_gets_quality_latency_and_flops_rows(report):
    data, out = report
    results = data["results"]
    assert list(results) == ["dot", "rounded", "rounded+w8a16"]
    for row in results.values():
        assert 0 <= row["auc"] <= 1 and row["logloss"] > 0
        assert [r["seed"] for r in row["runs"]] == [0, 1]
        assert set(row["latency_ms"]) == {"1", "7"}
        assert all(v > 0 for v in row["latency_ms"].values())
        assert row["flops"]["7"] >= row["flops"]["1"] > 0
    assert results["dot"]["latency_ratio"] == {"1": 1.0, "7": 1.0}
    assert results["rounded+w8a16"]["max_logit_change"] > 0
    assert "max_logit_change" not in results["rounded"]
    assert 0.5 < data["manifest"]["truth_auc"] < 1
    table = (out / "results.txt").read_text()
    assert "rounded+w8a16" in table and "ratio@7" in table
    assert (out / "serving_latency.png").stat().st_size > 0


def test_a_trained_model_learns_the_synthetic_clicks(report):
    """The dot model picks up popularity and interaction: well above chance on held-out requests."""
    assert report[0]["results"]["dot"]["auc"] > 0.58  # 0.64 measured; chance is 0.5


def test_auc_and_gauc_on_a_hand_made_log():
    log = synthetic_click_log(3, 4, seed=0)
    labels = log.labels
    logits = labels * 2 - 1  # a perfect ranker
    q = quality(logits, log)
    assert q["auc"] == 1.0
    assert q["gauc"] in (1.0, None)  # None when no request has both clicks and non-clicks
    assert auc(torch.tensor([0.1, 0.4, 0.35, 0.8]), torch.tensor([0.0, 0.0, 1.0, 1.0])) == 0.75
    assert auc(torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0])) == 0.5  # ties count half


@pytest.mark.parametrize(
    "values, field",
    [
        ({"seeds": ()}, "seeds"),
        ({"latency_candidates": (0,)}, "latency_candidates"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"data": "criteo"}, "data"),
        ({"epoch": 3}, "epoch"),
    ],
)
def test_bad_settings_name_the_field(values, field):
    with pytest.raises(ValidationError, match=field):
        RecBenchConfig(**values)


def test_unknown_methods_and_overrides_are_errors():
    from yw_core.registry import Registry

    bench = RecBench(Registry.from_classes([Dot]))
    with pytest.raises(ValueError, match="unknown method nope"):
        bench.rows(RecBenchConfig(methods=("nope",)))
    with pytest.raises(ValueError, match="overrides name other"):
        bench.rows(RecBenchConfig(overrides={"other": {"width": 2}}))
    with pytest.raises(ValueError, match="width"):
        bench.rows(RecBenchConfig(overrides={"dot": {"width": 0}}))


def test_movielens_without_its_files_is_a_value_error_naming_recbole(monkeypatch):
    from yw_bench import rec_data
    from yw_bench.rec import load_log

    monkeypatch.setattr(rec_data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="data movielens: .*recbole"):
        load_log(RecBenchConfig(data="movielens"), 0)


def test_movielens_splits_by_request_when_on_disk():
    from yw_bench.rec import load_log

    try:
        train, test = load_log(RecBenchConfig(data="movielens"), 0)
    except ValueError as exc:
        pytest.skip(str(exc))
    assert test.n_requests == round(0.2 * (train.n_requests + test.n_requests))
    assert len(train) + len(test) == 99_576  # 100,000 ratings less single-rating user-days
    assert {f.name for f in train.schema.user_fields} >= {"user_id", "age", "gender"}
