"""Conformance suite for RecModel plugins: the promises of `yw_core.interfaces.RecModel`."""

from __future__ import annotations

import math
import re
from typing import ClassVar

import pytest

from yw_core.testing.fixtures import random_features
from yw_core.testing.method import MethodConformance


class RecModelConformance(MethodConformance):
    """`build(schema)` returns a fresh nn.Module (no parameters shared with another build)
    with trainable parameters and a `serve` path; `forward(user, items)` gives N finite float
    scores on the features' device; in eval mode `serve(user, candidates)` equals `forward` on
    the user repeated, within tolerance; a missing field or an id outside its cardinality is a
    ValueError naming the field, on both paths; a few Adam steps on a learnable synthetic click
    signal lower the loss; the same seed builds the same model; a module that offers `w8a16()`
    returns a copy of itself that serves the same shape of finite scores and leaves the
    original unchanged. Override `make_schema` for models that need other fields, and
    `make_clicks` for another learnable signal."""

    rows: ClassVar[int] = 8
    candidates: ClassVar[int] = 6
    train_steps: ClassVar[int] = 20
    lr: ClassVar[float] = 1e-2

    def make_schema(self):
        """Two fields per side: an id and a dense vector."""
        from yw_core.interfaces import FeatureField, RecSchema

        return RecSchema(
            (
                FeatureField("user_id", "user", cardinality=10),
                FeatureField("user_age", "user", "dense", dim=2),
                FeatureField("item_id", "item", cardinality=20),
                FeatureField("item_price", "item", "dense", dim=1),
            )
        )

    def make_clicks(self, schema, n: int = 64, seed: int = 0):
        """(user, items, labels): clicks on the first half of the first item id field's ids
        (or where the first dense item feature is positive), whoever the user is."""
        user = random_features(schema, "user", n, seed)
        items = random_features(schema, "item", n, seed + 1)
        ids = [f for f in schema.item_fields if f.kind == "categorical"]
        if ids:
            labels = items[ids[0].name] < ids[0].cardinality // 2
        else:
            labels = items[schema.item_fields[0].name][:, 0] > 0
        return user, items, labels.float()

    def built(self, runtime, schema=None):
        runtime.seed_everything()
        return runtime.to(self.make().build(schema if schema is not None else self.make_schema()))

    def features(self, runtime, schema, side: str, n: int, seed: int = 0):
        return runtime.to(random_features(schema, side, n, seed))

    def test_build_returns_a_trainable_module_with_serve(self):
        import torch

        module = self.make().build(self.make_schema())
        assert isinstance(module, torch.nn.Module)
        assert any(p.requires_grad for p in module.parameters()), "no trainable parameters"
        assert callable(getattr(module, "serve", None)), "the module has no serve(user, items)"

    def test_each_build_is_a_fresh_module(self):
        first, second = (self.make().build(self.make_schema()) for _ in range(2))
        shared = {id(p) for p in first.parameters()} & {id(p) for p in second.parameters()}
        assert not shared, "two builds share parameters"

    def test_w8a16_when_offered_is_a_copy_that_scores_alike(self, yw_runtime):
        import torch

        schema = self.make_schema()
        module = self.built(yw_runtime, schema).eval()
        if not callable(getattr(module, "w8a16", None)):
            pytest.skip("offers no w8a16()")
        before = {k: v.clone() for k, v in module.state_dict().items()}
        quantised = module.w8a16()
        assert isinstance(quantised, torch.nn.Module) and quantised is not module
        for k, v in module.state_dict().items():
            assert torch.equal(v, before[k]), f"w8a16() changed the module's {k}"
        user = self.features(yw_runtime, schema, "user", 1, seed=1)
        candidates = self.features(yw_runtime, schema, "item", self.candidates, seed=2)
        with torch.no_grad():
            served = quantised.serve(user, candidates)
            full = module.serve(user, candidates)
        assert served.shape == full.shape and torch.isfinite(served).all()

    def test_forward_gives_one_finite_score_per_row(self, yw_runtime):
        import torch

        schema = self.make_schema()
        module = self.built(yw_runtime, schema)
        user = self.features(yw_runtime, schema, "user", self.rows, seed=1)
        items = self.features(yw_runtime, schema, "item", self.rows, seed=2)
        scores = module(user, items)
        assert isinstance(scores, torch.Tensor) and scores.dtype.is_floating_point
        assert scores.shape == (self.rows,), f"scores have shape {tuple(scores.shape)}"
        assert scores.device == user[schema.user_fields[0].name].device
        assert torch.isfinite(scores).all()

    def test_serve_equals_forward_on_the_repeated_user(self, yw_runtime):
        import torch

        schema = self.make_schema()
        module = self.built(yw_runtime, schema).eval()
        c = self.candidates
        for seed in (1, 2):
            user = self.features(yw_runtime, schema, "user", 1, seed=seed)
            candidates = self.features(yw_runtime, schema, "item", c, seed=seed + 10)
            repeated = {k: v.repeat(c, *[1] * (v.dim() - 1)) for k, v in user.items()}
            with torch.no_grad():
                served = module.serve(user, candidates)
                forward = module(repeated, candidates)
            assert served.shape == (c,), f"serve() gave shape {tuple(served.shape)}"
            assert torch.allclose(served, forward, rtol=1e-4, atol=1e-5), (
                f"serve() differs from forward() by {(served - forward).abs().max().item():.3g}"
            )

    @pytest.mark.parametrize("path", ["forward", "serve"])
    @pytest.mark.parametrize("problem", ["missing user field", "missing item field", "bad id"])
    def test_bad_features_are_a_value_error_naming_the_field(self, yw_runtime, path, problem):
        schema = self.make_schema()
        module = self.built(yw_runtime, schema).eval()
        user = self.features(yw_runtime, schema, "user", 1 if path == "serve" else 4, seed=1)
        items = self.features(yw_runtime, schema, "item", 4, seed=2)
        if problem == "bad id":
            ids = [f for f in schema.fields if f.kind == "categorical"]
            if not ids:
                pytest.skip("the schema has no categorical field")
            field = ids[0]
            side = user if field.side == "user" else items
            side[field.name] = side[field.name].clone().fill_(field.cardinality)
        else:
            which = "user" if "user" in problem else "item"
            field = schema.side_fields(which)[0]
            del (user if which == "user" else items)[field.name]
        with pytest.raises(ValueError, match=re.escape(field.name)):
            (module.serve if path == "serve" else module)(user, items)

    def test_a_few_steps_on_a_click_signal_lower_the_loss(self, yw_runtime):
        import torch
        import torch.nn.functional as F

        schema = self.make_schema()
        module = self.built(yw_runtime, schema).train()
        user, items, labels = yw_runtime.to(self.make_clicks(schema))
        optimizer = torch.optim.Adam(module.parameters(), lr=self.lr)
        losses = []
        for _ in range(self.train_steps):
            optimizer.zero_grad()
            loss = F.binary_cross_entropy_with_logits(module(user, items), labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert all(map(math.isfinite, losses)), f"the loss is not finite: {losses}"
        assert losses[-1] < 0.9 * losses[0], (
            f"the loss did not fall: {losses[0]:.4f} -> {losses[-1]:.4f}"
        )

    def test_same_seed_builds_the_same_model(self, yw_runtime):
        import torch

        if not self.method.capabilities.deterministic:
            pytest.skip("not deterministic by its capabilities")
        schema = self.make_schema()
        first, second = self.built(yw_runtime, schema), self.built(yw_runtime, schema)
        user = self.features(yw_runtime, schema, "user", self.rows, seed=1)
        items = self.features(yw_runtime, schema, "item", self.rows, seed=2)
        with torch.no_grad():
            assert torch.equal(first.eval()(user, items), second.eval()(user, items))
