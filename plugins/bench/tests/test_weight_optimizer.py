"""`yw-core bench weight-optimizer` end to end on a tiny budget: files, determinism, bad input."""

import json
import math

import pytest

from yw_bench.weight_optimizer import WeightBenchConfig, WeightOptimizerBench, noisy_train_data
from yw_core.bench import run_protocol
from yw_core.cli import main


def run_weight_bench(config, out, progress=False):
    return run_protocol(WeightOptimizerBench, config, out, progress=progress)


TINY = {"epochs": 2, "seeds": (0, 1), "batch_size": 128}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    pytest.importorskip("yw_plugin_rwp")
    pytest.importorskip("yw_plugin_twa")
    out = tmp_path_factory.mktemp("wbench")
    config = WeightBenchConfig(methods=("sgd", "rwp", "twa"), ddp=("rwp",), **TINY)
    return run_weight_bench(config, out, progress=False), out


def test_rows_files_and_protocol(report):
    report, out = report
    assert set(report["results"]) == {"sgd", "rwp", "twa", "sgd-ddp", "rwp-ddp"}
    for name in ("results.json", "results.txt", "accuracy_vs_epoch.png", "accuracy_vs_time.png"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "results.json").read_text())
    assert saved["results"]["sgd"]["accuracy_mean"] == report["results"]["sgd"]["accuracy_mean"]
    r = report["results"]
    assert r["sgd"]["step_ratio"] == 1.0 and r["sgd-ddp"]["step_ratio"] == 1.0
    assert r["rwp"]["updates"] == r["sgd"]["updates"]  # sequential RWP: 2 batches per update
    # 2 ranks: half the data per rank (padded to equal shards), so RWP doubles its epochs
    per_rank = math.ceil(len(noisy_train_data(WeightBenchConfig(), 0)[0]) / 2)
    ddp_batches = math.ceil(per_rank / 128)
    assert r["sgd-ddp"]["updates"] == 2 * ddp_batches
    assert r["rwp-ddp"]["updates"] == 4 * ddp_batches
    # TWA: one head epoch of SGD (0.5 of 2) plus its own (2 / 20 -> 1)
    assert r["twa"]["epochs"] == 2 and [len(run["history"]) for run in r["twa"]["runs"]] == [2, 2]
    for row in r.values():
        assert len(row["runs"]) == 2 and 0 < row["accuracy_mean"] <= 1
    table = (out / "results.txt").read_text()
    assert "rwp-ddp" in table and "±" in table


def test_same_seed_same_accuracy(report, tmp_path):
    report, _ = report
    again = run_weight_bench(
        WeightBenchConfig(methods=("sgd",), **{**TINY, "seeds": (1,)}),
        tmp_path,
        progress=False,
    )
    sgd = report["results"]["sgd"]["runs"][1]
    assert again["results"]["sgd"]["runs"][0]["final_accuracy"] == sgd["final_accuracy"]


def test_label_noise_is_seeded_and_at_the_rate():
    config = WeightBenchConfig(label_noise=0.2)
    (a, classes), (b, _) = noisy_train_data(config, 0), noisy_train_data(config, 0)
    clean, _ = noisy_train_data(WeightBenchConfig(label_noise=0.0), 0)
    assert classes == 10 and a.tensors[1].equal(b.tensors[1])
    changed = (a.tensors[1] != clean.tensors[1]).float().mean().item()
    assert 0.15 < changed < 0.2  # 20% redrawn, a tenth of those land on the true class


def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", "weight-optimizer", "--methods", "nosuch", "--out", str(out)]) == 2
    assert "unknown method nosuch; known methods: sgd" in capsys.readouterr().err
    assert main(["bench", "weight-optimizer", "--label-noise", "1.5", "--out", str(out)]) == 2
    assert "--label-noise" in capsys.readouterr().err
    assert main(["bench", "weight-optimizer", "--seeds", "-1", "--out", str(out)]) == 2
    assert "seeds must be non-negative" in capsys.readouterr().err
    assert main(["bench", "weight-optimizer", "--ddp", "sgd", "--out", str(out)]) == 2
    assert "sgd: no distributed mode" in capsys.readouterr().err
    assert not out.exists()


def test_the_default_network_ends_in_a_normalised_embedding():
    """Linear → BatchNorm1d → ReLU before the head, as the papers' nets end (issue 18)."""
    from torch import nn

    from yw_bench.weight_optimizer import fresh_model

    config = WeightBenchConfig()
    train, classes = noisy_train_data(config, 0)
    layers = list(fresh_model(config, train, classes, 0).modules())
    kinds = [type(m) for m in layers if isinstance(m, (nn.Linear, nn.BatchNorm1d, nn.ReLU))]
    assert kinds[-4:] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
