"""SimBA / SimBA-DCT (spec §2): the DCT basis, the step's query charging, and the run's contract."""

import pytest
import torch
from torch import nn

from yw_core.runtime import Runtime
from yw_core.testing import linear_model, uniform_inputs
from yw_plugin_attacks.queries import QueryOracle, true_prob
from yw_plugin_attacks.simba import (
    SimBA,
    basis_image,
    coordinate_order,
    dct2,
    dct_matrix,
    idct2,
    simba_step,
)


def runtime(seed: int = 0) -> Runtime:
    return Runtime(device="cpu", seed=seed, distributed=False)


def predicted(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1)


# ------------------------------------------------------------------ the DCT basis


def test_dct_is_orthonormal_and_inverted_by_idct():
    for n in (1, 5, 8, 32):
        d = dct_matrix(n, dtype=torch.float64)
        torch.testing.assert_close(d @ d.T, torch.eye(n, dtype=torch.float64))
    x = torch.rand(4, 3, 8, 6, dtype=torch.float64)
    torch.testing.assert_close(idct2(dct2(x)), x)
    torch.testing.assert_close(dct2(idct2(x)), x)


def test_dct_matches_scipy_orthonormal_dct_ii():
    fft = pytest.importorskip("scipy.fft")
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    expected = fft.dctn(x.numpy(), type=2, axes=(-2, -1), norm="ortho")
    torch.testing.assert_close(dct2(x), torch.from_numpy(expected))


def test_basis_image_is_the_idct_of_a_unit_coordinate():
    like = torch.zeros(3, 8, 8, dtype=torch.float64)
    d = dct_matrix(8, dtype=torch.float64)
    for k in (0, 7, 8, 64 + 19, 191):
        impulse = torch.zeros(192, dtype=torch.float64)
        impulse[k] = 1.0
        q = basis_image(k, like, d, d)
        torch.testing.assert_close(q, idct2(impulse.view(3, 8, 8)))
        assert q.norm().item() == pytest.approx(1.0)
        pixel = basis_image(k, like)
        assert pixel.flatten()[k] == 1 and pixel.sum() == 1


