"""Fast-AT and PGD-AT: they train a copy on adversarial batches, validate every epoch, select, and
fail clearly on what they cannot train."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn
from torch.utils.data import TensorDataset

from yw_core.adversarial import pgd_accuracy
from yw_core.runtime import Runtime
from yw_core.testing import tiny_classifier, tiny_dataset
from yw_plugin_baselines import PGDAT, FastAT
from yw_plugin_baselines.adversarial_training import adversarial_loss, split_validation

TINY = {"epochs": 2, "batch_size": 16, "progress": False}


def runtime(seed: int = 0) -> Runtime:
    return Runtime(device="cpu", seed=seed, distributed=False)


class Recorder(nn.Module):
    """The tiny classifier, recording every input it is called on."""

    def __init__(self):
        super().__init__()
        self.net = tiny_classifier()
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.net(x)


@pytest.mark.parametrize("cls", [FastAT, PGDAT])
def test_protect_trains_a_copy_and_records_validation_curves(cls):
    model = tiny_classifier()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    method = cls(**TINY)
    robust = method.protect(model, data=tiny_dataset(64), runtime=runtime())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"protect changed the input model's {k}"
    assert any(not torch.equal(v, before[k]) for k, v in robust.state_dict().items())
    x = tiny_dataset(8, seed=3).tensors[0]
    assert robust(x).shape == (8, 4) and torch.isfinite(robust(x)).all()
    assert [row["epoch"] for row in method.history] == [1, 2]
    for row in method.history:
        assert 0 <= row["val_pgd_acc"] <= row["val_clean_acc"] <= 1
        assert row["train_loss"] > 0 and row["lr"] == pytest.approx(0.1)  # constant lr
    assert method.selected_epoch == 2 and method.train_seconds > 0


def test_same_seed_same_model_other_seed_another():
    data = tiny_dataset(64)

    def weights(seed):
        robust = FastAT(**TINY).protect(tiny_classifier(), data=data, runtime=runtime(seed))
        return torch.cat([p.detach().reshape(-1) for p in robust.parameters()])

    assert torch.equal(weights(0), weights(0))
    assert not torch.equal(weights(0), weights(1))


@pytest.mark.parametrize(
    ("method", "radius"),
    [(FastAT(eps=0.1), 0.1), (PGDAT(eps=0.1, steps=3), 0.1), (FastAT(eps=0.3), 0.3)],
)
def test_the_loss_sees_an_adversarial_batch_inside_the_ball_and_the_box(method, radius):
    x, y = tiny_dataset(32).tensors
    model = Recorder().train()
    generator = torch.Generator().manual_seed(0)
    loss_fn = adversarial_loss(lambda m, a, b: method.attack(m, a, b, generator=generator))
    loss = loss_fn(model, (x, y))
    x_adv = model.seen[-1]  # the batch the loss is computed on
    assert (x_adv - x).abs().max() <= radius + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() > radius / 2  # it is perturbed, not the clean batch
    assert loss.item() == pytest.approx(nn.functional.cross_entropy(model.net(x_adv), y).item())


def test_select_best_returns_the_epoch_with_the_best_validation_pgd_accuracy():
    data, rt = tiny_dataset(64), runtime()
    method = FastAT(**{**TINY, "epochs": 4}, select="best", eps=0.2)
    robust = method.protect(tiny_classifier(), data=data, runtime=rt)
    curve = [row["val_pgd_acc"] for row in method.history]
    assert method.selected_epoch == curve.index(max(curve)) + 1
    _, val = split_validation(data, 0.1, rt.seed)
    generator = rt.generator(rt.seed + 1)  # the validator's
    x, y = val.tensors
    again = pgd_accuracy(robust, x, y, eps=0.2, step=0.05, steps=20, generator=generator)
    assert again == max(curve)


def test_validation_split_is_seeded_disjoint_and_optional():
    data = TensorDataset(torch.rand(50, 1, 8, 8), torch.arange(50))
    train, val = split_validation(data, 0.1, seed=0)
    assert len(val) == 5 and len(train) == 45
    ids = torch.cat([train.tensors[1], val.tensors[1]]).sort().values
    assert torch.equal(ids, torch.arange(50))
    assert torch.equal(split_validation(data, 0.1, seed=0)[1].tensors[1], val.tensors[1])
    assert not torch.equal(split_validation(data, 0.1, seed=1)[1].tensors[1], val.tensors[1])
    assert split_validation(data, 0.0, seed=0) == (data, None)
    method = FastAT(**TINY, val_fraction=0)
    method.protect(tiny_classifier(), data=tiny_dataset(32), runtime=runtime())
    assert all("val_pgd_acc" not in row for row in method.history)


def test_eps_scales_the_attack_step():
    assert FastAT().config.step_ratio * FastAT().config.eps == pytest.approx(10 / 255)
    assert PGDAT().config.step_ratio * PGDAT().config.eps == pytest.approx(2 / 255)


class Frozen(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = tiny_classifier().requires_grad_(False)

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize(
    ("data", "model", "message"),
    [
        (None, tiny_classifier(), r"trains the model: pass data=TensorDataset"),
        ([(torch.zeros(1, 8, 8), 0)], tiny_classifier(), "TensorDataset of \\(x, y\\)"),
        (TensorDataset(torch.full((4, 1, 8, 8), 2.0), torch.zeros(4).long()), None, r"\[0, 1\]"),
        (TensorDataset(torch.rand(4, 1, 8, 8), torch.rand(4)), None, "integer"),
        (tiny_dataset(8), Frozen(), "no trainable parameters"),
    ],
)
@pytest.mark.parametrize("cls", [FastAT, PGDAT])
def test_bad_input_is_a_clear_value_error(cls, data, model, message):
    with pytest.raises(ValueError, match=message):
        cls(**TINY).protect(model or tiny_classifier(), data=data, runtime=runtime())


def test_too_little_data_for_the_validation_split():
    data = TensorDataset(torch.rand(2, 1, 8, 8), torch.zeros(2).long())
    with pytest.raises(ValueError, match="val_fraction 0.9 of 2 samples leaves no training"):
        FastAT(**TINY, val_fraction=0.9).protect(tiny_classifier(), data=data, runtime=runtime())


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"eps": 0}, "eps"), ({"eps": -0.1}, "eps"), ({"select": "best", "val_fraction": 0}, "")],
)
def test_bad_config_is_rejected_at_construction(overrides, field):
    with pytest.raises(ValidationError, match=field or "select='best' needs validation"):
        FastAT(**overrides)
