"""AnomalyAID's bad input fails at Config (ValidationError naming the field), in fit and
train_detector (ValueError naming the problem: no labels, a missing class, NaN, an unsplit
model) or in explain (RuntimeError before fit, ValueError for NaN or another input shape)."""

import pytest
import torch
from pydantic import ValidationError
from torch import nn
from torch.utils.data import TensorDataset

from yw_core.runtime import Runtime
from yw_plugin_anomalyaid import FCN, AnomalyAID


@pytest.fixture
def rows():
    """(x, y): 40 rows of 6 features, classes 0 and 1 with 10 labels each, 20 unlabelled."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g)
    y = torch.tensor([0, 1] * 10 + [-1] * 20)
    return x, y


def aid(**overrides):
    return AnomalyAID(**{"pfi_repeats": 2, **overrides})


def model():
    return AnomalyAID().build_model(6, seed=0)


@pytest.mark.parametrize(
    "overrides",
    [
        {"top_n": 0},
        {"threshold": 1.5},
        {"threshold": -0.1},
        {"local": "lime"},
        {"training": "co-training"},
        {"confidence": 2.0},
        {"eps": 0.0},
        {"min_samples": 0},
        {"pfi_samples": 0},
        {"pfi_repeats": 0},
        {"dropout": 1.0},
        {"lr": 0.0},
        {"epochs": 0},
        {"patience": 0},
        {"batch_size": 0},
        {"retrain_batch_size": 0},
        {"unlabelled_batch_size": 0},
        {"holdout_fraction": 1.0},
    ],
    ids=str,
)
def test_bad_config_is_rejected_by_name(overrides):
    with pytest.raises(ValidationError, match=next(iter(overrides))):
        AnomalyAID(**overrides)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"in_features": 0}, "in_features"),
        ({"in_features": 4, "classes": 1}, "classes"),
        ({"in_features": 4, "layers": -1}, "layers"),
        ({"in_features": 4, "dropout": 1.0}, "dropout"),
    ],
)
def test_bad_fcn_sizes_are_rejected_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        FCN(**kwargs)


def test_explain_before_fit_raises(rows):
    with pytest.raises(RuntimeError, match=r"call fit\(\) or train_detector\(\)"):
        aid().explain(rows[0])
    with pytest.raises(RuntimeError):
        aid().global_importance  # noqa: B018


def test_an_unsplit_model_is_rejected_with_the_convention(runtime, rows):
    plain = nn.Sequential(nn.Linear(6, 2))
    with pytest.raises(ValueError, match=r"`\.features`.*`\.head`"):
        aid().fit(plain, TensorDataset(*rows), runtime=runtime)
    with pytest.raises(ValueError, match="train_detector"):
        aid().train_detector(plain, TensorDataset(*rows), runtime=runtime)


def test_train_detector_needs_labels(runtime, rows):
    with pytest.raises(ValueError, match="needs labels"):
        aid().train_detector(model(), rows[0], runtime=runtime)


def test_train_detector_without_labelled_rows_says_so(runtime, rows):
    x, _ = rows
    with pytest.raises(ValueError, match="no labelled rows"):
        aid().train_detector(model(), TensorDataset(x, torch.full((40,), -1)), runtime=runtime)


def test_a_class_missing_from_the_labelled_rows_is_named(runtime, rows):
    x, y = rows
    y = torch.where(y == 1, -1, y)
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] missing from the labelled rows"):
        aid().train_detector(model(), TensorDataset(x, y), runtime=runtime)


def test_fit_names_a_class_without_reference_rows(runtime, rows):
    x, _ = rows
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] have no rows"):
        aid().fit(model(), TensorDataset(x, torch.zeros(40, dtype=torch.long)), runtime=runtime)


@pytest.mark.parametrize("bad", [2, -2])
def test_labels_outside_the_classes_are_named(runtime, rows, bad):
    x, y = rows
    y = y.clone()
    y[0] = bad
    for call in (aid().fit, aid().train_detector):
        with pytest.raises(ValueError, match=rf"labels must be -1 .* got \[{bad}\]"):
            call(model(), TensorDataset(x, y), runtime=runtime)


def test_fractional_labels_are_rejected(runtime, rows):
    x, y = rows
    with pytest.raises(ValueError, match="integer class indices"):
        aid().train_detector(model(), TensorDataset(x, y.float() + 0.5), runtime=runtime)


def test_nan_inputs_are_rejected(runtime, rows):
    x, y = rows
    x = x.clone()
    x[3, 2] = float("nan")
    for call in (aid().fit, aid().train_detector):
        with pytest.raises(ValueError, match="NaN"):
            call(model(), TensorDataset(x, y), runtime=runtime)
    fitted = aid().fit(model(), TensorDataset(*rows), runtime=runtime)
    with pytest.raises(ValueError, match="NaN"):
        fitted.explain(x)


def test_explain_names_inputs_of_another_shape(runtime, rows):
    fitted = aid().fit(model(), TensorDataset(*rows), runtime=runtime)
    with pytest.raises(ValueError, match=r"\(7,\) per row.*\(6,\)"):
        fitted.explain(torch.randn(3, 7))
    with pytest.raises(ValueError, match="shape"):
        fitted.explain(torch.randn(6))


def test_an_empty_batch_gets_an_empty_explanation(runtime, rows):
    fitted = aid().fit(model(), TensorDataset(*rows), runtime=runtime)
    explanation = fitted.explain(torch.zeros(0, 6))
    assert explanation.attributions.shape == (0, 6)
    assert explanation.reliability.shape == (0,) and explanation.target.shape == (0,)


def test_a_failed_refit_leaves_the_interpreter_unfitted(runtime, rows):
    fitted = aid().fit(model(), TensorDataset(*rows), runtime=runtime)
    x, _ = rows
    with pytest.raises(ValueError):
        fitted.fit(model(), TensorDataset(x, torch.zeros(40, dtype=torch.long)), runtime=runtime)
    with pytest.raises(RuntimeError):
        fitted.explain(x)


def test_data_of_another_kind_is_a_type_error(runtime):
    with pytest.raises(TypeError, match="data must be"):
        aid().fit(model(), [[0.0] * 6], runtime=runtime)


def test_training_with_one_labelled_row_per_class_skips_early_stopping():
    """Nothing can be held out, so stage 1 runs all its epochs."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 6, generator=g), torch.tensor([0, 1] + [-1] * 28)
    trained, history = aid(epochs=3).train_detector(
        model(), TensorDataset(x, y), runtime=Runtime(device="cpu", seed=0, distributed=False)
    )
    assert history["held_out"] == [] and history["stage1_epochs"] == 3
    assert isinstance(trained, FCN)
