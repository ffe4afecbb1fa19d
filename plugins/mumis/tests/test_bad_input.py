"""MUMis's bad input: Config values (ValidationError naming the field), and data or models it
cannot unlearn (ValueError naming the problem); the caller's model is never changed."""

import pytest
import torch
from pydantic import ValidationError
from torch.utils.data import TensorDataset

from yw_core.testing import tiny_classifier, tiny_dataset
from yw_plugin_mumis import MUMis


@pytest.mark.parametrize(
    "overrides",
    [{"delta": 0}, {"lr": -1}, {"batch_size": 0}, {"max_steps": 0}, {"other": "all"}],
)
def test_bad_config_values_name_the_field(overrides):
    with pytest.raises(ValidationError, match=next(iter(overrides))):
        MUMis(**overrides)


def _unlearn(model, forget, runtime):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        MUMis(max_steps=2).unlearn(model, forget, runtime=runtime)
    finally:
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    ("forget", "message"),
    [
        (TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)), "empty"),
        (TensorDataset(torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 7, 9])), r"7, 9 are outside"),
        (TensorDataset(torch.rand(4, 1, 8, 8), torch.tensor([0, -1, 2, 3])), "-1 are outside"),
    ],
)
def test_bad_forget_sets_are_named(forget, message, runtime):
    with pytest.raises(ValueError, match=message):
        _unlearn(tiny_classifier(), forget, runtime)


def test_a_frozen_model_is_named(runtime):
    with pytest.raises(ValueError, match="no trainable parameters"):
        _unlearn(tiny_classifier().requires_grad_(False), tiny_dataset(8), runtime)


def test_a_single_class_model_is_named(runtime):
    data = TensorDataset(torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2 classes"):
        _unlearn(tiny_classifier(num_classes=1), data, runtime)


def test_a_nan_input_is_a_floating_point_error(runtime):
    x = torch.rand(4, 1, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="NaN or inf in the forget set"):
        _unlearn(tiny_classifier(), TensorDataset(x, torch.tensor([0, 1, 2, 3])), runtime)
