"""Conformance suite for Attack plugins."""

from __future__ import annotations

from typing import ClassVar

import pytest

from yw_core.testing.method import MethodConformance


class AttackConformance(MethodConformance):
    """The attack contract: inputs stay in [0, 1] and inside the eps-ball, no sample spends more
    than the budget, a reported success is a real misclassification, queries are counted in
    LongTensors (N,), initially misclassified samples cost nothing, and a run with a smaller
    budget is a prefix of a longer one (the benchmark reads robust accuracy at every budget off
    one run at the largest); the same seed gives the same result, the model's training mode is
    restored, and bad arguments are ValueErrors naming the problem (`Attack.check_inputs`).
    Set `norms` to the norms the attack supports, and `budget`, `eps`, `eps_l2` to change the
    run."""

    budget: ClassVar[int] = 20
    eps: ClassVar[float] = 0.3  # L-inf radius: large enough to fool the tiny model often
    eps_l2: ClassVar[float] = 2.4  # L2 radius: 0.3 * sqrt(64), the same scale
    norms: ClassVar[tuple[str, ...]] = ("linf",)

    def radius(self, norm: str) -> float:
        return self.eps_l2 if norm == "l2" else self.eps

    def attack(self, runtime, norm, budget, x=None, y=None, model=None):
        """Run the attack; by default on 16 inputs labelled with the model's own predictions, so
        every sample starts correctly classified and is attacked."""
        import torch

        model = model if model is not None else runtime.to(self.make_model())
        if x is None:
            x = runtime.to(self.make_data(16).tensors[0])
            with torch.no_grad():
                y = model(x).argmax(1)
        result = self.make().run(
            model, x, y, eps=self.radius(norm), norm=norm, budget=budget, runtime=runtime
        )
        return model, x, y, result

    def test_budget_ball_and_range(self, yw_runtime):
        import torch

        for norm in self.norms:
            model, x, y, result = self.attack(yw_runtime, norm, self.budget)
            assert result.x_adv.shape == x.shape
            assert result.x_adv.min() >= 0 and result.x_adv.max() <= 1
            delta = (result.x_adv - x).flatten(1)
            size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
            assert (size <= self.radius(norm) + 1e-5).all(), f"{norm} perturbation beyond eps"
            assert result.success.shape == (x.shape[0],) and result.success.dtype == torch.bool
            for name in ("loss_queries", "total_queries"):
                queries = getattr(result, name)
                assert queries.shape == (x.shape[0],) and queries.dtype == torch.long, (
                    f"{name} must be a LongTensor (N,), got {queries.dtype} {tuple(queries.shape)}"
                )
            assert (result.total_queries <= self.budget).all()
            assert (result.loss_queries <= result.total_queries).all()
            with torch.no_grad():
                fooled = model(result.x_adv).argmax(1) != y
            assert fooled[result.success].all(), "a reported success is not misclassified"
            assert (result.total_queries > 0).all(), (
                "a correctly classified sample was not attacked"
            )

    def test_initially_misclassified_samples_cost_nothing(self, yw_runtime):
        import torch

        model = yw_runtime.to(self.make_model())
        x, _ = yw_runtime.to(self.make_data(16).tensors)
        with torch.no_grad():
            wrong = (model(x).argmax(1) + 1) % self.num_classes
        _, _, _, result = self.attack(yw_runtime, self.norms[0], self.budget, x, wrong, model)
        assert result.success.all()
        assert (result.total_queries == 0).all()
        assert torch.equal(result.x_adv, x)

    def test_smaller_budget_is_a_prefix_of_a_larger_one(self, yw_runtime):
        import torch

        for norm in self.norms:
            *_, short = self.attack(yw_runtime, norm, self.budget)
            *_, long = self.attack(yw_runtime, norm, 4 * self.budget)
            assert long.success.any(), f"{norm}: nothing fooled, so the prefix cannot be checked"
            within = long.success & (long.total_queries <= self.budget)
            assert torch.equal(short.success, within), f"{norm}: not a prefix"
            assert torch.equal(short.total_queries[within], long.total_queries[within])
            assert torch.equal(short.x_adv[within], long.x_adv[within])

    def test_same_seed_same_result_and_model_mode_restored(self, yw_runtime):
        import torch

        model = yw_runtime.to(self.make_model()).train()
        _, _, _, first = self.attack(yw_runtime, self.norms[0], self.budget, model=model)
        assert model.training, "the attack did not restore the model's training mode"
        _, _, _, second = self.attack(yw_runtime, self.norms[0], self.budget, model=model)
        assert torch.equal(first.x_adv, second.x_adv)
        assert torch.equal(first.total_queries, second.total_queries)

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"eps": 0.0}, "eps"),
            ({"budget": 0}, "budget"),
            ({"norm": "l7"}, "norm"),
            ({"x": "nan"}, "NaN"),
            ({"x": "range"}, r"\[0, 1\]"),
            ({"y": "short"}, "shape"),
        ],
    )
    def test_bad_input_is_a_clear_value_error(self, yw_runtime, change, message):
        model = yw_runtime.to(self.make_model())
        x, y = yw_runtime.to(self.make_data(4).tensors)
        x = {"nan": x.masked_fill(x > 0.5, float("nan")), "range": x * 2 + 0.5}.get(
            change.get("x"), x
        )
        y = y[:2] if change.get("y") == "short" else y
        kwargs = {"eps": self.eps, "norm": self.norms[0], "budget": self.budget}
        kwargs.update({k: v for k, v in change.items() if k in kwargs})
        with pytest.raises(ValueError, match=message):
            self.make().run(model, x, y, runtime=yw_runtime, **kwargs)