def test_rand_order_is_a_permutation_of_the_low_frequencies():
    order = coordinate_order((3, 8, 8), 4, "rand", 7, torch.Generator().manual_seed(0))
    assert len(order) == 3 * 4 * 4 and len(set(order.tolist())) == len(order)
    u, v = (order // 8) % 8, order % 8
    assert (u < 4).all() and (v < 4).all()


def test_strided_order_covers_everything_block_first_then_bands():
    order = coordinate_order((3, 8, 8), 3, "strided", 2, torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(192))
    far = torch.maximum((order // 8) % 8, order % 8)
    band = torch.where(far < 3, 0, 1 + (far - 3) // 2)
    assert (band[: 3 * 9] == 0).all()
    assert (band[1:] >= band[:-1]).all()


# ------------------------------------------------------------------ one iteration


@pytest.mark.parametrize("basis", ["dct", "pixel"])
def test_step_charges_one_or_two_queries_and_accepted_steps_add_up(basis):
    """With an orthonormal basis and no clipping, ||delta||_2 = step * sqrt(#accepted); a step costs
    1 query when the left try is kept, else 2; the true-class prob never rises."""
    model, x = linear_model(scale=0.2), uniform_inputs(32)
    y = predicted(model, x)
    step, iterations = 0.05, 60
    oracle = QueryOracle(model, x, y, budget=10_000)
    d = dct_matrix(8) if basis == "dct" else None
    order = coordinate_order((3, 8, 8), 8, "rand", 7, torch.Generator().manual_seed(0))
    delta = torch.zeros_like(x)
    prob = true_prob(oracle.clean_logits, y)
    accepted = torch.zeros(len(x))
    with torch.no_grad():
        for k in order[:iterations].tolist():
            before_q, before_p = oracle.total_queries.clone(), prob.clone()
            live = torch.zeros(len(x), dtype=torch.bool)
            live[oracle.live()] = True
            taken = simba_step(oracle, delta, prob, basis_image(k, x[0], d, d), step, 10.0, "l2")
            spent = oracle.total_queries - before_q
            assert (spent[~live] == 0).all()
            assert (spent[live & (taken == -1)] == 1).all()
            assert (spent[live & (taken == 1)] == 2).all()
            unfooled = live & (taken == 0) & ~oracle.success
            assert (spent[unfooled] == 2).all()
            assert (prob <= before_p).all()
            assert (prob[taken != 0] < before_p[taken != 0]).all()
            accepted += taken != 0
    assert accepted.min() > 0 and (accepted < iterations).any()
    assert ((x + delta).min() > 0) and ((x + delta).max() < 1), "no clipping in this test"
    torch.testing.assert_close(delta.flatten(1).norm(dim=1), step * accepted.sqrt())
    torch.testing.assert_close(oracle.loss_queries, oracle.total_queries)
    # the kept prob is that of x + delta for samples not fooled
    alive = ~oracle.success
    with torch.no_grad():
        torch.testing.assert_close(
            true_prob(model(x[alive] + delta[alive]), y[alive]), prob[alive], atol=1e-6, rtol=0
        )


def test_step_never_exceeds_the_budget():
    model, x = linear_model(scale=0.2), uniform_inputs(16)
    y = predicted(model, x)
    oracle = QueryOracle(model, x, y, budget=3)
    delta, prob = torch.zeros_like(x), true_prob(oracle.clean_logits, y)
    d = dct_matrix(8)
    with torch.no_grad():
        for k in range(6):
            simba_step(oracle, delta, prob, basis_image(k, x[0], d, d), 0.2, 10.0, "l2")
    assert (oracle.total_queries <= 3).all()
    assert oracle.live().numel() == 0


# ------------------------------------------------------------------ the attack


@pytest.mark.parametrize("norm,eps", [("linf", 0.03), ("l2", 0.3)])
def test_smaller_budget_is_a_prefix_and_success_rises(norm, eps):
    model, x = linear_model(), uniform_inputs(48)
    y = predicted(model, x)
    budgets = [1, 2, 3, 5, 10, 20, 40, 80, 300]
    runs = [
        SimBA().run(model, x, y, eps=eps, norm=norm, budget=q, runtime=runtime()) for q in budgets
    ]
    longest = runs[-1]
    for q, run in zip(budgets, runs):
        within = longest.success & (longest.total_queries <= q)
        assert torch.equal(run.success, within), q
        assert torch.equal(run.total_queries[within], longest.total_queries[within])
        assert torch.equal(run.x_adv[within], longest.x_adv[within])
    rates = torch.tensor([run.success.float().mean() for run in runs])
    assert (rates[1:] >= rates[:-1]).all() and rates[-1] > rates[0]


def test_pixel_basis_and_strided_order_run_within_the_contract():
    model, x = linear_model(), uniform_inputs(16)
    y = predicted(model, x)
    for config in ({"basis": "pixel"}, {"order": "strided", "freq_dims": 4, "stride": 2}):
        result = SimBA(**config).run(model, x, y, eps=0.03, budget=40, runtime=runtime())
        assert (result.total_queries <= 40).all()
        assert (result.x_adv - x).abs().max() <= 0.03 + 1e-6
        assert result.success.any()


def test_count_clean_query_charges_one_more():
    model, x = linear_model(), uniform_inputs(32)
    y = predicted(model, x)
    plain = SimBA().run(model, x, y, eps=0.03, budget=20, runtime=runtime())
    counted = SimBA(count_clean_query=True).run(model, x, y, eps=0.03, budget=21, runtime=runtime())
    assert torch.equal(counted.total_queries, plain.total_queries + 1)
    assert torch.equal(counted.success, plain.success)
