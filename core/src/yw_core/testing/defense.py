"""Conformance suite for Defense plugins: the promises of `yw_core.interfaces.Defense`."""

from __future__ import annotations

import pytest

from yw_core.testing.method import MethodConformance


class DefenseConformance(MethodConformance):
    """A post-hoc defense (`capabilities.post_hoc`) returns a module whose logits have the
    model's shape and are finite, with or without calibration data, and leaves the model's
    weights alone; with `capabilities.deterministic`, a wrapper made after seeding the runtime
    gives the same sequence of logits for the same sequence of calls, run after run. A
    training-time defense refuses to run without `data` (a ValueError naming it); its training
    is left to the plugin's own tests."""

    def protected(self, runtime, model, data=None):
        """The protected model, made after seeding the runtime as a host does."""
        runtime.seed_everything()
        if data is None:
            return self.make().protect(model, runtime=runtime)
        return self.make().protect(model, data=data, runtime=runtime)

    def test_post_hoc_protect_keeps_shape_and_weights(self, yw_runtime):
        import torch

        if not self.method.capabilities.post_hoc:
            pytest.skip("training-time defense: covered by the plugin's own tests")
        model = yw_runtime.to(self.make_model())
        before = {k: v.clone() for k, v in model.state_dict().items()}
        x = yw_runtime.to(self.make_data(8).tensors[0])
        protected = self.protected(yw_runtime, model, self.make_data())
        assert isinstance(protected, torch.nn.Module)
        out = protected(x)
        assert out.shape == model(x).shape
        assert torch.isfinite(out).all()
        for k, v in model.state_dict().items():
            assert torch.equal(v, before[k]), f"protect() changed the model's {k}"

    def test_post_hoc_protect_needs_no_data(self, yw_runtime):
        import torch

        if not self.method.capabilities.post_hoc:
            pytest.skip("training-time defense: it needs data")
        model = yw_runtime.to(self.make_model())
        x = yw_runtime.to(self.make_data(8).tensors[0])
        out = self.protected(yw_runtime, model)(x)
        assert out.shape == model(x).shape
        assert torch.isfinite(out).all()

    def test_post_hoc_same_seed_same_logits(self, yw_runtime):
        import torch

        if not self.method.capabilities.post_hoc:
            pytest.skip("training-time defense: covered by the plugin's own tests")
        if not self.method.capabilities.deterministic:
            pytest.skip("not deterministic by its capabilities")
        model = yw_runtime.to(self.make_model())
        x = yw_runtime.to(self.make_data(8).tensors[0])
        runs = []
        for _ in range(2):  # fresh noise on every call is fine; the sequence must repeat
            protected = self.protected(yw_runtime, model, self.make_data())
            runs.append([protected(x) for _ in range(2)])
        for call, (a, b) in enumerate(zip(*runs)):
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), (
                f"two wrappers made with the same seed differ on call {call + 1}"
            )

    def test_training_time_protect_without_data_is_a_value_error(self, yw_runtime):
        if self.method.capabilities.post_hoc:
            pytest.skip("post-hoc defense: data is optional")
        model = yw_runtime.to(self.make_model())
        with pytest.raises(ValueError, match="data"):
            self.make().protect(model, runtime=yw_runtime)
