"""`yw-core bench robust-training` end to end on a tiny budget: rows, files, bad input."""

import json

import pytest

from yw_bench.robust_training import ATTACKS, RobustBenchConfig, RobustTrainingBench
from yw_core.bench import run_protocol
from yw_core.cli import main

COLLAPSE = "fast-at-2x"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    pytest.importorskip("yw_plugin_subat")
    out = tmp_path_factory.mktemp("rbench")
    config = RobustBenchConfig(
        methods=("fast-at", "subat"), scaled=("fast-at",), epochs=2, n=40, seeds=(0, 1)
    )
    return run_protocol(RobustTrainingBench, config, out, progress=False), out


def test_rows_files_and_accuracies(report):
    report, out = report
    assert list(report["results"]) == ["none", "fast-at", "subat", COLLAPSE]
    for name in ("results.json", "results.txt", "val_pgd_accuracy.png"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "results.json").read_text())
    for name, r in saved["results"].items():
        for attack in ATTACKS:
            assert 0 <= r[attack] <= r["clean"] <= 1, (name, attack)
    assert saved["results"][COLLAPSE]["train_eps"] == pytest.approx(2 * 0.2)
    assert saved["results"]["fast-at"]["config"]["eps"] == pytest.approx(0.2)
    assert any("val_pgd_acc" in h for h in saved["results"]["fast-at"]["history"])
    for name, r in saved["results"].items():  # mean ± std over the two seeds
        assert [run["seed"] for run in r["runs"]] == [0, 1]
        mean = sum(run["clean"] for run in r["runs"]) / 2
        assert r["clean"] == pytest.approx(mean) and r["clean_std"] >= 0
    guard = saved["results"]["subat"]["runs"][0]["history"][-1]
    assert guard["stage"] == "lr_guard" and guard["lr_bound"] > 0
    assert "seeds=0,1" in (out / "results.txt").read_text()


def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", "robust-training", "--methods", "nosuch", "--out", str(out)]) == 2
    assert "unknown method nosuch" in capsys.readouterr().err
    assert main(["bench", "robust-training", "--eps", "0", "--out", str(out)]) == 2
    assert "--eps" in capsys.readouterr().err
    assert not out.exists()


def test_the_default_network_ends_in_a_normalised_embedding():
    """Linear → BatchNorm1d → ReLU before the head, as the papers' nets end: without it Sub-AT's
    lr 1 is above the stability bound (issue 18)."""
    from torch import nn

    from yw_core.models import seeded_model

    config = RobustBenchConfig()
    model = seeded_model(config.arch, 10, 1, 0, norm_embedding=config.norm_embedding)
    kinds = [
        type(m) for m in model.modules() if isinstance(m, (nn.Linear, nn.BatchNorm1d, nn.ReLU))
    ]
    assert kinds[-4:] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
