"""`yw-core bench defense` end to end on the embedded default, with the real attacks plugin.

The reference model is trained once per session into a temporary cache (a few seconds on CPU).
"""

import json
import sys

import pytest
import torch

from yw_bench.defense import DefenseBench, DefenseBenchConfig
from yw_core import cli
from yw_core.bench import run_protocol
from yw_core.interfaces import Capabilities, Defense, MethodConfig
from yw_core.registry import Registry

pytest.importorskip("yw_plugin_attacks")
from yw_plugin_attacks import NES, Bandits, BiSquare, SignHunter, SimBA, Square, UpSquare  # noqa: E402

SMALL = dict(attacks=("square", "simba"), queries=(10, 50), n=40, device="cpu")


@pytest.fixture(scope="module", autouse=True)
def model_cache(tmp_path_factory):
    """One temporary model cache for the module (never the user's)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("YW_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


class Flip(Defense):
    """A broken 'defense' whose output is not (N, classes)."""

    name = "flip"
    summary = "returns the logits transposed"
    capabilities = Capabilities(post_hoc=True)

    class Config(MethodConfig):
        pass

    def protect(self, model, *, data=None, runtime):
        return torch.nn.Sequential(model, Transpose())


class Transpose(torch.nn.Module):
    def forward(self, z):
        return z.t()


class Trained(Flip):
    """A training-time defense, which this protocol refuses."""

    name = "trained"
    capabilities = Capabilities(post_hoc=False, training=True)


def _registry(*defenses):
    attacks = [Square, SimBA, NES, Bandits, SignHunter, UpSquare, BiSquare]
    return Registry.from_classes([*defenses, *attacks])


def run_defense_bench(config, out, registry=None, progress=False):
    return run_protocol(DefenseBench, config, out, registry=registry, progress=progress)


def _without_timing(report):
    report = json.loads(json.dumps(report))
    report.pop("timing")
    report["manifest"].pop("wall_seconds")
    return report


def test_run_writes_results_table_and_plots_and_repeats_exactly(tmp_path):
    config = DefenseBenchConfig(methods=("none",), **SMALL)
    first = run_defense_bench(config, tmp_path / "a", progress=False)  # installed plugins
    for name in ("results.json", "results.txt", "robust_accuracy.png", "reliability_none.png"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    saved = json.loads((tmp_path / "a" / "results.json").read_text())
    assert saved["manifest"]["versions"]["yw-core"]
    assert saved["manifest"]["versions"]["yw-plugin-attacks"]
    assert saved["manifest"]["runtime"]["torch_version"] == torch.__version__
    none = saved["results"]["none"]
    assert none["argmax_agreement"] == 1.0 and none["logit_distortion"] == 0.0
    curve = none["attacks"]["square"]["robust_accuracy"]
    assert curve["50"] <= curve["10"] <= none["clean_accuracy"]
    second = run_defense_bench(config, tmp_path / "b", progress=False)
    assert _without_timing(first) == _without_timing(second)
    assert "square" in (tmp_path / "a" / "results.txt").read_text()


def test_each_score_based_attack_gets_stronger_with_budget(tmp_path):
    config = DefenseBenchConfig(
        methods=("none",),
        attacks=("square", "simba", "nes", "bandits", "signhunter"),
        queries=(20, 200, 1000),
        n=100,
        device="cpu",
    )
    report = run_defense_bench(config, tmp_path, registry=_registry(), progress=False)
    for attack, r in report["results"]["none"]["attacks"].items():
        curve = [r["robust_accuracy"][q] for q in ("20", "200", "1000")]
        assert curve[0] >= curve[1] >= curve[2], attack
        assert curve[2] < curve[0], f"{attack} did not get stronger with more queries: {curve}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "nosuch"], "unknown method nosuch; known methods: none, flip"),
        (["--attacks", "square,nosuch"], "unknown attack nosuch; known attacks: bandits"),
        (["--eps", "0"], "--eps: Input should be greater than 0"),
        (["--eps", "-0.1"], "--eps: Input should be greater than 0"),
        (["--n", "many"], "--n: Input should be a valid integer"),
        (["--overrides", "flip.nosuch=1"], "nosuch"),
        (["--overrides", "aaa.t=1"], "overrides name aaa, not in this run"),
        (["--queries", "100,-5"], "query budgets must be positive integers"),
        (["--queries", "0"], "query budgets must be positive integers"),
        (["--methods", "trained"], "training-time defenses"),
    ],
)
def test_bad_input_fails_with_a_clear_message(args, message, yw_registry, capsys, tmp_path):
    yw_registry(DefenseBench, Flip, Trained, *_registry().load_all("attack").values())
    code = cli.main(["bench", "defense", *args, "--out", str(tmp_path), "--no-progress"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_model_with_wrong_output_shape_is_named(tmp_path):
    config = DefenseBenchConfig(methods=("flip",), **SMALL)
    with pytest.raises(
        ValueError, match=r"flip must return logits of shape \(40, 10\).*got \(10, 40\)"
    ):
        run_defense_bench(config, tmp_path, registry=_registry(Flip), progress=False)
    assert not (tmp_path / "results.json").exists()


def test_cli_prints_the_table(yw_registry, capsys, tmp_path, monkeypatch):
    yw_registry(DefenseBench, Square, SimBA)
    monkeypatch.setattr(sys, "argv", ["yw-core"])
    args = ["bench", "defense", "--attacks", "square", "--queries", "10", "--n", "20"]
    assert cli.main([*args, "--device", "cpu", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "bench defense: digits" in out and "square" in out
    assert (tmp_path / "results.json").exists()
