"""Conformance suite for ContinualLearner plugins: the promises of
`yw_core.interfaces.ContinualLearner`."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest

from yw_core.testing.fixtures import tiny_dataset
from yw_core.testing.method import MethodConformance


class ContinualLearnerConformance(MethodConformance):
    """After `setup`, observing every StreamBatch of a small two-task stream (on CPU, whatever
    the runtime's device) returns a finite float loss, also when the batches carry no task id;
    observing changes the model's weights; `predict` gives detached (N, num_classes) logits on
    x's device (x on CPU or on the runtime's device), runs every module in eval mode and
    restores the model's training mode; with
    `capabilities.deterministic` the same seed gives the same losses and predictions. Override
    `make_stream` (and `make_model`) for learners that need other data, and `make_optimizer`
    for another optimizer."""

    tasks: ClassVar[int] = 2
    batch_size: ClassVar[int] = 8

    def make_stream(self, task_ids: bool = True, n: int = 32, seed: int = 0):
        """A stream of `tasks` class-incremental tasks over `num_classes` balanced classes."""
        import torch

        from yw_core.interfaces import Stream

        x = tiny_dataset(n, self.num_classes, seed).tensors[0]
        y = torch.arange(n) % self.num_classes
        return Stream.from_tensors(
            x,
            y,
            batch_size=self.batch_size,
            tasks=self.tasks,
            num_classes=self.num_classes,
            task_ids=task_ids,
            seed=seed,
        )

    def make_optimizer(self, model):
        import torch

        return torch.optim.SGD(model.parameters(), lr=0.1)

    def set_up(self, runtime, stream, model=None):
        """(learner, model): a fresh learner bound to a model in training mode on the runtime."""
        model = runtime.to(model if model is not None else self.make_model()).train()
        runtime.seed_everything()
        learner = self.make()
        learner.setup(
            model, self.make_optimizer(model), num_classes=stream.num_classes, runtime=runtime
        )
        return learner, model

    def observed(self, runtime, stream, model=None):
        """(learner, model, losses) after observing the whole stream once."""
        learner, model = self.set_up(runtime, stream, model)
        return learner, model, [learner.observe(batch) for batch in stream]

    def test_observe_returns_a_finite_float_loss_per_batch(self, yw_runtime):
        stream = self.make_stream()
        assert stream.num_tasks == self.tasks
        _, _, losses = self.observed(yw_runtime, stream)
        for i, loss in enumerate(losses):
            assert isinstance(loss, float), f"observe() returned {type(loss).__name__}, not float"
            assert math.isfinite(loss), f"observe() gave loss {loss} on batch {i}"

    def test_task_free_stream(self, yw_runtime):
        stream = self.make_stream(task_ids=False)
        assert all(batch.task is None for batch in stream)
        learner, _, losses = self.observed(yw_runtime, stream)
        assert all(isinstance(loss, float) and math.isfinite(loss) for loss in losses)
        x = stream.batches[0].x
        assert learner.predict(x).shape == (len(x), stream.num_classes)

    def test_observing_changes_the_weights(self, yw_runtime):
        import torch

        stream = self.make_stream()
        learner, model = self.set_up(yw_runtime, stream)
        before = [p.detach().clone() for p in model.parameters()]
        for batch in stream:
            learner.observe(batch)
        after = [p.detach() for p in model.parameters()]
        assert any(not torch.equal(a, b) for a, b in zip(before, after)), (
            "observing the stream left every weight unchanged"
        )

    def test_predict_gives_detached_logits_in_eval_mode(self, yw_runtime):
        import torch

        stream = self.make_stream()
        learner, model, _ = self.observed(yw_runtime, stream)
        cpu_x = torch.cat([batch.x for batch in stream])
        for training, x in ((True, cpu_x), (False, yw_runtime.to(cpu_x))):
            model.train(training)
            modes = []
            hooks = [
                m.register_forward_pre_hook(lambda m, args: modes.append(m.training))
                for m in model.modules()
            ]
            try:
                logits = learner.predict(x)
            finally:
                for hook in hooks:
                    hook.remove()
            assert model.training is training, "predict() did not restore the training mode"
            assert not any(modes), "predict() ran the model in training mode"
            assert logits.shape == (len(x), stream.num_classes)
            assert logits.dtype.is_floating_point and not logits.requires_grad
            assert logits.device == x.device
            assert torch.isfinite(logits).all()

    def test_same_seed_same_result(self, yw_runtime):
        import torch

        if not self.method.capabilities.deterministic:
            pytest.skip("not deterministic by its capabilities")
        stream = self.make_stream()
        x = stream.batches[0].x
        first, _, first_losses = self.observed(yw_runtime, stream)
        second, _, second_losses = self.observed(yw_runtime, stream)
        assert first_losses == pytest.approx(second_losses, rel=1e-5, abs=1e-6)
        assert torch.allclose(first.predict(x), second.predict(x), rtol=1e-5, atol=1e-6)
