"""bench interpret: its metrics on hand-made cases, and a run with three in-test interpreters (a
gradient x input one that trains detectors, one with reliability, one that guesses) through the
whole protocol on synthetic flows."""

from __future__ import annotations

import copy
import json
from typing import Literal

import pytest
import torch
from pydantic import Field, ValidationError
from torch import nn

from yw_bench.interpret import (
    InterpretBench,
    InterpretBenchConfig,
    deletion_flips,
    detection_metrics,
    flag_metrics,
    jaccard,
    kinds_first,
    load_flows,
    planted_precision,
    pseudo_label_metrics,
    stability,
)
from yw_core.interfaces import Explanation, Interpreter, MethodConfig
from yw_core.interfaces.method import Variant
from yw_core.models import SplitClassifier, eval_mode
from yw_core.runtime import Runtime
from yw_core.testing import protocol_suite

TestInterpretBenchConformance = protocol_suite(InterpretBench)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one intra-op thread is faster than two, more so on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fit_classifier(model, x, y, steps: int = 80):
    """Full-batch Adam on class-balanced cross-entropy."""
    counts = torch.bincount(y, minlength=2).clamp(min=1).float()
    loss_fn = nn.CrossEntropyLoss(weight=counts.sum() / counts)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    return model.eval()


class GradInput(Interpreter):
    """Gradient x input of the predicted class's logit."""

    name = "grad-input"
    summary = "test interpreter: gradient x input"

    class Config(MethodConfig):
        top_n: int = Field(5, ge=1, description="set by the protocol")

    model = None

    def fit(self, model, data, *, runtime):
        self.model, self.runtime = model, runtime
        return self

    def attributions(self, x):
        if self.model is None:
            raise RuntimeError("call fit() before explain()")
        x = self.runtime.to(x).detach().clone().requires_grad_(True)
        with torch.enable_grad(), eval_mode(self.model):
            logits = self.model(x)
            target = logits.argmax(dim=1)
            (grad,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), x)
        return (grad * x).detach(), target

    def explain(self, x):
        attributions, target = self.attributions(x)
        return Explanation(attributions.to(x.device), target=target.to(x.device))


class Saliency(GradInput):
    """Gradient x input that also trains detectors: supervised, then confident pseudo labels."""

    name = "saliency"
    summary = "test interpreter with detectors: self-training on confident pseudo labels"
    variants = {
        "saliency-supervised": Variant(
            label="the labelled flows only", overrides={"training": "supervised"}
        )
    }

    class Config(GradInput.Config):
        training: Literal["self-training", "supervised"] = Field(
            "self-training", description="whether to add confident pseudo labels"
        )
        confidence: float = Field(0.99, gt=0, lt=1, description="pseudo-label confidence")

    @staticmethod
    def build_model(in_features):
        return SplitClassifier(
            nn.Sequential(nn.Linear(in_features, 16), nn.ReLU()), nn.Linear(16, 2)
        )

    def train_detector(self, model, data, *, runtime):
        x, y = data.tensors
        model = fit_classifier(copy.deepcopy(model), x[y >= 0], y[y >= 0])
        accepted = torch.zeros(0, dtype=torch.long)
        labels = accepted
        if self.config.training == "self-training":
            with torch.no_grad():
                probs = torch.softmax(model(x), dim=1)
            confident = (probs.max(dim=1).values >= self.config.confidence) & (y < 0)
            accepted = confident.nonzero().flatten()
            labels = probs[accepted].argmax(dim=1)
            known = torch.cat([(y >= 0).nonzero().flatten(), accepted])
            model = fit_classifier(model, x[known], torch.cat([y[y >= 0], labels]), steps=30)
        history = {"accepted": accepted.tolist(), "pseudo_labels": labels.tolist()}
        return model, {**history, "agreement_before": 0.0, "agreement_after": 0.0}


class Kam(GradInput):
    """Gradient x input with a reliability: the overlap of its top features with the top
    features of the mean |attribution| over the fit data."""

    name = "kam"
    summary = "test interpreter with reliability"

    class Config(GradInput.Config):
        threshold: float = Field(0.6, ge=0, le=1, description="reliable at or above")

    def fit(self, model, data, *, runtime):
        super().fit(model, data, runtime=runtime)
        self.global_top = self.attributions(data.tensors[0])[0].abs().mean(0).topk(3).indices
        return self

    def explain(self, x):
        attributions, target = self.attributions(x)
        local = attributions.abs().topk(3, dim=1).indices.cpu()
        overlap = (local[:, :, None] == self.global_top.cpu()).any(2).sum(1) / 3
        return Explanation(attributions.to(x.device), overlap.to(x.device), target.to(x.device))


