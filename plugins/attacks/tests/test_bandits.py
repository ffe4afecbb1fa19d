"""Bandits-TD: the prior update, the data prior, query arithmetic and the shared attack contract."""

import math

import pytest
import torch

from yw_core.testing import linear_problem
from yw_plugin_attacks.bandits import (
    Bandits,
    exploration_noise,
    prior_gradient,
    update_prior,
    upsample,
)


def run(model, x, y, runtime, eps=0.05, norm="linf", budget=300, **config):
    return Bandits(**config).run(model, x, y, eps=eps, norm=norm, budget=budget, runtime=runtime)


def cosine(a, b):
    return torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0).item()


def test_eg_step_keeps_v_in_the_unit_box_and_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    v = 2 * torch.rand(1000, generator=g) - 1
    for scale in (1.0, 1e3, 1e6):
        out = update_prior(v, scale * torch.randn(1000, generator=g), kappa=0.1, norm="linf")
        assert out.min() >= -1 and out.max() <= 1 and torch.isfinite(out).all()
    step = torch.randn(1000, generator=g)
    p, e = (v + 1) / 2, torch.exp(0.1 * step)
    expected = 2 * p * e / (p * e + (1 - p) / e) - 1
    torch.testing.assert_close(update_prior(v, step, 0.1, "linf"), expected)
    torch.testing.assert_close(update_prior(v, step, 0.1, "l2"), v + 0.1 * step)


def test_exploration_noise_has_std_delta_whatever_the_prior_size():
    """The documented choice: u = delta*N(0, I) without the 1/sqrt(dim v) factor."""
    g = torch.Generator().manual_seed(0)
    for shape in ((64, 3, 4, 4), (64, 3, 32, 32)):
        u = exploration_noise(torch.zeros(shape), 0.1, g)
        assert math.isclose(u.std().item(), 0.1, rel_tol=0.05)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("prior_side", [8, 4])
def test_prior_learns_the_gradient_of_a_linear_loss(norm, prior_side):
    """cos(up(v), grad L) rises over 200 steps; with prior_side 4 the gradient is tile-constant."""
    g = torch.Generator().manual_seed(0)
    x = 0.3 + 0.4 * torch.rand(1, 1, 8, 8, generator=g)
    a = upsample(torch.randn(1, 1, prior_side, prior_side, generator=g), (8, 8))
    v = torch.zeros(1, 1, prior_side, prior_side)
    eta, delta, kappa = 0.01, 0.1, 0.1
    cosines = []
    for _ in range(200):
        u = exploration_noise(v, delta, g)
        probes = [upsample(v + s * u, (8, 8)) for s in (1, -1)]
        l_plus, l_minus = [(a * (x + eta * q / q.norm())).sum(dim=(1, 2, 3)) for q in probes]
        v = update_prior(v, prior_gradient(l_plus, l_minus, u, eta, delta), kappa, norm)
        cosines.append(cosine(upsample(v, (8, 8)), a))
    early, late = sum(cosines[:20]) / 20, sum(cosines[-20:]) / 20
    assert late > early and late > 0.8


@pytest.mark.parametrize("count_clean_query", [False, True])
def test_each_step_costs_2_loss_queries_plus_one_check(yw_runtime, count_clean_query):
    model, x, y = linear_problem(n=4)
    model.bias[y] += 100.0  # unfoolable: every sample runs until its budget is spent
    clean = int(count_clean_query)
    budget = clean + 5 * 3 + 2  # the last 2 queries cannot pay for a step
    out = run(model, x, y, yw_runtime, budget=budget, loss="margin", count_clean_query=clean)
    assert (out.total_queries == clean + 15).all()
    assert (out.loss_queries == 10).all()
    assert not out.success.any()


def test_prior_size_at_least_the_image_side_means_no_data_prior(yw_runtime):
    model, x, y = linear_problem()
    full = run(model, x, y, yw_runtime, budget=60, prior_size=8)
    larger = run(model, x, y, yw_runtime, budget=60)
    assert Bandits().config.prior_size > 8
    assert torch.equal(full.x_adv, larger.x_adv)
    assert torch.equal(full.total_queries, larger.total_queries)
    v = torch.randn(2, 3, 8, 8)
    assert upsample(v, (8, 8)) is v


def test_data_prior_moves_the_image_in_tiles(yw_runtime):
    model, x, y = linear_problem(n=4)
    model.bias[y] += 100.0
    out = run(model, x, y, yw_runtime, budget=3, prior_size=4, loss="margin")  # one step
    delta = out.x_adv - x
    torch.testing.assert_close(delta.abs(), torch.full_like(delta, 0.01))
    blocks = delta.sign().unfold(2, 2, 2).unfold(3, 2, 2)  # (n, c, 4, 4, 2, 2)
    assert (blocks == blocks[..., :1, :1]).all()
