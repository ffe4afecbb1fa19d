"""The core training loop: schedules, the multi-batch step contract, checkpoints, bad input."""

import math

import pytest
import torch
from pydantic import ValidationError
from torch.utils.data import TensorDataset

from yw_core.interfaces import TrainStep
from yw_core.runtime import Runtime
from yw_core.testing import tiny_classifier, tiny_dataset
from yw_core.train import SGDStep, TrainConfig, fit, parameter_snapshot


@pytest.fixture
def rt():
    return Runtime(device="cpu", seed=0)


def quick(**kw):
    return TrainConfig(**{"epochs": 2, "batch_size": 8, "lr": 0.05, "progress": False, **kw})


def test_config_rejects_bad_values_by_name():
    with pytest.raises(ValidationError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValidationError, match="milestones"):
        TrainConfig(milestones=(0.75, 0.5))
    with pytest.raises(ValidationError, match="no_such"):
        TrainConfig(no_such=1)


def test_schedules():
    cos = TrainConfig(schedule="cosine")
    assert cos.lr_factor(0, 100) == 1.0
    assert cos.lr_factor(50, 100) == pytest.approx(0.5)
    assert cos.lr_factor(99, 100) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.99)))
    step = TrainConfig(schedule="step", milestones=(0.5, 0.75), gamma=0.1)
    assert [step.lr_factor(u, 100) for u in (0, 49, 50, 74, 75, 99)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.01]
    )
    warm = TrainConfig(schedule="constant", warmup=0.1)
    assert [warm.lr_factor(u, 100) for u in (0, 4, 9, 10, 50)] == pytest.approx([0.1, 0.5, 1, 1, 1])


def test_sgd_fit_is_deterministic_and_learns(rt):
    data = tiny_dataset(64, seed=0)
    runs = []
    for _ in range(2):
        model = tiny_classifier(seed=0)
        result = fit(model, data, runtime=Runtime(device="cpu", seed=3), config=quick(epochs=8))
        runs.append(result)
    a, b = (parameter_snapshot(r.model) for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = [row["train_loss"] for row in runs[0].history]
    assert losses[-1] < losses[0]
    assert runs[0].updates == 8 * 8 and runs[0].seconds_per_update > 0


class RecordingStep(TrainStep):
    """Two batches per update: records the lr and the batch sizes it sees."""

    batches_per_update = 2

    def __init__(self, model, optimizer, runtime):
        super().__init__(model, optimizer, runtime)
        self.calls, self.lrs, self.epochs = 0, [], []

    def step(self, batch, loss_fn):
        self.calls += 1
        loss = loss_fn(self.model, batch)
        if self.calls % 2 == 0:
            self.lrs.append(self.optimizer.param_groups[0]["lr"])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return loss.detach()

    def on_epoch_end(self, epoch):
        self.epochs.append(epoch)


class Recording:
    name = "recording"

    def attach(self, model, base_optimizer, *, runtime, **kwargs):
        self.step = RecordingStep(model, base_optimizer, runtime)
        self.kwargs = kwargs
        return self.step


def test_multi_batch_step_gets_twice_the_batches_and_a_per_update_schedule(rt):
    method = Recording()
    config = quick(epochs=3, schedule="step", milestones=(0.5,), gamma=0.5)
    result = fit(
        tiny_classifier(),
        tiny_dataset(32),
        runtime=rt,
        method=method,
        config=config,
        attach_kwargs={"extra": 1},
    )
    step = method.step
    assert method.kwargs == {"extra": 1}
    assert step.total_updates == result.updates == 3 * 4  # updates as plain SGD would make
    assert step.calls == 2 * result.updates
    assert step.epochs == [0, 1, 2]
    assert step.lrs == [0.05] * 6 + [0.025] * 6  # the milestone falls at update 6 of 12


def test_checkpoints_and_callbacks(rt):
    model = tiny_classifier()
    start = parameter_snapshot(model)
    rows = []
    result = fit(
        model,
        tiny_dataset(32),
        runtime=rt,
        config=quick(epochs=3, keep_checkpoints=True),
        eval_data=tiny_dataset(16, seed=1),
        on_epoch_end=rows.append,
    )
    assert len(result.checkpoints) == 4
    assert all(torch.equal(result.checkpoints[0][k], start[k]) for k in start)
    final = parameter_snapshot(result.model)
    assert all(torch.equal(result.checkpoints[-1][k], final[k]) for k in final)
    assert set(result.checkpoints[1]) == {n for n, _ in model.named_parameters()}
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert all({"train_loss", "test_acc", "test_loss", "seconds", "lr"} <= set(r) for r in rows)


def test_nan_loss_is_an_error(rt):
    x = torch.rand(16, 1, 8, 8)
    x[0, 0, 0, 0] = float("nan")
    data = TensorDataset(x, torch.zeros(16, dtype=torch.long))
    with pytest.raises(FloatingPointError, match="training loss is nan at epoch 1"):
        fit(tiny_classifier(), data, runtime=rt, config=quick(batch_size=16))


def test_sgd_step_equals_torch_sgd(rt):
    model_a, model_b = tiny_classifier(seed=1), tiny_classifier(seed=1)
    x, y = tiny_dataset(16).tensors
    opt_a = torch.optim.SGD(model_a.parameters(), lr=0.1, momentum=0.9)
    opt_b = torch.optim.SGD(model_b.parameters(), lr=0.1, momentum=0.9)
    step = SGDStep(model_a, opt_a, rt)
    for _ in range(3):
        step.step((x, y), lambda m, b: torch.nn.functional.cross_entropy(m(b[0]), b[1]))
        opt_b.zero_grad()
        torch.nn.functional.cross_entropy(model_b(x), y).backward()
        opt_b.step()
    assert all(torch.equal(a, b) for a, b in zip(model_a.parameters(), model_b.parameters()))
