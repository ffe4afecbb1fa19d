"""DIO's bad input fails at Config (ValidationError naming the field) or in protect
(ValueError naming the problem)."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn
from torch.utils.data import TensorDataset

from yw_core.models import SplitClassifier
from yw_core.runtime import Runtime
from yw_core.testing import tiny_classifier, tiny_dataset
from yw_plugin_dio import DIO


def protect(model, data, **overrides):
    runtime = Runtime(device="cpu", seed=0, distributed=False)
    return DIO(epochs=1, progress=False, **overrides).protect(model, data=data, runtime=runtime)


@pytest.mark.parametrize(
    "overrides",
    [
        {"num_paths": 0},
        {"tau": -0.1},
        {"alpha": -1.0},
        {"beta": -1.0},
        {"base": "pgd"},
        {"eps": 0.0},
        {"milestones": (0.9, 0.5)},
        {"val_fraction": 1.0},
    ],
)
def test_out_of_range_config_is_rejected_by_name(overrides):
    with pytest.raises(ValidationError, match=next(iter(overrides))):
        DIO(**overrides)


def test_no_data_says_dio_trains():
    with pytest.raises(ValueError, match=r"training-time defense: protect\(\) needs data"):
        protect(tiny_classifier(), None)


def head_not_linear() -> nn.Module:
    model = SplitClassifier(nn.Flatten(), nn.Linear(64, 4))
    model.head = nn.Sequential(nn.Linear(64, 4))
    return model


@pytest.mark.parametrize(
    "make",
    [lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 4)), head_not_linear],
    ids=["no split", "head not Linear"],
)
def test_a_model_without_features_and_a_linear_head_names_them(make):
    with pytest.raises(ValueError, match=r"`\.features`.*`\.head`.*SplitClassifier"):
        protect(make(), tiny_dataset())


def test_features_that_are_not_flat_are_named():
    model = SplitClassifier(nn.Identity(), nn.Linear(64, 4))  # (N, 1, 8, 8), not (N, 64)
    with pytest.raises(ValueError, match=r"flat embeddings \(N, 64\).*got \(2, 1, 8, 8\)"):
        protect(model, tiny_dataset())


def test_inputs_outside_0_1_and_labels_beyond_the_head_are_named():
    x, y = tiny_dataset().tensors
    with pytest.raises(ValueError, match=r"inputs must be floats in \[0, 1\]"):
        protect(tiny_classifier(), TensorDataset(x * 2, y))
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 4\)"):
        protect(tiny_classifier(), TensorDataset(x, y + 4))
    with pytest.raises(ValueError, match="TensorDataset of"):
        protect(tiny_classifier(), [(x[0], y[0])])


def test_a_val_fraction_that_empties_a_split_is_named():
    data = TensorDataset(torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="val_fraction 0.1 of 3 samples leaves an empty split"):
        protect(tiny_classifier(), data, val_fraction=0.1)
