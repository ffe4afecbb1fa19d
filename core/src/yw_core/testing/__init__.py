"""Conformance suites any plugin runs against its own classes, in one line:

    from yw_core.testing import conformance_suite
    TestConformance = conformance_suite(MyDefense)

Each suite checks the metadata and Config rules every method must follow, then exercises the
interface's call shape on a tiny model and checks the promises the interface makes (output shapes,
query budgets, eps-balls, untouched inputs). Subclass the suite to adapt it: set `config_overrides`
to make the method cheap, or override `make_model` / `make_data` for methods that need other inputs.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

__all__ = [
    "MethodConformance",
    "DefenseConformance",
    "WeightOptimizerConformance",
    "AttackConformance",
    "OODScorerConformance",
    "UnlearnerConformance",
    "ContinualLearnerConformance",
    "RecModelConformance",
    "ForecasterConformance",
    "InterpreterConformance",
    "conformance_suite",
    "linear_model",
    "run_torchrun",
    "linear_problem",
    "uniform_inputs",
    "tiny_classifier",
    "tiny_dataset",
]


def tiny_classifier(in_features: int = 64, num_classes: int = 4, seed: int = 0):
    """A two-part classifier (features, head) on 1x8x8 inputs, as the reference models are split."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(nn.Flatten(), nn.Linear(in_features, 16), nn.ReLU()))
    model.add_module("head", nn.Linear(16, num_classes))
    return model.eval()


def linear_model(scale: float = 1.0, seed: int = 0, classes: int = 10, generator=None):
    """The spec's analytic attack victim: z = W flatten(x) on 3x8x8 inputs, W ~ N(0, scale^2),
    bias 0. `model.weight` and `model.bias` are buffers a test may read or edit in place."""
    import torch

    from yw_core.testing.models import LinearClassifier

    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    return LinearClassifier(torch.randn(classes, 192, generator=g) * scale, torch.zeros(classes))


def uniform_inputs(n: int, seed: int = 1, generator=None):
    """n inputs of shape 3x8x8 uniform in [0.3, 0.7], so a small eps never clips at 0 or 1."""
    import torch

    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    return 0.3 + 0.4 * torch.rand(n, 3, 8, 8, generator=g)


def linear_problem(n: int = 16, seed: int = 0, classes: int = 10, scale: float = 0.1):
    """`linear_model` and `uniform_inputs` drawn from one generator, labelled with the model's
    own predictions: returns (model, x, y)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    model = linear_model(scale, classes=classes, generator=g)
    x = uniform_inputs(n, generator=g)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def tiny_dataset(n: int = 32, num_classes: int = 4, seed: int = 0):
    """n random 1x8x8 images in [0, 1] with labels in [0, num_classes)."""
    import torch
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return TensorDataset(x, y)


def run_torchrun(script, *args, nproc: int = 2, timeout: float = 180):
    """Run `python -m torch.distributed.run --standalone` on `script` with `nproc` CPU ranks.

    For plugins' distributed tests: the workers write their reports to files the test reads.
    One thread per rank; torchrun variables from an outer launch are dropped. Fails the test
    with both output streams when a rank fails.
    """
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    proc = subprocess.run(
        [*cmd, f"--nproc_per_node={nproc}", str(script), *map(str, args)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        pytest.fail(f"torchrun failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


class MethodConformance:
    """Rules every method class follows, whatever its interface."""

    method: ClassVar[type]
    interface: ClassVar[type | None] = None
    config_overrides: ClassVar[dict[str, Any]] = {}
    num_classes: ClassVar[int] = 4

    def make(self):
        return self.method(**self.config_overrides)

    def make_model(self):
        return tiny_classifier(num_classes=self.num_classes)

    def make_data(self, n: int = 32, seed: int = 0):
        return tiny_dataset(n, self.num_classes, seed)

    def test_method_class_is_valid(self):
        from yw_core.interfaces import check_method_class

        assert check_method_class(self.method, self.interface) == []

    def test_builds_with_paper_defaults(self):
        method = self.method()
        assert method.config == self.method.Config()

    def test_unknown_config_key_is_rejected_by_name(self):
        from pydantic import ValidationError

        with pytest.raises(ValidationError, match="no_such_option"):
            self.method(no_such_option=1)

    def test_config_is_frozen(self):
        from pydantic import ValidationError

        config = self.method().config
        for field in type(config).model_fields:
            with pytest.raises(ValidationError):
                setattr(config, field, getattr(config, field))
            break

    def test_out_of_bounds_values_are_rejected_by_name(self):
        from pydantic import ValidationError

        from yw_core.interfaces import config_schema

        for row in config_schema(self.method.Config):
            for key, bound in row["bounds"].items():
                outside = bound - 1 if key in ("ge", "gt") else bound + 1
                with pytest.raises(ValidationError, match=row["name"]):
                    self.method(**{row["name"]: outside})

    def test_describe_is_json_serialisable(self):
        import json

        info = json.loads(json.dumps(self.method.describe(), default=str))
        assert info["name"] == self.method.name
        assert info["interface"] == self.method.interface

    def test_entry_point_matches_class(self):
        """When installed, entry points that point at this class carry its name (else: broken)."""
        from importlib import metadata

        cls = self.method
        found = [
            ep
            for ep in metadata.entry_points(group=cls.group)
            if ep.attr == cls.__qualname__ and cls.__module__.startswith(ep.module)
        ]
        found = [ep for ep in found if ep.load() is cls]
        if not found:
            pytest.skip("not installed through an entry point")
        assert [ep.name for ep in found] == [cls.name] * len(found)


class DefenseConformance(MethodConformance):
    """A post-hoc defense keeps the output shape and leaves the model's weights alone."""

    def test_post_hoc_protect_keeps_shape_and_weights(self, yw_runtime):
        import torch

        if not self.method.capabilities.post_hoc:
            pytest.skip("training-time defense: covered by the plugin's own tests")
        model = yw_runtime.to(self.make_model())
        before = {k: v.clone() for k, v in model.state_dict().items()}
        x = yw_runtime.to(self.make_data(8).tensors[0])
        protected = self.make().protect(model, data=self.make_data(), runtime=yw_runtime)
        assert isinstance(protected, torch.nn.Module)
        out = protected(x)
        assert out.shape == model(x).shape
        assert torch.isfinite(out).all()
        for k, v in model.state_dict().items():
            assert torch.equal(v, before[k]), f"protect() changed the model's {k}"


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


