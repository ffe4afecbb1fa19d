"""`yw-core bench ood` end to end with a tiny in-test scorer (max softmax), its OOD sets, and
its bad input. No OOD scorer plugin is needed: the scorer is registered in memory."""

import json
import sys

import numpy as np
import pytest
import torch
from pydantic import Field

from yw_bench.ood import OODBench, OODBenchConfig
from yw_bench.ood_sets import DEFAULT_SETS, OOD_SETS, Unavailable, make_ood_set
from yw_core import cli
from yw_core.bench import run_protocol
from yw_core.data import load_dataset
from yw_core.interfaces import Capabilities, MethodConfig, OODScorer, Variant, iter_batches
from yw_core.registry import Registry

SMALL = dict(device="cpu", epochs=5)


class TinyMSP(OODScorer):
    """Maximum softmax probability at a temperature; fit only reads the data."""

    name = "tiny-msp"
    summary = "max softmax probability (test scorer)"
    paper = None
    license = "MIT"
    status = "baseline"
    capabilities = Capabilities(post_hoc=True)
    variants = {"tiny-msp-t10": Variant(label="tiny-msp at temperature 10", overrides={"t": 10.0})}

    class Config(MethodConfig):
        t: float = Field(1.0, gt=0, description="softmax temperature")

    model = None

    def fit(self, model, id_data, *, runtime):
        for _ in iter_batches(id_data, labels=True):
            pass
        self.model, self.runtime = model, runtime
        return self

    def score(self, x):
        if self.model is None:
            raise RuntimeError("call fit() before score()")
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                logits = self.model(self.runtime.to(x)) / self.config.t
        finally:
            self.model.train(was_training)
        return logits.softmax(1).amax(1).to(x.device)


class Column(TinyMSP):
    """A broken scorer: scores of shape (N, 1)."""

    name = "column"
    variants = {}

    def score(self, x):
        return super().score(x)[:, None]


class Flat(TinyMSP):
    """A useless scorer: the same score for every input."""

    name = "flat"
    variants = {}

    def score(self, x):
        return torch.zeros(len(x))


def registry(*scorers):
    return Registry.from_classes([OODBench, *scorers])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ood")
    report = run_protocol(OODBench(registry(TinyMSP)), OODBenchConfig(**SMALL), out, progress=False)
    return report, out


# ---- the OOD sets ---------------------------------------------------------------------------


def available(name, n=40, shape=(1, 8, 8), seed=0):
    try:
        return make_ood_set(name, n, shape, seed)
    except Unavailable as exc:
        pytest.skip(f"{name}: {exc}")


@pytest.mark.parametrize("name", DEFAULT_SETS["digits"])
def test_digits_sets_have_the_shape_range_and_seed_they_promise(name):
    x = available(name)
    assert x.shape == (40, 1, 8, 8) and x.dtype == torch.float32
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert float(x.std()) > 0.01  # not constant images
    assert torch.equal(x, available(name))  # the same seed, the same images
    assert not torch.equal(x, available(name, seed=1))


