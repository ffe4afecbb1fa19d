"""Conformance suite for Defense plugins."""

from __future__ import annotations

import pytest

from yw_core.testing.method import MethodConformance


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
