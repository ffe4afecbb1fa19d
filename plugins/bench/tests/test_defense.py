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
        (["--requery", "-1"], "--requery: Input should be greater than or equal to 0"),
    ],
)
def test_bad_input_fails_with_a_clear_message(args, message, yw_registry, capsys, tmp_path):
    yw_registry(DefenseBench, Flip, Trained, *_registry().load_all("attack").values())
    code = cli.main(["bench", "defense", *args, "--out", str(tmp_path), "--no-progress"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"query_model": "pairs"}, "query_model\n  Input should be 'batch' or 'single'"),
        ({"requery": -1}, "requery\n  Input should be greater than or equal to 0"),
        ({"requery": 2.5}, "requery\n  Input should be a valid integer"),
    ],
)
def test_bad_query_settings_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        DefenseBenchConfig(**values)


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


class Coin(Flip):
    """A randomised defense: each answer's classes are shifted by one with probability 1/2."""

    name = "coin"
    summary = "flips every answer with probability 1/2"
    capabilities = Capabilities(post_hoc=True, deterministic=False)

    def protect(self, model, *, data=None, runtime):
        return torch.nn.Sequential(model, CoinFlip())


class CoinFlip(torch.nn.Module):
    def forward(self, z):
        flip = torch.rand(len(z), device=z.device) < 0.5  # the global RNG, seeded by the runtime
        return torch.where(flip[:, None], z.roll(1, dims=1), z)


class Pairs(Flip):
    """A batch-dependent defense that cannot answer a batch of 1."""

    name = "pairs"
    summary = "needs two inputs per call"

    def protect(self, model, *, data=None, runtime):
        return torch.nn.Sequential(model, NeedsPairs())


class NeedsPairs(torch.nn.Module):
    def forward(self, z):
        if len(z) < 2:
            raise ValueError("pairs needs a batch of 2 or more")
        return z


def test_recheck_equals_first_fooled_for_the_undefended_model(tmp_path):
    config = DefenseBenchConfig(methods=("none",), requery=3, **SMALL)
    report = run_defense_bench(config, tmp_path / "on", progress=False)
    for attack, a in report["results"]["none"]["attacks"].items():
        # deterministic model: a fooled x_adv stays fooled, an unfooled one stays right
        assert a["recheck"]["robust_accuracy"] == a["robust_accuracy"]["50"], attack
        assert len(a["recheck"]["rates"]) == 40
        assert set(a["recheck"]["rates"]) <= {0.0, 1.0}
    saved = json.loads((tmp_path / "on" / "results.json").read_text())
    assert set(saved["manifest"]["counting"]) == {"first_fooled", "recheck"}
    assert saved["manifest"]["query_model"]["name"] == "batch"
    assert "re-check x3" in (tmp_path / "on" / "results.txt").read_text()

    off = run_defense_bench(config.model_copy(update={"requery": 0}), tmp_path / "off")
    for attack, a in off["results"]["none"]["attacks"].items():
        assert a["recheck"] is None
        assert (
            a["robust_accuracy"] == report["results"]["none"]["attacks"][attack]["robust_accuracy"]
        )
    assert off["manifest"]["counting"]["recheck"] == "off (requery=0)"
    assert "re-check" not in (tmp_path / "off" / "results.txt").read_text()


def test_recheck_differs_from_first_fooled_for_a_randomised_defense(tmp_path):
    config = DefenseBenchConfig(methods=("coin",), requery=5, **SMALL)
    first = run_defense_bench(config, tmp_path / "a", registry=_registry(Coin))
    for attack, a in first["results"]["coin"]["attacks"].items():
        recheck = a["recheck"]["robust_accuracy"]
        assert 0.0 <= recheck <= 1.0
        assert all(0.0 <= r <= 1.0 for r in a["recheck"]["rates"])
        # a coin flip fools nearly every sample once, but about half the re-queries are right
        assert a["robust_accuracy"]["50"] < 0.1 < recheck, attack
        assert recheck == pytest.approx(1 - sum(a["recheck"]["rates"]) / 40)
    assert first["manifest"]["capabilities"]["coin"]["deterministic"] is False
    second = run_defense_bench(config, tmp_path / "b", registry=_registry(Coin))
    assert _without_timing(first)["results"] == _without_timing(second)["results"]  # seeded


def test_single_query_model_runs_and_is_recorded(tmp_path):
    config = DefenseBenchConfig(
        methods=("coin",), attacks=("square",), queries=(10,), n=6, requery=2,
        query_model="single", device="cpu",
    )  # fmt: skip
    report = run_defense_bench(config, tmp_path, registry=_registry(Coin))
    assert report["manifest"]["query_model"]["name"] == "single"
    assert report["manifest"]["query_model"]["batch"] == 1
    assert len(report["results"]["coin"]["attacks"]["square"]["recheck"]["rates"]) == 6
    assert "query model: single" in (tmp_path / "results.txt").read_text()


def test_a_defense_that_needs_pairs_fails_clearly_under_single(tmp_path):
    config = DefenseBenchConfig(
        methods=("pairs",), attacks=("square",), queries=(10,), n=4, device="cpu"
    )
    run_defense_bench(config, tmp_path / "batch", registry=_registry(Pairs))  # batches: fine
    single = config.model_copy(update={"query_model": "single"})
    with pytest.raises(ValueError, match=r"pairs cannot answer a single query.*batch of 2"):
        run_defense_bench(single, tmp_path / "single", registry=_registry(Pairs))


def test_unig_answers_single_queries_with_its_calibration_rows(tmp_path):
    unig = pytest.importorskip("yw_plugin_unig").UniG
    config = DefenseBenchConfig(
        methods=("unig",), attacks=("square",), queries=(10,), n=4, requery=2,
        query_model="single", device="cpu",
    )  # fmt: skip
    report = run_defense_bench(config, tmp_path / "a", registry=_registry(unig))
    assert 0.0 <= report["results"]["unig"]["attacks"]["square"]["recheck"]["robust_accuracy"] <= 1
    alone = config.model_copy(update={"overrides": {"unig": {"combine": 0}}})
    with pytest.raises(ValueError, match="unig cannot answer a single query.*calibration"):
        run_defense_bench(alone, tmp_path / "b", registry=_registry(unig))
