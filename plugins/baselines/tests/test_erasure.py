"""The concept-erasure baselines: their targets are ESD's negative guidance and the anchor
concept's prediction, on the loop MiM-MU shares (only the cross-attention moves), and a bad
anchor is named."""

import pytest
import torch
from torch.utils.data import TensorDataset

from yw_core.runtime import Runtime
from yw_core.testing import tiny_ddpm
from yw_plugin_baselines import ESD, ConceptAblation


def inputs():
    model = tiny_ddpm()
    x_t, t = torch.randn(6, 1, 8, 8), torch.arange(6)
    return model, x_t, t, model.condition(torch.tensor([0, 1, 2, 3, 0, 1]))


@pytest.mark.parametrize("eta", [0.0, 1.0, 2.5])
def test_esd_target_is_negative_guidance(eta):
    model, x_t, t, cond = inputs()
    e_null = model.eps(x_t, t, model.null_condition(6))
    e_c = model.eps(x_t, t, cond)
    expected = e_null - eta * (e_c - e_null)
    torch.testing.assert_close(ESD(eta=eta).target(model, x_t, t, cond), expected)


def test_ablation_target_is_the_anchor_concepts_prediction():
    model, x_t, t, cond = inputs()
    expected = model.eps(x_t, t, model.condition([2] * 6))
    torch.testing.assert_close(ConceptAblation(anchor=2).target(model, x_t, t, cond), expected)


@pytest.mark.parametrize("method", [ESD(lr=1e-3, epochs=1), ConceptAblation(lr=1e-3, epochs=1)])
def test_only_the_cross_attention_moves(method):
    model = tiny_ddpm()
    data = TensorDataset(torch.rand(8, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 3] * 2))
    out = method.unlearn(model, data, runtime=Runtime(device="cpu", seed=0, distributed=False))
    before, after = model.state_dict(), out.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(".cond." in k for k in moved)


@pytest.mark.parametrize(
    ("anchor", "message"),
    [(7, "the anchor: unknown concept 7"), ("a dog", "the anchor: unknown concept")],
)
def test_an_anchor_the_model_does_not_know_is_named(anchor, message):
    data = TensorDataset(torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3]))
    runtime = Runtime(device="cpu", seed=0, distributed=False)
    with pytest.raises(ValueError, match=message):
        ConceptAblation(anchor=anchor).unlearn(tiny_ddpm(), data, runtime=runtime)
