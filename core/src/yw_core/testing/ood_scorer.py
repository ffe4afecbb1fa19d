"""Conformance suite for OODScorer plugins: the promises of `yw_core.interfaces.OODScorer`."""

from __future__ import annotations

import pytest

from yw_core.testing.fixtures import prototype_problem
from yw_core.testing.method import MethodConformance


class OODScorerConformance(MethodConformance):
    """A fitted scorer gives one finite, detached score per input on the input's device; it
    ranks in-distribution inputs above flat and noise images on a model built to tell them
    apart; it reads a Dataset, a DataLoader and a tensor alike; it is deterministic (when its
    capabilities say so), leaves the model's weights and training mode alone, works under
    no_grad, refuses to score before `fit` (RuntimeError), and refuses inputs with NaN or
    without a batch dimension (ValueError, as `check_inputs` raises). Override
    `make_ood_problem` for scorers that need another model or data."""

    def make_ood_problem(self):
        """(model, id_data, id_x, ood_x): a model confident on its in-distribution data."""
        import torch

        model, id_data = prototype_problem(64, self.num_classes, seed=0)
        _, test = prototype_problem(16, self.num_classes, seed=1)
        g = torch.Generator().manual_seed(2)
        ood = torch.cat([torch.full((8, 1, 8, 8), 0.5), torch.rand(8, 1, 8, 8, generator=g)])
        return model, id_data, test.tensors[0], ood

    def fitted(self, runtime, data=None, model=None):
        model = runtime.to(model if model is not None else self.make_model())
        runtime.seed_everything()
        return self.make().fit(model, self.make_data() if data is None else data, runtime=runtime)

    def test_fit_returns_self_and_scores_one_per_input(self, yw_runtime):
        import torch

        scorer = self.make()
        model = yw_runtime.to(self.make_model())
        assert scorer.fit(model, self.make_data(), runtime=yw_runtime) is scorer
        cpu_x = self.make_data(8, seed=1).tensors[0]
        for x in (cpu_x, yw_runtime.to(cpu_x)):
            scores = scorer.score(x)
            assert scores.shape == (8,), f"scores have shape {tuple(scores.shape)}"
            assert scores.dtype.is_floating_point and not scores.requires_grad
            assert scores.device == x.device
            assert torch.isfinite(scores).all()

    def test_in_distribution_scores_higher_than_flat_and_noise(self, yw_runtime):
        model, id_data, id_x, ood_x = self.make_ood_problem()
        scorer = self.fitted(yw_runtime, id_data, model)
        id_scores, ood_scores = scorer.score(id_x), scorer.score(ood_x)
        pairs = id_scores[:, None] - ood_scores[None, :]
        auroc = ((pairs > 0).float() + 0.5 * (pairs == 0).float()).mean().item()
        assert auroc >= 0.9, f"in-distribution inputs do not score higher (AUROC {auroc:.2f})"

    def test_accepts_dataset_loader_and_tensor(self, yw_runtime):
        import torch
        from torch.utils.data import DataLoader

        data = self.make_data()
        x = self.make_data(8, seed=1).tensors[0]
        from_dataset = self.fitted(yw_runtime, data).score(x)
        from_loader = self.fitted(yw_runtime, DataLoader(data, batch_size=8)).score(x)
        assert torch.allclose(from_dataset, from_loader, rtol=1e-4, atol=1e-5)
        try:
            from_tensor = self.fitted(yw_runtime, data.tensors[0]).score(x)
        except ValueError as exc:  # a scorer that needs labels says so
            assert "label" in str(exc)
        else:
            assert from_tensor.shape == (8,) and torch.isfinite(from_tensor).all()

    def test_same_data_same_scores_also_under_no_grad(self, yw_runtime):
        import torch

        if not self.method.capabilities.deterministic:
            pytest.skip("not deterministic by its capabilities")
        x = self.make_data(8, seed=1).tensors[0]
        first = self.fitted(yw_runtime).score(x)
        scorer = self.fitted(yw_runtime)
        with torch.no_grad():
            second = scorer.score(x)
        assert torch.allclose(first, second, rtol=1e-5, atol=1e-6)

    def test_model_weights_and_mode_are_left_alone(self, yw_runtime):
        import torch

        model = yw_runtime.to(self.make_model()).train()
        before = {k: v.clone() for k, v in model.state_dict().items()}
        self.fitted(yw_runtime, model=model).score(self.make_data(8, seed=1).tensors[0])
        assert model.training, "the scorer did not restore the model's training mode"
        for k, v in model.state_dict().items():
            assert torch.equal(v, before[k]), f"the scorer changed the model's {k}"

    def test_score_before_fit_raises(self):
        with pytest.raises(RuntimeError):
            self.make().score(self.make_data(4).tensors[0])

    def test_bad_inputs_to_score_are_a_clear_value_error(self, yw_runtime):
        import torch

        scorer = self.fitted(yw_runtime)
        x = self.make_data(4, seed=1).tensors[0]
        with pytest.raises(ValueError, match="NaN"):
            scorer.score(x.masked_fill(x > 0.5, float("nan")))
        with pytest.raises(ValueError, match="shape"):
            scorer.score(torch.rand(4))
