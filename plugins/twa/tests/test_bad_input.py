"""TWA's bad input fails at attach (or at Config) with a message that names the problem."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from yw_core.runtime import Runtime
from yw_core.testing import tiny_classifier
from yw_plugin_twa import TWA


def attach(method, model, **kw):
    runtime = Runtime(device="cpu", seed=0, distributed=False)
    return method.attach(model, torch.optim.SGD(model.parameters(), lr=0.1), runtime=runtime, **kw)


@pytest.mark.parametrize("variant", ["iclr", "journal"])
def test_missing_checkpoints_say_how_to_get_them(variant):
    with pytest.raises(ValueError, match=r"checkpoints of a base run.*keep_checkpoints=True"):
        attach(TWA(variant=variant), tiny_classifier())


@pytest.mark.parametrize("variant", ["iclr", "journal"])
def test_fewer_than_two_checkpoints_are_rejected(variant, perturbed):
    model = tiny_classifier()
    with pytest.raises(ValueError, match="at least 2 checkpoints.*got 1"):
        attach(TWA(variant=variant), model, checkpoints=perturbed(model, n=1))


def test_checkpoints_of_another_architecture_name_the_key_and_both_shapes(perturbed):
    model = tiny_classifier()
    wide = torch.nn.Sequential()
    wide.add_module(
        "features",
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU()),
    )
    wide.add_module("head", torch.nn.Linear(32, 4))
    checkpoints = [*perturbed(model, n=2), *perturbed(wide, n=1)]
    with pytest.raises(
        ValueError,
        match=r"checkpoint 2 does not match the model at 'features.1.weight': shape \(32, 64\) "
        r"in the checkpoint, \(16, 64\) in the model",
    ):
        attach(TWA(), model, checkpoints=checkpoints)


def test_start_must_be_a_checkpoint_index_and_only_for_iclr(perturbed):
    model = tiny_classifier()
    with pytest.raises(ValueError, match="start 3 is not a checkpoint index: got 3 checkpoints"):
        attach(TWA(start=3), model, checkpoints=perturbed(model))
    with pytest.raises(ValueError, match="start applies to the iclr variant only"):
        attach(TWA(variant="journal", start=0), model, checkpoints=perturbed(model))


@pytest.mark.parametrize(
    "overrides",
    [{"bits": 0}, {"bits": 9}, {"start": -2}, {"coef_lr": 0}, {"variant": "swa"}],
)
def test_out_of_range_config_is_rejected_by_name(overrides):
    with pytest.raises(ValidationError, match=next(iter(overrides))):
        TWA(**overrides)
