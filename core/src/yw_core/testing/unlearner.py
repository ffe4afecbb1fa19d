"""Conformance suite for Unlearner plugins: the promises of `yw_core.interfaces.Unlearner`."""

from __future__ import annotations

import pytest

from yw_core.testing.method import MethodConformance


class UnlearnerConformance(MethodConformance):
    """Unlearning returns a module in eval mode with the model's output shape, from Datasets or
    an UnlearningRequest alike (the same result with `capabilities.deterministic`); it never
    modifies the forget or retain data, nor the caller's model unless asked to
    (`in_place=True`); remaining-data-free methods ignore `retain`; an empty forget set and
    labels outside the model's classes are clear ValueErrors, and so, for classifiers, are a
    model without trainable parameters and one that does not return (N, classes) logits (what
    `check_model` raises). Override `make_forget` and `make_retain` for methods that need other
    data.

    For `model_kind = "diffusion"` the model is `tiny_ddpm` and its output the noise prediction
    at fixed timesteps and concepts; such methods must also reject a model that is not a
    ConditionalDiffusion (TypeError) or has no conditioning (ValueError), and stop with a
    FloatingPointError when the model predicts NaN."""

    def make_model(self):
        if self.method.model_kind == "diffusion":
            from yw_core.testing.fixtures import tiny_ddpm

            return tiny_ddpm(self.num_classes)
        return super().make_model()

    def outputs(self, model, x):
        """What the model computes for a batch x: logits, or ε at fixed t and concepts."""
        if self.method.model_kind != "diffusion":
            return model(x)
        import torch

        n = x.shape[0]
        t = torch.arange(n, device=x.device) % model.num_timesteps
        return model.eps(x, t, model.condition(torch.arange(n) % self.num_classes))

    def make_forget(self):
        return self.make_data(8, seed=1)

    def make_retain(self):
        return self.make_data(16, seed=2)

    def unlearned(self, runtime, forget, retain=None, model=None, **kw):
        model = runtime.to(self.make_model()) if model is None else model
        runtime.seed_everything()
        return self.make().unlearn(model, forget, retain, runtime=runtime, **kw)

    def retain_for(self):
        """What a host passes as retain: nothing to a remaining-data-free method."""
        return None if self.method.remaining_data_free else self.make_retain()

    def test_unlearn_returns_model_of_the_same_output_shape(self, yw_runtime):
        import torch

        x = yw_runtime.to(self.make_data(8).tensors[0])
        shape = self.outputs(yw_runtime.to(self.make_model()), x).shape
        out = self.unlearned(yw_runtime, self.make_forget(), self.retain_for())
        assert isinstance(out, torch.nn.Module)
        assert not out.training, "unlearn() must return the model in eval mode"
        assert self.outputs(out, x).shape == shape
        assert torch.isfinite(self.outputs(out, x)).all()

    def test_accepts_an_unlearning_request(self, yw_runtime):
        import torch

        from yw_core.interfaces import UnlearningRequest

        x = yw_runtime.to(self.make_data(8).tensors[0])
        forget, retain = self.make_forget(), self.retain_for()
        plain = self.outputs(self.unlearned(yw_runtime, forget, retain), x)
        request = self.outputs(self.unlearned(yw_runtime, UnlearningRequest(forget, retain)), x)
        if self.method.capabilities.deterministic:
            assert torch.allclose(plain, request, rtol=1e-5, atol=1e-6)
        assert request.shape == plain.shape

    def test_forget_and_retain_data_are_not_modified(self, yw_runtime):
        import torch

        forget, retain = self.make_forget(), self.make_retain()
        before = _snapshot(forget), _snapshot(retain)
        self.unlearned(yw_runtime, forget, retain)
        for old, new in zip(before, (_snapshot(forget), _snapshot(retain))):
            assert all(map(torch.equal, old, new)), "unlearn() modified its data"

    def test_remaining_data_free_methods_ignore_retain(self, yw_runtime):
        import torch

        if not self.method.remaining_data_free:
            pytest.skip("uses the remaining data")
        if not self.method.capabilities.deterministic:
            pytest.skip("not deterministic by its capabilities")
        x = yw_runtime.to(self.make_data(8).tensors[0])
        without = self.outputs(self.unlearned(yw_runtime, self.make_forget()), x)
        with_retain = self.outputs(
            self.unlearned(yw_runtime, self.make_forget(), self.make_retain()), x
        )
        assert torch.allclose(without, with_retain, rtol=1e-5, atol=1e-6)

    def test_empty_forget_set_is_a_clear_value_error(self, yw_runtime):
        import torch
        from torch.utils.data import TensorDataset

        empty = TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))
        with pytest.raises(ValueError, match="forget"):
            self.unlearned(yw_runtime, empty, self.retain_for())

    def test_the_callers_model_is_unchanged_unless_in_place(self, yw_runtime):
        import torch

        model = yw_runtime.to(self.make_model())
        before = {k: v.clone() for k, v in model.state_dict().items()}
        out = self.unlearned(yw_runtime, self.make_forget(), self.retain_for(), model=model)
        assert out is not model
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before), "unlearn() changed the model"
        out = self.unlearned(
            yw_runtime, self.make_forget(), self.retain_for(), model=model, in_place=True
        )
        assert out is model, "in_place=True must train and return the caller's model"

    def test_forget_labels_outside_the_models_classes_are_a_clear_value_error(self, yw_runtime):
        from torch.utils.data import TensorDataset

        x, y = self.make_forget().tensors[:2]
        bad = TensorDataset(x, y.clone().fill_(self.num_classes + 3))
        diffusion = self.method.model_kind == "diffusion"
        message = "unknown concept" if diffusion else "outside the model's"
        with pytest.raises(ValueError, match=message):
            self.unlearned(yw_runtime, bad, self.retain_for())

    def test_a_frozen_model_or_one_without_logits_is_a_clear_value_error(self, yw_runtime):
        from torch import nn

        if self.method.model_kind != "classifier":
            pytest.skip("unlearns diffusion models")
        frozen = yw_runtime.to(self.make_model()).requires_grad_(False)
        with pytest.raises(ValueError, match="trainable"):
            self.unlearned(yw_runtime, self.make_forget(), self.retain_for(), model=frozen)
        flat = yw_runtime.to(nn.Sequential(self.make_model(), nn.Flatten(0)))
        with pytest.raises(ValueError, match="logits"):
            self.unlearned(yw_runtime, self.make_forget(), self.retain_for(), model=flat)

    def test_a_model_without_conditioning_is_a_clear_error(self, yw_runtime):
        if self.method.model_kind != "diffusion":
            pytest.skip("unlearns classifiers")
        from yw_core.testing.fixtures import tiny_classifier

        with pytest.raises(TypeError, match="ConditionalDiffusion"):
            self.unlearned(yw_runtime, self.make_forget(), model=tiny_classifier())
        unconditional = self.make_model()
        unconditional.conditioning_parameters = list  # nothing reads the condition: no params
        with pytest.raises(ValueError, match="no conditioning"):
            self.unlearned(yw_runtime, self.make_forget(), model=yw_runtime.to(unconditional))

    def test_nan_in_the_models_output_is_a_floating_point_error(self, yw_runtime):
        import torch

        if self.method.model_kind != "diffusion":
            pytest.skip("unlearns classifiers")
        model = self.make_model()
        with torch.no_grad():
            model.out[1].bias.fill_(float("nan"))
        with pytest.raises(FloatingPointError, match="NaN"):
            self.unlearned(yw_runtime, self.make_forget(), model=yw_runtime.to(model))


def _snapshot(dataset) -> list:
    """Copies of every input and label tensor in the dataset, in order."""
    return [t.clone() for item in dataset for t in item[:2]]