class Guess(GradInput):
    """Random attributions from its seed: unstable, and blind to the planted features."""

    name = "guess"
    summary = "test interpreter: random attributions"

    class Config(GradInput.Config):
        seed: int = Field(0, ge=0, description="set by the protocol")

    def explain(self, x):
        if self.model is None:
            raise RuntimeError("call fit() before explain()")
        gen = torch.Generator().manual_seed(self.config.seed + len(x))
        return Explanation(torch.rand(x.shape, generator=gen).to(x.device))


SMALL = {
    "device": "cpu",
    "flows": 900,
    "seeds": (0, 1),
    "label_fractions": (0.05, 0.2),
    "interpret_fraction": 0.05,
    "explain": 30,
    "reference": "saliency",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from yw_core.bench import run_protocol
    from yw_core.registry import Registry

    out = tmp_path_factory.mktemp("interpret")
    bench = InterpretBench(Registry.from_classes([Saliency, Kam, Guess]))
    run_protocol(bench, InterpretBenchConfig(**SMALL), out=out, progress=False)
    return json.loads((out / "results.json").read_text()), out


def test_detectors_get_a_row_per_label_fraction_and_interpreters_a_row(report):
    data, out = report
    results = data["results"]
    assert sorted(results) == ["guess", "kam", "saliency", "saliency-supervised"]
    for row in ("saliency", "saliency-supervised"):
        assert sorted(results[row]["detection"]) == ["0.05", "0.2"]
        for d in results[row]["detection"].values():
            assert [r["seed"] for r in d["runs"]] == [0, 1]
            assert 0 <= d["spauc"] <= 1 and 0 <= d["f1"] <= 1
        assert results[row]["detection"]["0.05"]["auc"] > 0.75  # 0.87-0.89 measured
        assert results[row]["detection"]["0.2"]["auc"] > 0.9  # 0.96-0.97 measured
    assert (
        "detection" not in results["kam"] and "interpretation" not in results["saliency-supervised"]
    )
    self_trained = results["saliency"]["detection"]["0.05"]
    assert self_trained["accepted"] > 0 and self_trained["pseudo_precision"] > 0.9
    supervised = results["saliency-supervised"]["detection"]["0.05"]
    assert supervised["accepted"] == 0 and "pseudo_precision" not in supervised
    assert data["manifest"]["explained"] > 0
    table = (out / "results.txt").read_text()
    assert (
        "detection (test split)" in table and "interpretation of the detector of saliency" in table
    )
    assert (out / "attributions.png").stat().st_size > 0
    examples = data["examples"]
    assert sorted(examples["attributions"]) == ["guess", "kam", "saliency"]
    assert len({row["kind"] for row in examples["rows"]}) == 3  # dos, scan, exfiltration
    assert all(len(row["planted"]) == 3 for row in examples["rows"])


def test_gradients_find_the_planted_features_and_guesses_do_not(report):
    results = report[0]["results"]
    grad, guess = results["saliency"]["interpretation"], results["guess"]["interpretation"]
    assert grad["stability"] == 1.0 and guess["stability"] < 0.6
    assert grad["planted"] > guess["planted"] + 0.2
    assert grad["fidelity"] >= grad["fidelity_random"]
    assert 0 < grad["robustness"] <= 1
    assert "flagged" not in grad
    kam = results["kam"]["interpretation"]
    assert 0 <= kam["flagged"] <= 1 and [r["seed"] for r in kam["runs"]] == [0, 1]


def test_deletion_flips_only_where_the_deleted_features_carried_the_decision():
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]))
        model.bias.copy_(torch.tensor([0.5, 0.0]))
    x = torch.tensor([[1.0, 1.0, 5.0], [1.0, 0.0, 5.0]])
    top = torch.tensor([[0], [0]])
    flips = deletion_flips(model, x, top, torch.zeros(3), torch.ones(2), Runtime(device="cpu"))
    assert flips.tolist() == [False, True]


def test_explained_flows_start_with_one_of_each_kind():
    kinds = ("dos", "dos", "benign", "scan", "dos", "scan", "exfiltration")
    index = torch.tensor([0, 1, 3, 4, 5, 6])
    assert kinds_first(index, kinds).tolist() == [0, 3, 6, 1, 4, 5]
    assert kinds_first(index, None) is index


