"""SWA: the average it keeps, the lr it steps with, the BN recompute, too-short runs, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from yw_core.runtime import Runtime
from yw_core.testing import tiny_classifier, tiny_dataset
from yw_core.train import TrainConfig, fit
from yw_plugin_baselines import SWA


def bn_model(seed: int = 0) -> nn.Module:
    """A small classifier with a BatchNorm layer, on 1x8x8 inputs with 4 classes."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4)
    ).train()


def ce(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


def train(step, data, epochs: int, batch_size: int = 8):
    """Drive a TrainStep as fit does (begin, steps, epoch ends), without fit's lr schedule."""
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    step.begin(epochs * len(loader))
    for epoch in range(epochs):
        for batch in loader:
            step.step(batch, ce)
        step.on_epoch_end(epoch)


def test_average_is_the_mean_of_the_epoch_weights_after_start():
    """16 updates, start 0.5: updates 8-15 run at swa_lr, so epochs 3 and 4 are averaged; the
    model fit returns (no BN) holds the arithmetic mean of those two epochs' weights."""
    runtime = Runtime(device="cpu", seed=0, distributed=False)
    config = TrainConfig(epochs=4, batch_size=8, lr=0.1, keep_checkpoints=True, progress=False)
    result = fit(
        tiny_classifier().train(),
        tiny_dataset(32),
        runtime=runtime,
        method=SWA(start=0.5),
        config=config,
    )
    epoch3, epoch4 = result.checkpoints[3], result.checkpoints[4]
    final = dict(result.model.named_parameters())
    for name, value in final.items():
        torch.testing.assert_close(value.detach(), (epoch3[name] + epoch4[name]) / 2)
    assert not torch.equal(final["head.weight"].detach(), epoch4["head.weight"])


def test_lr_is_swa_lr_from_start_on_and_untouched_before(yw_runtime):
    """10 updates, start 0.75: the first 8 steps use the lr the schedule set, the last 2 swa_lr,
    in every param group."""
    model = yw_runtime.to(tiny_classifier()).train()
    groups = [{"params": model.features.parameters()}, {"params": model.head.parameters()}]
    optimizer = torch.optim.SGD(groups, lr=0.3)
    used = []
    optimizer.register_step_pre_hook(
        lambda opt, args, kw: used.append([g["lr"] for g in opt.param_groups])
    )
    step = SWA(start=0.75, swa_lr=0.02).attach(model, optimizer, runtime=yw_runtime)
    step.begin(10)
    batch = yw_runtime.to(tiny_dataset(8).tensors)
    for k in range(10):
        for g in optimizer.param_groups:  # what fit's scheduler does after every batch
            g["lr"] = 0.3 - 0.01 * k
        step.step(batch, ce)
    assert used[:8] == [[0.3 - 0.01 * k] * 2 for k in range(8)]
    assert used[8:] == [[0.02, 0.02]] * 2


def test_finalize_recomputes_batchnorm_stats_over_the_data(yw_runtime):
    """After finalize the BN running stats are those of the averaged weights over the whole
    training set (one 256-batch pass: the mean and unbiased variance of the BN inputs), not the
    stats the last SGD steps left."""
    data = tiny_dataset(32)
    model = yw_runtime.to(bn_model())
    step = SWA(start=0.5).attach(
        model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), runtime=yw_runtime
    )
    train(step, data, epochs=4)
    assert step.n_averaged == 2
    bn = model[2]
    before = bn.running_mean.clone(), bn.running_var.clone()
    assert step.finalize(data) is model
    with torch.no_grad():
        h = model[1](model[0](yw_runtime.to(data.tensors[0])))
    torch.testing.assert_close(bn.running_mean, h.mean(0))
    torch.testing.assert_close(bn.running_var, h.var(0, unbiased=True))
    assert not torch.allclose(bn.running_mean, before[0])
    assert not torch.allclose(bn.running_var, before[1])
    assert model.training, "finalize changed the model's train/eval mode"


def test_finalize_without_an_averaged_epoch_warns_and_leaves_the_model_alone(yw_runtime):
    model = yw_runtime.to(bn_model())
    step = SWA().attach(model, torch.optim.SGD(model.parameters(), lr=0.1), runtime=yw_runtime)
    step.begin(100)  # start at update 75: never reached in 4 steps
    batch = yw_runtime.to(tiny_dataset(16).tensors)
    for _ in range(4):
        step.step(batch, ce)
    step.on_epoch_end(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(UserWarning, match="averaged no epoch"):
        assert step.finalize(tiny_dataset(32)) is model
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize(
    ("field", "value"),
    [("start", 0.0), ("start", 1.0), ("start", 1.5), ("swa_lr", 0.0), ("swa_lr", -0.05)],
)
def test_bad_config_is_rejected_by_name(field, value):
    with pytest.raises(ValidationError, match=field):
        SWA(**{field: value})


def test_misuse_is_a_clear_error(yw_runtime):
    data = tiny_dataset(16)
    model = bn_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="checkpoints"):
        SWA().attach(model, optimizer, runtime=yw_runtime, checkpoints=[])
    step = SWA(start=0.5).attach(model, optimizer, runtime=yw_runtime)
    with pytest.raises(RuntimeError, match="begin"):
        step.step(data.tensors, ce)
    train(step, data, epochs=2)
    with pytest.raises(ValueError, match="training data"):
        step.finalize(None)
