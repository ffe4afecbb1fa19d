"""Conformance suite for WeightOptimizer plugins."""

from __future__ import annotations

from typing import Any

from yw_core.testing.method import MethodConformance


class WeightOptimizerConformance(MethodConformance):
    """A TrainStep follows the contract `yw_core.train.fit` relies on: a finite loss, updated
    weights, a module back from finalize, and a short `fit` run that evaluates every epoch.
    Override `attach_kwargs` for methods that need inputs (TWA's checkpoints)."""

    def attach_kwargs(self, model) -> dict[str, Any]:
        return {}

    def test_step_updates_weights(self, yw_runtime):
        import torch

        model = yw_runtime.to(self.make_model()).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        step = self.make().attach(model, optimizer, runtime=yw_runtime, **self.attach_kwargs(model))
        step.begin(4)
        before = [p.detach().clone() for p in model.parameters()]
        batch = yw_runtime.to(self.make_data(16).tensors)

        def loss_fn(m, b):
            return torch.nn.functional.cross_entropy(m(b[0]), b[1])

        for _ in range(step.batches_per_update):
            loss = step.step(batch, loss_fn)
            assert torch.isfinite(torch.as_tensor(loss)).all()
        assert any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters()))
        step.on_epoch_end(0)
        assert isinstance(step.finalize(self.make_data()), torch.nn.Module)

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
