"""bench continual: the streams it builds, the classes each task introduces, the accuracy matrix,
and a run with two in-test learners (one with a buffer) through the whole protocol."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import Field, ValidationError

from yw_bench.continual import (
    ContinualBench,
    ContinualBenchConfig,
    load_data,
    make_stream,
    task_classes,
)
from yw_core.interfaces import ContinualLearner, MethodConfig


class Plain(ContinualLearner):
    """One SGD step per batch on the cross-entropy: the smallest honest learner."""

    name = "plain"
    summary = "test learner without memory"

    class Config(MethodConfig):
        minibatch_size: int = Field(10, ge=1, description="unused")

    def setup(self, model, optimizer, *, num_classes, runtime):
        self.model, self.optimizer, self.runtime = model, optimizer, runtime

    def observe(self, batch):
        x, y = self.runtime.to((batch.x, batch.y))
        loss = torch.nn.functional.cross_entropy(self.model(x), y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def predict(self, x):
        mode = self.model.training
        self.model.eval()
        with torch.no_grad():
            out = self.model(x)
        self.model.train(mode)
        return out


class Buffered(Plain):
    """Plain with a `buffer_size` field, so the bench runs it at every buffer size."""

    name = "buffered"
    summary = "test learner with a buffer size"

    class Config(Plain.Config):
        buffer_size: int = Field(10, ge=1, description="recorded only")


@pytest.fixture(scope="module")
def data():
    return load_data(ContinualBenchConfig(device="cpu"))[:2]


def test_class_il_tasks_introduce_two_classes_each_in_order(data):
    train, _ = data
    stream = make_stream(ContinualBenchConfig(), "class-il", train, seed=0)
    assert task_classes(stream) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert all(b.task is None for b in stream)  # the learner is not told where tasks start
    assert sum(len(b.y) for b in stream) == len(train)


def test_blurry_tasks_introduce_every_class_once(data):
    train, _ = data
    stream = make_stream(ContinualBenchConfig(), "blurry", train, seed=0)
    groups = task_classes(stream)
    assert sorted(c for g in groups for c in g) == list(range(10))
    assert len(groups) == 5


def test_bad_settings_are_clear_errors():
    for bad in ({"buffer_sizes": ()}, {"buffer_sizes": (0,)}, {"settings": ()}, {"tasks": 1}):
        with pytest.raises(ValidationError):
            ContinualBenchConfig(**bad)
    with pytest.raises(ValueError, match="tasks=3 must divide the 10 classes"):
        load_data(ContinualBenchConfig(tasks=3))


def test_a_run_fills_the_matrix_and_writes_a_readable_table(tmp_path):
    from yw_core.bench import run_protocol
    from yw_core.registry import Registry

    bench = ContinualBench(Registry.from_classes([Plain, Buffered]))
    config = bench.config(device="cpu", seeds=(0, 1), buffer_sizes=(20, 40))
    report = run_protocol(bench, config, tmp_path, progress=False)
    for setting in ("class-il", "blurry"):
        rows = report["results"][setting]
        assert list(rows) == ["buffered@20", "buffered@40", "plain"]
        run = rows["plain"]["runs"][0]
        assert len(run["matrix"]) == 5 and all(len(r) == 5 for r in run["matrix"])
        assert 0.0 <= rows["plain"]["average_accuracy"] <= 100.0
        assert rows["plain"]["ms_per_batch"] > 0 and len(rows["plain"]["runs"]) == 2
    # without memory, one pass through class-IL tasks ends predicting mostly the last task
    assert report["results"]["class-il"]["plain"]["last_task_share"] > 60
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["results"]["blurry"]["plain"]["forgetting"] == pytest.approx(
        report["results"]["blurry"]["plain"]["forgetting"]
    )
    table = (tmp_path / "results.txt").read_text()
    assert "class-il:" in table and "buffered" in table and "final acc" in table
    assert (tmp_path / "accuracy_over_stream.png").stat().st_size > 0