@pytest.mark.parametrize("name", ["photos", "textures", "gaussian", "uniform"])
def test_image_sets_follow_a_colour_id_shape(name):
    x = available(name, n=6, shape=(3, 32, 32))
    assert x.shape == (6, 3, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1


@pytest.mark.parametrize("name", DEFAULT_SETS["digits"])
def test_a_set_depends_on_its_seed_alone(name):
    """Its own generator: the global RNGs do not matter, and a smaller set is a prefix."""
    torch.manual_seed(1)
    np.random.seed(1)
    big = available(name, n=30, seed=3)
    torch.manual_seed(2)
    np.random.seed(2)
    assert torch.equal(available(name, n=10, seed=3), big[:10])


def test_digits_5_9_are_unseen_classes_test_split_first():
    x = make_ood_set("digits-5-9", 2000, (1, 8, 8), 0)
    seen = {}
    for split in ("test", "train"):
        xs, ys = load_dataset("digits", split, seed=0).tensors
        seen[split] = {row.numpy().tobytes(): int(label) for row, label in zip(xs, ys)}
    n_test = sum(1 for label in seen["test"].values() if label >= 5)
    n_train = sum(1 for label in seen["train"].values() if label >= 5)
    assert len(x) == n_test + n_train  # every image of classes 5-9, fewer than asked
    keys = [row.numpy().tobytes() for row in x]
    assert all(seen["test"][k] >= 5 for k in keys[:n_test])
    assert all(seen["train"][k] >= 5 for k in keys[n_test:])


def test_textures_without_scikit_image_is_unavailable_with_the_pip_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # import skimage now fails
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(Unavailable, match=r"pip install 'yw-bench\[ood\]'"):
        make_ood_set("textures", 4, (1, 8, 8), 0)


def test_unknown_set_name_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown OOD set nosuch; known OOD sets: digits-5-9"):
        make_ood_set("nosuch", 4, (1, 8, 8), 0)


# ---- the protocol ---------------------------------------------------------------------------


def test_rows_metrics_and_files(run):
    report, out = run
    assert list(report["results"]) == ["tiny-msp", "tiny-msp-t10"]
    for name in ("results.json", "results.txt", "score_histograms.png"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "results.json").read_text())
    m = saved["manifest"]
    assert m["id_classes"] == [0, 1, 2, 3, 4] and m["id_accuracy"] > 0.9
    assert [s["name"] for s in m["ood_sets"]] == list(DEFAULT_SETS["digits"])
    msp = saved["results"]["tiny-msp"]
    assert msp["config"] == {"t": 1.0}
    assert saved["results"]["tiny-msp-t10"]["config"] == {"t": 10.0}
    assert msp["fit_seconds"] >= 0 and msp["score_seconds_per_1000"] > 0
    for name, metrics in msp["sets"].items():
        assert set(metrics) == {"auroc", "aupr_in", "aupr_out", "fpr95_ood", "fpr95_id"}, name
        assert all(0 <= v <= 1 for v in metrics.values())
    # the sanity floor: noise is far from real digits even for the plainest score
    assert msp["sets"]["gaussian"]["auroc"] > 0.9 and msp["sets"]["uniform"]["auroc"] > 0.9
    assert msp["near"]["auroc"] == msp["sets"]["digits-5-9"]["auroc"] > 0.6
    far = [s for s in msp["sets"] if OOD_SETS[s].kind == "far"]
    assert msp["far"]["auroc"] == pytest.approx(np.mean([msp["sets"][s]["auroc"] for s in far]))
    scores = saved["scores"]["tiny-msp"]
    assert len(scores["id"]) == m["id_test"] and all(isinstance(v, float) for v in scores["id"])
    for s in m["ood_sets"]:
        if "skipped" not in s:
            assert len(scores[s["name"]]) == s["size"] == m["id_test"]


def test_table_shows_every_set_and_the_skipped_ones(run):
    report, out = run
    text = (out / "results.txt").read_text()
    header = text.splitlines()[2]
    for name in DEFAULT_SETS["digits"]:
        assert name in header
    assert "tiny-msp-t10: tiny-msp at temperature 10" in text
    for s in report["manifest"]["ood_sets"]:
        if "skipped" in s:  # textures without scikit-image
            assert f"{s['name']}: skipped: {s['skipped']}" in text


def test_same_seed_gives_the_same_scores(run, tmp_path):
    report, _ = run
    config = OODBenchConfig(**SMALL)
    again = run_protocol(OODBench(registry(TinyMSP)), config, tmp_path, progress=False)
    assert again["scores"] == report["scores"]
    assert again["manifest"]["id_accuracy"] == report["manifest"]["id_accuracy"]


