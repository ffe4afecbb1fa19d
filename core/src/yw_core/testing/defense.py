"""Conformance suite for Defense plugins: the promises of `yw_core.interfaces.Defense`."""

from __future__ import annotations

import pytest

from yw_core.testing.method import MethodConformance


class DefenseConformance(MethodConformance):
    """A post-hoc defense (`capabilities.post_hoc`) returns a module whose logits have the
    model's shape and are finite, with or without calibration data, and leaves the model's
    weights alone; with `capabilities.deterministic`, a wrapper made after seeding the runtime
    gives the same sequence of logits for the same sequence of calls, run after run. Its
    `randomized` and `batch_dependence` declarations hold: a repeated query gets the same logits
    unless it is randomized, and then different ones somewhere; a deterministic defense's logits
    (batch_dependence "none") or argmax ("scores") for an input do not change with the batch
    around it. A training-time defense refuses to run without `data` (a ValueError naming it);
    its training is left to the plugin's own tests."""

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

    def test_post_hoc_repeated_query_matches_randomized(self, yw_runtime):
        import torch

        caps = self.method.capabilities
        if not caps.post_hoc:
            pytest.skip("training-time defense: covered by the plugin's own tests")
        model = yw_runtime.to(self.make_model())
        x = yw_runtime.to(self.make_data(8).tensors[0])
        protected = self.protected(yw_runtime, model, self.make_data())
        with torch.no_grad():
            first, second = protected(x), protected(x)
        same = torch.allclose(first, second, rtol=1e-5, atol=1e-6)
        if caps.randomized:
            assert not same, "declared randomized, but a repeated query got the same logits"
        else:
            assert same, "a repeated query got different logits: declare randomized=True"

    def test_post_hoc_batch_dependence_as_declared(self, yw_runtime):
        """Each of 4 inputs queried alone (or, when batches of 1 raise a ValueError, as the
        first rows of a batch) and as the last rows of a batch with 4 other inputs."""
        import torch

        caps = self.method.capabilities
        if not caps.post_hoc:
            pytest.skip("training-time defense: covered by the plugin's own tests")
        if caps.batch_dependence == "argmax":
            pytest.skip("batch_dependence='argmax': nothing to check")
        if caps.randomized:
            pytest.skip("randomized: fresh randomness per call hides any batch dependence")
        model = yw_runtime.to(self.make_model())
        x = yw_runtime.to(self.make_data(8).tensors[0])
        protected = self.protected(yw_runtime, model, self.make_data())
        with torch.no_grad():
            try:
                alone = torch.cat([protected(x[i : i + 1]) for i in range(4)])
            except ValueError:  # a batch of 1 is refused: another batch instead
                alone = protected(x[[0, 1, 2, 3, 7, 6]])[:4]
            mixed = protected(x[[4, 5, 6, 7, 0, 1, 2, 3]])[4:]
        if caps.batch_dependence == "none":
            assert torch.allclose(alone, mixed, rtol=1e-4, atol=1e-5), (
                "an input's logits change with the rest of its batch: declare "
                "batch_dependence='scores' (argmax kept) or 'argmax'"
            )
        assert torch.equal(alone.argmax(1), mixed.argmax(1)), (
            "an input's predicted class changes with the rest of its batch: declare "
            "batch_dependence='argmax'"
        )
