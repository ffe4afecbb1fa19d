"""bench unlearn: the forget/retain splits, retraining as the MIA reference, the table and the
gaps to retrain, and clear errors on bad settings."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError
from torch.utils.data import TensorDataset

from yw_bench.unlearn import (
    UnlearnBench,
    UnlearnBenchConfig,
    load_data,
    probabilities,
    split,
    train_original,
)
from yw_core import metrics
from yw_core.runtime import Runtime


@pytest.fixture(scope="module")
def data():
    return load_data(UnlearnBenchConfig(device="cpu"))[:2]


def test_random_split_forgets_the_fraction_and_keeps_the_rest(data):
    train, test = data
    config = UnlearnBenchConfig(device="cpu", forget_fraction=0.1)
    forget, retain, held_out = split(config, "random", train, test, seed=0)
    assert len(forget) == round(0.1 * len(train)) and len(forget) + len(retain) == len(train)
    assert held_out is test
    rows = {tuple(x.flatten().tolist()) for x in train.tensors[0]}
    assert {tuple(x.flatten().tolist()) for x in forget.tensors[0]} <= rows
    other = split(config, "random", train, test, seed=1)[0]
    assert not torch.equal(forget.tensors[0], other.tensors[0])  # the seed picks the set


def test_class_split_forgets_one_class_and_tests_on_the_others(data):
    train, test = data
    forget, retain, held_out = split(UnlearnBenchConfig(device="cpu"), "class", train, test, 0)
    assert set(forget.tensors[1].tolist()) == {3}
    assert 3 not in set(retain.tensors[1].tolist()) | set(held_out.tensors[1].tolist())
    assert len(forget) + len(retain) == len(train)


def test_retraining_leaves_the_forget_set_at_the_test_set_level_of_mia(data):
    """Random forgetting: to a model retrained without them, the forget images look like test
    images no attack saw (both MIAs within 5 points); class-wise, the attack tells a forgotten
    class from the original's members (efficacy >= 90% vs <= 10%)."""
    train, test = data
    config = UnlearnBenchConfig(device="cpu")
    runtime = Runtime(device="cpu", seed=0, distributed=False)
    x, y = test.tensors
    half = len(y) // 2
    shadow, unseen = TensorDataset(x[:half], y[:half]), TensorDataset(x[half:], y[half:])

    def attacks(model, retain, probe):
        p = {k: probabilities(model, d, runtime) for k, d in (("r", retain), ("s", shadow))}
        probe_p = probabilities(model, probe, runtime)
        r, s = (retain.tensors[1], shadow.tensors[1])
        efficacy = metrics.mia_efficacy(p["r"], r, p["s"], s, probe_p, probe.tensors[1])
        return efficacy, metrics.entropy_mia(p["r"], p["s"], probe_p)

    forget, retain, _ = split(config, "random", train, test, seed=0)
    retrained = train_original(config, retain, runtime, 10)
    on_forget, on_unseen = attacks(retrained, retain, forget), attacks(retrained, retain, unseen)
    assert on_forget == pytest.approx(on_unseen, abs=0.05)

    forget, retain, _ = split(config, "class", train, test, seed=0)
    retrained = train_original(config, retain, runtime, 10)
    original = train_original(config, train, runtime, 10)
    assert attacks(retrained, retain, forget)[0] >= 0.9
    assert attacks(original, retain, forget)[0] <= 0.1


def test_bad_settings_are_clear_errors():
    for bad in ({"forget_fraction": 0.0}, {"forget_fraction": 1.0}, {"settings": ()}):
        with pytest.raises(ValidationError):
            UnlearnBenchConfig(**bad)
    with pytest.raises(ValueError, match="forget_class 12 is not a class of digits"):
        load_data(UnlearnBenchConfig(forget_class=12))


def test_a_run_reports_gaps_to_retrain_and_writes_a_readable_table(tmp_path):
    from yw_core.bench import run_protocol
    from yw_core.registry import Registry

    names = set(Registry.discover().names("unlearner"))
    if not {"retrain", "mumis"} <= names:
        pytest.skip("needs yw-plugin-baselines (retrain) and yw-plugin-mumis")
    bench = UnlearnBench()
    config = bench.config(
        device="cpu",
        methods=("mumis", "retrain"),
        seeds=(0, 1),
        epochs=2,
        overrides={"mumis": {"max_steps": 3}},
    )
    report = run_protocol(bench, config, tmp_path, progress=False)
    for setting in ("random", "class"):
        rows = report["results"][setting]
        assert list(rows) == ["original", "retrain", "mumis"]  # the reference first
        assert rows["retrain"]["avg_gap"] == 0.0 and rows["retrain"]["rte_ratio"] == 1.0
        assert rows["mumis"]["remaining_data_free"] is True
        assert len(rows["mumis"]["runs"]) == 2 and rows["mumis"]["avg_gap"] >= 0.0
        assert {r["stopped_by"] for r in rows["mumis"]["runs"]} <= {"delta", "max_steps"}
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["results"]["class"]["mumis"]["fa"] == report["results"]["class"]["mumis"]["fa"]
    table = (tmp_path / "results.txt").read_text()
    assert "class: forget class 3" in table and "mumis *" in table and "Avg.Gap" in table
    assert (tmp_path / "gap_vs_time.png").stat().st_size > 0