class AttackConformance(MethodConformance):
    """The attack contract: inputs stay in [0, 1] and inside the eps-ball, no sample spends more
    than the budget, a reported success is a real misclassification, initially misclassified
    samples cost nothing, and a run with a smaller budget is a prefix of a longer one (the
    benchmark reads robust accuracy at every budget off one run at the largest)."""

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


class OODScorerConformance(MethodConformance):
    """A fitted scorer gives one finite score per input."""

    def test_scores_one_per_input(self, yw_runtime):
        import torch

        model = yw_runtime.to(self.make_model())
        scorer = self.make().fit(model, self.make_data(), runtime=yw_runtime)
        x = yw_runtime.to(self.make_data(8, seed=1).tensors[0])
        scores = scorer.score(x)
        assert scores.shape == (8,)
        assert torch.isfinite(scores).all()


class UnlearnerConformance(MethodConformance):
    """Unlearning returns a model with the original output shape."""

    def test_unlearn_returns_model(self, yw_runtime):
        import torch

        model = yw_runtime.to(self.make_model())
        x = yw_runtime.to(self.make_data(8).tensors[0])
        shape = model(x).shape
        out = self.make().unlearn(model, self.make_data(8, seed=1), runtime=yw_runtime)
        assert isinstance(out, torch.nn.Module)
        assert out(x).shape == shape


class ContinualLearnerConformance(MethodConformance):
    """Observing a stream gives finite losses; predictions have one logit per class."""

    def test_observe_and_predict(self, yw_runtime):
        import math

        import torch

        model = yw_runtime.to(self.make_model()).train()
        learner = self.make()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        learner.setup(model, optimizer, num_classes=self.num_classes, runtime=yw_runtime)
        x, y = yw_runtime.to(self.make_data(16).tensors)
        for i in range(0, 16, 4):
            assert math.isfinite(float(learner.observe(x[i : i + 4], y[i : i + 4])))
        assert learner.predict(x).shape == (16, self.num_classes)


class InterpreterConformance(MethodConformance):
    """Explanations have one attribution per input feature."""

    def test_explain_shapes(self, yw_runtime):
        model = yw_runtime.to(self.make_model())
        interpreter = self.make().fit(model, self.make_data(), runtime=yw_runtime)
        x = yw_runtime.to(self.make_data(4, seed=1).tensors[0])
        explanation = interpreter.explain(x)
        assert explanation.attributions.shape == x.shape
        if explanation.reliability is not None:
            assert explanation.reliability.shape == (4,)


class RecModelConformance(MethodConformance):
    """Metadata and config rules; the model's schema is method-specific (test it in the plugin)."""


class ForecasterConformance(MethodConformance):
    """Metadata and config rules; the record format is method-specific (test it in the plugin)."""


SUITES: dict[str, type[MethodConformance]] = {
    "defense": DefenseConformance,
    "weight_optimizer": WeightOptimizerConformance,
    "attack": AttackConformance,
    "ood_scorer": OODScorerConformance,
    "unlearner": UnlearnerConformance,
    "continual_learner": ContinualLearnerConformance,
    "interpreter": InterpreterConformance,
    "rec_model": RecModelConformance,
    "forecaster": ForecasterConformance,
}


def conformance_suite(method: type, **attributes: Any) -> type[MethodConformance]:
    """The conformance test class for `method`, picked by its interface; name it Test*."""
    from yw_core.interfaces import INTERFACES

    suite = SUITES.get(getattr(method, "interface", ""), MethodConformance)
    interface = INTERFACES.get(getattr(method, "interface", ""))
    name = f"Test{getattr(method, '__name__', 'Method')}Conformance"
    return type(name, (suite,), {"method": method, "interface": interface, **attributes})