def test_jaccard_and_stability_of_top_sets():
    a, b = torch.tensor([[0, 1, 2], [4, 5, 6]]), torch.tensor([[1, 2, 3], [6, 5, 4]])
    assert jaccard(a, b).tolist() == [0.5, 1.0]
    assert stability([a, a, a]) == 1.0
    assert stability([a, a, b]) == pytest.approx((1.0 + 0.75 + 0.75) / 3)


def test_planted_precision_counts_top_features_of_the_rows_kind():
    names = ("a", "b", "c", "d")
    planted = {"dos": ("a", "b", "c"), "scan": ("d",)}
    top = torch.tensor([[0, 1, 3], [3, 2, 1], [0, 1, 2]])
    assert planted_precision(top, ["dos", "scan", "benign"], planted, names) == pytest.approx(
        (2 / 3 + 1 / 3) / 2
    )
    assert planted_precision(top[:1], ["benign"], planted, names) is None


def test_flag_precision_is_fidelity_among_flagged_explanations():
    reliability = torch.tensor([0.2, 0.6, 0.8, 1.0])
    faithful = torch.tensor([True, False, True, True])
    out = flag_metrics(reliability, faithful, 0.6)
    assert out["flagged"] == 0.75 and out["flag_precision"] == pytest.approx(2 / 3)
    assert flag_metrics(reliability, faithful, 1.1) == {"flagged": 0.0, "flag_precision": None}


def test_detection_and_pseudo_label_metrics():
    perfect = detection_metrics([0.1, 0.2, 0.9, 0.8], [0, 0, 1, 1])
    assert perfect == {"accuracy": 1.0, "f1": 1.0, "auc": 1.0, "spauc": 1.0}
    with pytest.raises(ValueError, match="benign and anomalous"):
        detection_metrics([0.1, 0.2], [0, 0])
    truth = torch.tensor([1, 1, 0])
    history = {"accepted": [0, 2], "pseudo_labels": [1, 1]}
    assert pseudo_label_metrics(history, truth) == {"accepted": 2.0, "pseudo_precision": 0.5}
    empty = pseudo_label_metrics({"accepted": [], "pseudo_labels": []}, truth)
    assert empty == {"accepted": 0.0, "pseudo_precision": None}
    with pytest.raises(ValueError, match="pseudo_labels"):
        pseudo_label_metrics({"accepted": [0], "pseudo_labels": []}, truth)


def test_the_reference_must_train_detectors():
    from yw_core.registry import Registry

    bench = InterpretBench(Registry.from_classes([Saliency, Kam]))
    with pytest.raises(ValueError, match="reference kam.*build_model"):
        bench.methods(InterpretBenchConfig(reference="kam"))
    chosen = bench.methods(InterpretBenchConfig(methods=("kam",), reference="saliency"))
    assert list(chosen) == ["saliency", "kam"]  # the reference always runs, first


@pytest.mark.parametrize(
    "values, field",
    [
        ({"seeds": ()}, "seeds"),
        ({"label_fractions": (0.0,)}, "label_fractions"),
        ({"interpret_fraction": 0}, "interpret_fraction"),
        ({"top_n": 0}, "top_n"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"repeats": 1}, "repeats"),
        ({"data_kind": "pcap"}, "data_kind"),
    ],
)
def test_bad_settings_name_the_field(values, field):
    with pytest.raises(ValidationError, match=field):
        InterpretBenchConfig(**values)


def test_top_n_beyond_the_features_is_a_value_error():
    with pytest.raises(ValueError, match="top_n 50"):
        load_flows(InterpretBenchConfig(flows=200, top_n=50), 0)


def test_a_flow_file_is_split_and_standardised_by_its_train_split(tmp_path):
    rows = ["bytes,rate,label"] + [f"{100 * i},{i % 7},{int(i % 5 == 0)}" for i in range(40)]
    (tmp_path / "flows.csv").write_text("\n".join(rows))
    config = InterpretBenchConfig(data=str(tmp_path / "flows.csv"), top_n=2, test_fraction=0.25)
    train, test = load_flows(config, 0)
    assert (len(train), len(test)) == (30, 10) and train.names == ("bytes", "rate")
    assert torch.allclose(train.x.mean(0), torch.zeros(2), atol=1e-5)
    assert int(test.truth.sum()) == 2  # stratified: 8 anomalies, a quarter held out


def test_a_missing_flow_file_is_a_value_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match="absent.csv"):
        load_flows(InterpretBenchConfig(data=str(tmp_path / "absent.csv")), 0)
