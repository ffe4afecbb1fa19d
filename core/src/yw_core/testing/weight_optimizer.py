"""Conformance suite for WeightOptimizer plugins: the TrainStep contract `yw_core.train.fit`
relies on."""

from __future__ import annotations

from typing import Any

import pytest

from yw_core.testing.method import MethodConformance


class WeightOptimizerConformance(MethodConformance):
    """A TrainStep follows the contract `yw_core.train.fit` relies on: `step` returns a finite,
    detached one-element loss tensor and, after `batches_per_update` calls, has changed the
    weights; `finalize` returns a module; with `capabilities.deterministic` the same seed gives
    the same weights; and a short `fit` run makes the expected number of updates and evaluates
    every epoch. Override `attach_kwargs` for methods that need inputs (TWA's checkpoints)."""

    def attach_kwargs(self, model) -> dict[str, Any]:
        return {}

    def stepped(self, runtime):
        """(model, step, losses, before) after one update of a fresh model on 16 samples."""
        import torch

        model = runtime.to(self.make_model()).train()
        runtime.seed_everything()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        step = self.make().attach(model, optimizer, runtime=runtime, **self.attach_kwargs(model))
        step.begin(4)
        before = [p.detach().clone() for p in model.parameters()]
        batch = runtime.to(self.make_data(16).tensors)

        def loss_fn(m, b):
            return torch.nn.functional.cross_entropy(m(b[0]), b[1])

        losses = [step.step(batch, loss_fn) for _ in range(step.batches_per_update)]
        return model, step, losses, before

    def test_step_updates_weights(self, yw_runtime):
        import torch

        model, step, losses, before = self.stepped(yw_runtime)
        for loss in losses:
            assert isinstance(loss, torch.Tensor), f"step() returned {type(loss).__name__}"
            assert loss.numel() == 1 and torch.isfinite(loss).all()
            assert not loss.requires_grad, "step() must return the detached loss"
        assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
        step.on_epoch_end(0)
        assert isinstance(step.finalize(self.make_data()), torch.nn.Module)

    def test_same_seed_same_weights(self, yw_runtime):
        import torch

        if not self.method.capabilities.deterministic:
            pytest.skip("not deterministic by its capabilities")
        first, *_ = self.stepped(yw_runtime)
        second, *_ = self.stepped(yw_runtime)
        for (name, a), b in zip(first.named_parameters(), second.parameters()):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), f"{name} differs between runs"

    def test_fit_runs_and_evaluates(self, yw_runtime):
        from yw_core.train import TrainConfig, fit

        model = self.make_model()
        result = fit(
            model,
            self.make_data(32),
            runtime=yw_runtime,
            method=self.make(),
            config=TrainConfig(epochs=2, batch_size=8, lr=0.05, progress=False),
            eval_data=self.make_data(16, seed=1),
            attach_kwargs=self.attach_kwargs(model),
        )
        assert [row["epoch"] for row in result.history] == [1, 2]
        assert result.updates == 2 * 4
        assert all(0 <= row["test_acc"] <= 1 for row in result.history)
