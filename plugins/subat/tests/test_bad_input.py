"""Sub-AT's bad input fails before any training, with a message that names the problem."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn
from torch.utils.data import TensorDataset

from yw_core.runtime import Runtime
from yw_core.testing import tiny_classifier, tiny_dataset
from yw_plugin_subat import SubAT

TINY = {"sample_epochs": 2, "n_components": 2, "subspace_epochs": 1, "progress": False}


def protect(method, model=None, data=None):
    runtime = Runtime(device="cpu", seed=0, distributed=False)
    return method.protect(model or tiny_classifier(), data=data, runtime=runtime)


def test_no_data():
    with pytest.raises(ValueError, match=r"subat trains the model: pass data=TensorDataset"):
        protect(SubAT(**TINY))


def test_inputs_outside_the_unit_box():
    data = TensorDataset(torch.full((8, 1, 8, 8), 255.0), torch.zeros(8).long())
    with pytest.raises(ValueError, match=r"inputs must be floats in \[0, 1\]"):
        protect(SubAT(**TINY), data=data)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # 2 epochs of 2 batches: w0 + 2 x 2 = 5 checkpoints, so k <= 4
        ({"n_components": 5}, r"n_components 5 must be below the 5 checkpoints.*<= 4"),
        # the paper's k = 80, set explicitly, needs 65 epochs of checkpoints, not 2
        ({"n_components": 80}, r"n_components 80 must be below the 5 checkpoints"),
        # one batch per epoch: no mid-epoch checkpoint, w0 + 2 = 3
        ({"n_components": 3, "batch_size": 64}, r"below the 3 checkpoints.*of 1 batches"),
    ],
)
def test_too_many_components_for_the_trajectory(overrides, message):
    with pytest.raises(ValueError, match=message):
        protect(SubAT(**{**TINY, "batch_size": 16, **overrides}), data=tiny_dataset(32))


def test_a_model_without_trainable_parameters():
    model = tiny_classifier().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        protect(SubAT(**TINY), model=model, data=tiny_dataset(32))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"eps": 0}, "eps"),
        ({"eps": -1 / 255}, "eps"),
        ({"train_eps_ratio": 0}, "train_eps_ratio"),
        ({"n_components": 0}, "n_components"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"val_fraction": 0}, "select='best' needs validation data"),
        ({"sampler": "free"}, "sampler"),
    ],
)
def test_bad_config_is_rejected_at_construction(overrides, message):
    with pytest.raises(ValidationError, match=message):
        SubAT(**overrides)


def test_frozen_parameters_stay_frozen():
    """Only trainable parameters are sampled and projected; a frozen layer does not move."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 4))
    model[1].requires_grad_(False)
    robust = protect(SubAT(**TINY, batch_size=16), model=model, data=tiny_dataset(32))
    assert torch.equal(robust[1].weight, model[1].weight)
    assert not torch.equal(robust[3].weight, model[3].weight)