def test_cli_runs_chosen_sets_and_prints_the_table(yw_registry, capsys, tmp_path, monkeypatch):
    yw_registry(OODBench, TinyMSP)
    monkeypatch.setattr(sys, "argv", ["yw-core"])
    args = ["bench", "ood", "--epochs", "2", "--ood-sets", "uniform,digits-5-9", "--no-variants"]
    assert cli.main([*args, "--ood-size", "50", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "bench ood: digits classes 0-4 as ID" in out and "OOD sets of 50" in out
    assert "tiny-msp-t10" not in out
    saved = json.loads((tmp_path / "results.json").read_text())
    assert list(saved["results"]["tiny-msp"]["sets"]) == ["digits-5-9", "uniform"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--ood-sets", "uniform,nosuch"],
            "--ood-sets: unknown OOD set nosuch; known OOD sets: digits-5-9, cifar100, photos, "
            "textures, svhn, gaussian, uniform",
        ),
        (
            ["--dataset", "cifar10", "--ood-sets", "digits-5-9"],
            "OOD set digits-5-9 is defined for ID dataset digits, not cifar10",
        ),
        (["--methods", "nosuch"], "unknown method nosuch; known methods: tiny-msp"),
        (["--overrides", "tiny-msp.nosuch=1"], "--overrides tiny-msp.nosuch"),
        (["--overrides", "tiny-msp.t=0"], "--overrides tiny-msp.t: Input should be greater"),
        (["--overrides", "other.t=1"], "overrides name other, not in this run"),
        (["--ood-size", "0"], "--ood-size: Input should be greater than or equal to 1"),
    ],
)
def test_bad_input_fails_with_a_clear_message(args, message, yw_registry, capsys, tmp_path):
    yw_registry(OODBench, TinyMSP)
    code = cli.main(["bench", "ood", *args, "--out", str(tmp_path), "--no-progress"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_unknown_dataset_is_a_usage_error(yw_registry, capsys, tmp_path):
    yw_registry(OODBench, TinyMSP)
    with pytest.raises(SystemExit) as exit_info:  # argparse: not one of the choices
        cli.main(["bench", "ood", "--dataset", "mnist", "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "--dataset: invalid choice: 'mnist' (choose from" in capsys.readouterr().err


def test_cifar10_without_data_names_the_missing_files(yw_registry, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("YW_DATA_DIR", str(tmp_path / "data"))
    yw_registry(OODBench, TinyMSP)
    out = tmp_path / "out"
    assert cli.main(["bench", "ood", "--dataset", "cifar10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "ID data set cifar10: cifar10 train split not found" in err
    assert str(tmp_path / "data" / "cifar-10-batches-py" / "data_batch_1") in err
    assert "cifar-10-python.tar.gz" in err
    assert not out.exists()


def test_no_scorer_installed_says_what_to_install(yw_registry, capsys, tmp_path):
    yw_registry(OODBench)
    assert cli.main(["bench", "ood", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no OOD scorer installed" in err and "pip install yw-plugin-" in err


def test_scorer_with_wrong_score_shape_is_named(tmp_path):
    config = OODBenchConfig(device="cpu", epochs=1, ood_sets=("uniform",))
    with pytest.raises(ValueError, match=r"column: score\(\) must return shape \(226,\)"):
        run_protocol(OODBench(registry(Column)), config, tmp_path, progress=False)
    assert not (tmp_path / "results.json").exists()


def test_a_constant_scorer_is_flagged_in_the_table(tmp_path):
    config = OODBenchConfig(device="cpu", epochs=1, ood_sets=("uniform",))
    report = run_protocol(OODBench(registry(Flat, TinyMSP)), config, tmp_path, progress=False)
    assert report["results"]["flat"]["constant"] and not report["results"]["tiny-msp"]["constant"]
    assert report["results"]["flat"]["sets"]["uniform"]["auroc"] == 0.5
    text = (tmp_path / "results.txt").read_text()
    assert "flat: every input got the same score" in text and "tiny-msp: every" not in text
