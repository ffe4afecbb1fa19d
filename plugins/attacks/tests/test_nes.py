"""NES: the antithetic estimator, query arithmetic, the step, and the shared attack contract."""

import pytest
import torch

from yw_core.testing import linear_problem
from yw_plugin_attacks.nes import NES, nes_estimate
from yw_plugin_attacks.queries import margin


def run(model, x, y, runtime, eps=0.05, norm="linf", budget=400, **config):
    return NES(**config).run(model, x, y, eps=eps, norm=norm, budget=budget, runtime=runtime)


def test_antithetic_estimator_is_unbiased_for_a_linear_loss():
    g = torch.Generator().manual_seed(0)
    d, pairs, sigma = 64, 10_000, 0.01
    a, x = torch.randn(d, generator=g), torch.rand(d, generator=g)
    u = torch.randn(1, pairs, d, generator=g)
    estimate = nes_estimate((x + sigma * u) @ a, (x - sigma * u) @ a, u, sigma)[0]
    assert torch.nn.functional.cosine_similarity(estimate, a, dim=0) > 0.98


@pytest.mark.parametrize("count_clean_query", [False, True])
def test_each_step_costs_2q_loss_queries_plus_one_check(yw_runtime, count_clean_query):
    model, x, y = linear_problem(n=4)
    model.bias[y] += 100.0  # unfoolable: every sample runs until its budget is spent
    clean = int(count_clean_query)
    q, steps = 3, 4
    budget = clean + steps * (2 * q + 1) + 2 * q  # the last 2q queries cannot pay for a step
    out = run(model, x, y, yw_runtime, budget=budget, q=q, loss="margin", count_clean_query=clean)
    assert (out.total_queries == clean + steps * (2 * q + 1)).all()
    assert (out.loss_queries == steps * 2 * q).all()
    assert not out.success.any()


@pytest.mark.parametrize("norm,eps", [("linf", 0.05), ("l2", 0.5)])
def test_one_step_has_the_configured_size_and_lowers_the_margin(yw_runtime, norm, eps):
    model, x, y = linear_problem(n=8)
    model.bias[y] += 100.0
    out = run(model, x, y, yw_runtime, eps=eps, norm=norm, budget=41, loss="margin")
    delta = (out.x_adv - x).flatten(1)
    if norm == "linf":
        torch.testing.assert_close(delta.abs(), torch.full_like(delta, 2 / 255))
    else:
        torch.testing.assert_close(delta.norm(dim=1), torch.full((8,), 0.25))
    assert margin(model(out.x_adv), y).mean() < margin(model(x), y).mean()
