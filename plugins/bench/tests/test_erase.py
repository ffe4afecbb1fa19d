"""bench erase: settings that validate, methods of the right kind only, and a short real run
whose table, results.json and sample grid agree."""

import json

import pytest
from pydantic import ValidationError

from yw_bench.erase import EraseBench, EraseBenchConfig
from yw_bench.unlearn import UnlearnBench


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"anchor": 3}, "anchor must differ from the concept"),
        ({"concept": 12}, "concept"),
        ({"seeds": ()}, "seeds needs at least one value"),
        ({"samples_per_class": 1}, "samples_per_class"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_bad_settings_name_the_problem(bad, field):
    with pytest.raises(ValidationError, match=field):
        EraseBenchConfig(**bad)


def test_repeated_seeds_run_once():
    assert EraseBenchConfig(seeds=(1, 0, 1)).seeds == (1, 0)


def _installed(*names):
    from yw_core.registry import Registry

    missing = set(names) - set(Registry.discover().names("unlearner"))
    if missing:
        pytest.skip(f"needs the unlearners {', '.join(sorted(missing))}")


def test_each_protocol_refuses_the_other_kind_of_unlearner():
    _installed("mimmu", "mumis")
    with pytest.raises(ValueError, match="mumis: unlearns classifiers.*bench unlearn"):
        EraseBench().run(EraseBenchConfig(methods=("mumis",)), runtime=None, progress=False)
    with pytest.raises(ValueError, match="mimmu: unlearns diffusion models.*bench erase"):
        bench = UnlearnBench()
        bench.run(bench.config(methods=("mimmu",)), runtime=None, progress=False)


def test_a_short_run_writes_a_table_results_and_the_sample_grid(tmp_path, monkeypatch):
    from yw_core.bench import run_protocol

    _installed("mimmu", "esd")
    monkeypatch.setenv("YW_CACHE_DIR", str(tmp_path / "cache"))
    bench = EraseBench()
    config = bench.config(
        device="cpu",
        methods=("esd", "mimmu"),
        seeds=(0, 1),
        ddpm_steps=100,
        forget_samples=16,
        samples_per_class=6,
        epochs=2,
        grid=2,
    )
    report = run_protocol(bench, config, tmp_path / "out", progress=False)
    rows = report["results"]
    assert list(rows) == ["original", "mimmu", "esd"]  # the reference, then MiM-MU first
    original = rows["original"]
    assert original["mi_erased"] == 1.0 and original["mi_others"] == 1.0
    assert original["seconds"] == 0.0
    for name in ("mimmu", "esd"):
        assert len(rows[name]["runs"]) == 2
        for run in rows[name]["runs"]:
            assert run["ua"] == pytest.approx(100 - run["erased"])
            assert 0 <= run["worst"] <= run["others"] <= 100
            assert run["fd_others"] >= 0 and run["seconds"] > 0
        assert rows[name]["config"]["epochs"] == 2 and rows[name]["config"]["lr"] == 1e-3
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["results"]["mimmu"]["erased"] == rows["mimmu"]["erased"]
    assert saved["manifest"]["ddpm"]["steps"] == 100
    assert [len(saved["grid"]["esd"][k]) for k in range(10)] == [2] * 10
    table = (tmp_path / "out" / "results.txt").read_text()
    assert "bench erase: class 3" in table and "FD others" in table and "Î erased" in table
    assert (tmp_path / "out" / "samples.png").stat().st_size > 0
