"""The ContinualLearner contract on a trivial learner (plain SGD, no replay), the suite catching
broken ones, and the checks of `StreamBatch` and `Stream`."""

import pytest
import torch
import torch.nn.functional as F
from pydantic import Field

from yw_core.interfaces import Capabilities, ContinualLearner, MethodConfig, Stream, StreamBatch
from yw_core.testing import conformance_suite


class PlainOnline(ContinualLearner):
    """The lower bound of continual learning: one SGD step per batch, nothing remembered."""

    name = "plain-online-contract"
    summary = "Online fine-tuning: one optimizer step per incoming batch, no replay."
    license = "MIT"
    status = "baseline"
    capabilities = Capabilities(training=True)

    class Config(MethodConfig):
        steps: int = Field(1, ge=1, le=10, description="optimizer steps per incoming batch")

    def setup(self, model, optimizer, *, num_classes, runtime):
        self.model, self.optimizer, self.runtime = model, optimizer, runtime
        self.num_classes = num_classes

    def observe(self, batch):
        x, y = self.runtime.to((batch.x, batch.y))
        self.model.train()
        for _ in range(self.config.steps):
            self.optimizer.zero_grad()
            loss = F.cross_entropy(self.model(x), y)
            loss.backward()
            self.optimizer.step()
        return loss.item()

    def predict(self, x):
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                return self.model(self.runtime.to(x)).to(x.device)
        finally:
            self.model.train(was_training)


TestPlainOnlineConformance = conformance_suite(PlainOnline)


def test_suite_catches_predict_in_training_mode(yw_runtime):
    class Careless(PlainOnline):
        name = "careless"

        def predict(self, x):
            with torch.no_grad():
                return self.model(self.runtime.to(x)).to(x.device)

    suite = conformance_suite(Careless)()
    with pytest.raises(AssertionError, match="training mode"):
        suite.test_predict_gives_detached_logits_in_eval_mode(yw_runtime)


def test_suite_catches_a_tensor_loss(yw_runtime):
    class TensorLoss(PlainOnline):
        name = "tensor-loss"

        def observe(self, batch):
            super().observe(batch)
            return torch.tensor(0.5)

    suite = conformance_suite(TensorLoss)()
    with pytest.raises(AssertionError, match="not float"):
        suite.test_observe_returns_a_finite_float_loss_per_batch(yw_runtime)


def _data(n=24, classes=4):
    x = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    return x, torch.arange(n) % classes


def test_from_tensors_splits_classes_into_tasks_in_order():
    x, y = _data()
    stream = Stream.from_tensors(x, y, batch_size=5, tasks=2)
    assert (stream.num_tasks, stream.num_classes) == (2, 4)
    assert stream.task_starts == (0, 3)  # 12 samples per task: batches of 5, 5, 2
    assert [len(b.y) for b in stream] == [5, 5, 2, 5, 5, 2]
    seen = []
    for i, batch in enumerate(stream):
        task = 0 if i < 3 else 1
        assert batch.task == task
        assert set(batch.y.tolist()) <= ({0, 1} if task == 0 else {2, 3})
        rows = _rows(x, batch.x)
        assert torch.equal(y[rows], batch.y), "a sample lost its label"
        seen += rows
    assert sorted(seen) == list(range(len(x))), "the stream is not a partition of the data"
    assert list(stream) == list(stream)  # replayable


def _rows(x, sub) -> list[int]:
    """Index in x of each row of sub."""
    return [int((x.flatten(1) == row.flatten()).all(1).nonzero()[0]) for row in sub]


def test_from_tensors_explicit_groups_task_free_and_seed():
    x, y = _data()
    stream = Stream.from_tensors(x, y, batch_size=4, tasks=[[0, 2], [1, 3]], task_ids=False)
    assert all(b.task is None for b in stream) and stream.num_tasks == 2
    assert set(torch.cat([b.y for b in stream.batches[:3]]).tolist()) == {0, 2}
    one = Stream.from_tensors(x, y, batch_size=4, num_classes=10)
    assert (one.num_tasks, one.num_classes) == (1, 10)
    again = Stream.from_tensors(x, y, batch_size=4, seed=0)
    other = Stream.from_tensors(x, y, batch_size=4, seed=1)
    assert all(torch.equal(a.y, b.y) for a, b in zip(one, again))
    assert not all(torch.equal(a.y, b.y) for a, b in zip(one, other))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tasks": 3}, "tasks=3 must divide the 4 classes"),
        ({"tasks": [[0, 1], [1, 2, 3]]}, "share classes"),
        ({"tasks": [[0, 1], [2]]}, r"leave out classes \[3\]"),
        ({"tasks": [[0, 1], [2, 3], [7]]}, "task 2"),
        ({"batch_size": 0}, "batch_size"),
        ({"num_classes": 3}, "beyond num_classes=3"),
    ],
)
def test_from_tensors_errors_name_the_problem(kwargs, message):
    x, y = _data()
    with pytest.raises(ValueError, match=message):
        Stream.from_tensors(x, y, **kwargs)


@pytest.mark.parametrize(
    ("x", "y", "task", "error", "message"),
    [
        (torch.zeros(2, 3), [0, 1], None, TypeError, "tensors"),
        (torch.zeros(2, 3), torch.tensor([0.0, 1.0]), None, ValueError, "integer"),
        (torch.zeros(2, 3), torch.tensor([0, -1]), None, ValueError, "negative"),
        (torch.zeros(2, 3), torch.tensor([0]), None, ValueError, r"\(B, \.\.\.\)"),
        (torch.zeros(3), torch.tensor([0, 1, 2]), None, ValueError, r"\(B, \.\.\.\)"),
        (torch.full((1, 3), float("nan")), torch.tensor([0]), None, ValueError, "NaN"),
        (torch.zeros(1, 3), torch.tensor([0]), -1, ValueError, "task"),
    ],
)
def test_stream_batch_errors_name_the_problem(x, y, task, error, message):
    with pytest.raises(error, match=message):
        StreamBatch(x, y, task)


def test_stream_errors_name_the_problem():
    batch = StreamBatch(torch.zeros(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="at least one batch"):
        Stream([], 2)
    with pytest.raises(TypeError, match="StreamBatch"):
        Stream([(batch.x, batch.y)], 2)
    with pytest.raises(ValueError, match="beyond num_classes=1"):
        Stream([batch], 1)
    with pytest.raises(ValueError, match="must rise from 0"):
        Stream([batch, batch], 2, task_starts=(1,))
    with pytest.raises(ValueError, match="go beyond"):
        Stream([batch, batch], 2, task_starts=(0, 2))
    assert repr(Stream([batch, batch], 2, (0, 1))) == "Stream(2 batches, 2 tasks, 2 classes)"
