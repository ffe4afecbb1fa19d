"""yw_core.continual's reservoir buffer, MIR retrieval and replay loop, and the blurry stream."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from yw_core.continual import ReservoirBuffer, mir_retrieve
from yw_core.interfaces import Stream


def test_the_reservoir_holds_a_uniform_sample_of_the_stream():
    """Over 2,000 seeded runs of a 100-sample stream into 10 slots, every sample is kept about
    10% of the time, early and late ones alike (chi-square-sized tolerance)."""
    kept = torch.zeros(100)
    for seed in range(2000):
        buffer = ReservoirBuffer(10, generator=torch.Generator().manual_seed(seed))
        for start in range(0, 100, 7):  # batches of 7, the last one short
            ids = torch.arange(start, min(start + 7, 100))
            buffer.add(ids.float().unsqueeze(1), ids)
        assert len(buffer) == 10 and buffer.seen == 100
        kept[buffer.y] += 1
    share = kept / 2000
    assert share.min() > 0.07 and share.max() < 0.13
    assert abs(share[:50].mean() - share[50:].mean()) < 0.01


def test_the_buffer_fills_first_and_samples_without_replacement():
    buffer = ReservoirBuffer(5)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(2)
    buffer.add(torch.arange(3.0).unsqueeze(1), torch.arange(3))
    x, y = buffer.sample(10)
    assert sorted(y.tolist()) == [0, 1, 2] and x.shape == (3, 1)
    with pytest.raises(ValueError, match="capacity"):
        ReservoirBuffer(0)


def test_mir_picks_the_samples_the_step_would_hurt_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    buffer = ReservoirBuffer(40)
    old = torch.randn(40, 2) + torch.tensor([3.0, 0.0])
    buffer.add(old, torch.zeros(40, dtype=torch.long))
    before = [p.detach().clone() for p in model.parameters()]
    x = torch.randn(8, 2) + torch.tensor([3.0, 0.0])  # new class 1 where the old class 0 lies
    cx, cy = mir_retrieve(model, x, torch.ones(8, dtype=torch.long), buffer, lr=0.5, k=5)
    assert cx.shape == (5, 2) and (cy == 0).all()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_a_blurry_stream_has_disjoint_and_recurring_classes():
    y = torch.arange(10).repeat_interleave(50)
    x = torch.randn(len(y), 3)
    stream = Stream.blurry(x, y, tasks=5, disjoint=0.5, blurry=0.1, batch_size=16, seed=0)
    assert stream.num_tasks == 5 and all(b.task is None for b in stream)
    per_task = []
    for t, start in enumerate(stream.task_starts):
        end = stream.task_starts[t + 1] if t + 1 < stream.num_tasks else len(stream)
        per_task.append(set(torch.cat([stream.batches[i].y for i in range(start, end)]).tolist()))
    in_tasks = {c: sum(c in s for s in per_task) for c in range(10)}
    assert sorted(in_tasks.values())[:5] == [1] * 5  # five disjoint classes, one task each
    assert max(in_tasks.values()) > 1  # blurry classes recur
    assert sum(len(b.y) for b in stream) == len(y)
    again = Stream.blurry(x, y, tasks=5, batch_size=16, seed=0)
    assert all(torch.equal(a.y, b.y) for a, b in zip(stream, again, strict=True))
    with pytest.raises(ValueError, match="blurry"):
        Stream.blurry(x, y, blurry=1.0)


def _replay_learner():
    from pydantic import Field

    from yw_core.continual import ReplayLearner
    from yw_core.interfaces import MethodConfig

    class Plain(ReplayLearner):
        name = "plain-replay"
        summary = "test replay learner"

        class Config(MethodConfig):
            buffer_size: int = Field(4, ge=1, description="capacity")
            minibatch_size: int = Field(2, ge=1, description="replay batch")

        def loss(self, x, y, replay):
            self.replayed.append(0 if replay is None else len(replay[1]))
            return super().loss(x, y, replay)

    learner = Plain()
    learner.replayed = []
    return learner


def test_the_replay_loop_steps_replays_and_remembers():
    from yw_core.interfaces import StreamBatch
    from yw_core.runtime import Runtime

    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    learner = _replay_learner()
    learner.setup(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        num_classes=4,
        runtime=Runtime(device="cpu", seed=0, distributed=False),
    )
    before = model.weight.detach().clone()
    for step in range(3):
        batch = StreamBatch(torch.randn(3, 3), torch.tensor([0, 1, step]))
        assert isinstance(learner.observe(batch), float)
    assert learner.replayed == [0, 2, 2]  # no replay while the buffer is empty
    assert len(learner.buffer) == 4 and learner.buffer.seen == 9 and learner.steps == 3
    assert not torch.equal(model.weight, before)
    assert learner.predict(torch.randn(5, 3)).shape == (5, 4)


def test_the_replay_loop_names_bad_input():
    from yw_core.interfaces import StreamBatch
    from yw_core.runtime import Runtime

    learner = _replay_learner()
    batch = StreamBatch(torch.randn(2, 3), torch.tensor([0, 5]))
    with pytest.raises(RuntimeError, match=r"call setup\(.*\) first"):
        learner.observe(batch)
    model = nn.Linear(3, 4)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        learner.setup(model, None, num_classes=0, runtime=None)
    runtime = Runtime(device="cpu", seed=0, distributed=False)
    learner.setup(
        model, torch.optim.SGD(model.parameters(), lr=0.1), num_classes=4, runtime=runtime
    )
    with pytest.raises(ValueError, match=r"labels 5 are outside the 4 classes \(0\.\.3\)"):
        learner.observe(batch)
    with pytest.raises(TypeError, match="StreamBatch"):
        learner.observe((batch.x, batch.y))
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="loss is nan"):
        learner.observe(StreamBatch(torch.randn(2, 3), torch.tensor([0, 1])))
