"""Conformance suite for Interpreter plugins: the promises of `yw_core.interfaces.Interpreter`."""

from __future__ import annotations

from typing import ClassVar

import pytest

from yw_core.testing.fixtures import prototype_problem
from yw_core.testing.method import MethodConformance


class InterpreterConformance(MethodConformance):
    """`fit` returns self; `explain(x)` returns an Explanation that passes `check(x)`, with
    every tensor detached and on x's device (x on CPU or on the runtime's device); `explain`
    before `fit` is a RuntimeError; fit and explain leave the model's weights and training mode
    as they found them; explaining under `torch.no_grad()` gives the same explanation; fit reads
    a Dataset, a DataLoader and a tensor alike; on `prototype_problem`, whose model ignores the
    bottom half of the image, the bottom half gets (near) no attribution. Override
    `make_problem` for interpreters that need another model or data."""

    ignored_share: ClassVar[float] = 0.02
    """Most of the |attribution| mass the ignored half of the image may get."""

    def make_problem(self):
        """(model, data, x): a model that reads only the top half of 1x8x8 images."""
        model, data = prototype_problem(32, self.num_classes, seed=0)
        _, test = prototype_problem(8, self.num_classes, seed=1)
        return model, data, test.tensors[0]

    def fitted(self, runtime, data=None, model=None):
        model = runtime.to(model if model is not None else self.make_model())
        runtime.seed_everything()
        data = self.make_data() if data is None else data
        return self.make().fit(model, data, runtime=runtime)

    def explain(self, runtime, interpreter, x):
        runtime.seed_everything()
        return interpreter.explain(x)

    def test_fit_returns_self_and_explain_fits_the_inputs(self, yw_runtime):
        from yw_core.interfaces import Explanation

        interpreter = self.make()
        model = yw_runtime.to(self.make_model())
        assert interpreter.fit(model, self.make_data(), runtime=yw_runtime) is interpreter
        cpu_x = self.make_data(4, seed=1).tensors[0]
        for x in (cpu_x, yw_runtime.to(cpu_x)):
            explanation = interpreter.explain(x)
            assert isinstance(explanation, Explanation)
            explanation.check(x)
            for name in ("attributions", "reliability", "target"):
                value = getattr(explanation, name)
                if value is None:
                    continue
                assert not value.requires_grad, f"{name} is not detached"
                assert value.device == x.device, f"{name} is on {value.device}, x on {x.device}"

    def test_explain_before_fit_raises(self):
        with pytest.raises(RuntimeError):
            self.make().explain(self.make_data(4).tensors[0])

    def test_model_weights_and_mode_are_left_alone(self, yw_runtime):
        import torch

        x = self.make_data(4, seed=1).tensors[0]
        for training in (True, False):
            model = yw_runtime.to(self.make_model()).train(training)
            before = {k: v.clone() for k, v in model.state_dict().items()}
            self.fitted(yw_runtime, model=model).explain(x)
            assert model.training is training, "the interpreter changed the model's mode"
            for k, v in model.state_dict().items():
                assert torch.equal(v, before[k]), f"the interpreter changed the model's {k}"

    def test_same_explanation_under_no_grad(self, yw_runtime):
        import torch

        x = self.make_data(4, seed=1).tensors[0]
        interpreter = self.fitted(yw_runtime)
        with torch.no_grad():
            quiet = self.explain(yw_runtime, interpreter, x).check(x)
        if not self.method.capabilities.deterministic:
            return
        plain = self.explain(yw_runtime, interpreter, x)
        assert torch.allclose(plain.attributions, quiet.attributions, rtol=1e-5, atol=1e-6)

    def test_accepts_dataset_loader_and_tensor(self, yw_runtime):
        import torch
        from torch.utils.data import DataLoader

        data = self.make_data()
        x = self.make_data(4, seed=1).tensors[0]
        from_dataset = self.explain(yw_runtime, self.fitted(yw_runtime, data), x)
        loader = DataLoader(data, batch_size=8)
        from_loader = self.explain(yw_runtime, self.fitted(yw_runtime, loader), x)
        if self.method.capabilities.deterministic:
            assert torch.allclose(
                from_dataset.attributions, from_loader.attributions, rtol=1e-4, atol=1e-5
            )
        try:
            from_tensor = self.fitted(yw_runtime, data.tensors[0])
        except ValueError as exc:  # an interpreter that needs labels says so
            assert "label" in str(exc)
        else:
            self.explain(yw_runtime, from_tensor, x).check(x)

    def test_ignored_half_of_the_image_gets_no_attribution(self, yw_runtime):
        model, data, x = self.make_problem()
        explanation = self.explain(yw_runtime, self.fitted(yw_runtime, data, model), x)
        mass = explanation.check(x).attributions.abs()
        top, bottom = mass[..., :4, :].sum().item(), mass[..., 4:, :].sum().item()
        assert top > 0, "no attribution at all on the pixels the model reads"
        share = bottom / (top + bottom)
        assert share <= self.ignored_share, (
            f"{share:.1%} of the attribution lies on pixels the model ignores"
        )
