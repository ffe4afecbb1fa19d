"""FGSM, FGSM-RS and PGD: query accounting, eps-ball, and the linear ground truth of spec §8."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from yw_plugin_attacks.whitebox import FGSM, FGSMRS, PGD

ATTACKS = [FGSM, FGSMRS, PGD]
EPS = {"linf": 0.02, "l2": 0.2}  # small: x in [0.3, 0.7], so clipping to [0, 1] never binds


def linear_model(classes: int = 10, d: int = 192, seed: int = 0) -> nn.Module:
    """z = W flatten(x) + b with random W: a model every gradient attack can fool."""
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(d, classes))
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(classes, d, generator=g) * 0.1)
        model[1].bias.copy_(torch.randn(classes, generator=g) * 0.1)
    return model.eval()


class Binary(nn.Module):
    """Binary logistic model with logits [0, w.x + b]: the exact L-inf / L2 robustness is known."""

    def __init__(self, d: int = 64, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(d, generator=g))
        self.b = nn.Parameter(torch.tensor(-0.5 * self.w.sum().item()))  # centres x = 0.5

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w + self.b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.score(x)
        return torch.stack([torch.zeros_like(s), s], 1)


def data(n: int = 64, seed: int = 0, shape=(3, 8, 8)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.3 + 0.4 * torch.rand(n, *shape, generator=g)


def labelled(model: nn.Module, x: torch.Tensor, wrong: int = 4) -> torch.Tensor:
    """The model's own labels, with the first `wrong` ones changed (initially misclassified)."""
    with torch.no_grad():
        y = model(x).argmax(1)
    classes = model(x[:1]).shape[1]
    y[:wrong] = (y[:wrong] + 1) % classes
    return y


def run(attack, model, x, y, norm="linf", budget=100, eps=None, runtime=None):
    from yw_core.runtime import Runtime

    runtime = runtime or Runtime(device="cpu", seed=0, distributed=False)
    eps = EPS[norm] if eps is None else eps
    return attack.run(model, x, y, eps=eps, norm=norm, budget=budget, runtime=runtime)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("cls", ATTACKS)
@pytest.mark.parametrize("budget", [1, 3, 100])
def test_budget_ball_range_and_fooled_inputs(cls, norm, budget, yw_runtime):
    model = linear_model()
    x = data()
    y = labelled(model, x)
    r = run(cls(restarts=2) if cls is PGD else cls(), model, x, y, norm, budget, runtime=yw_runtime)
    assert (r.total_queries <= budget).all()
    assert (r.loss_queries <= r.total_queries).all()
    delta = (r.x_adv - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert (size <= EPS[norm] + 1e-6).all()
    assert r.x_adv.min() >= 0 and r.x_adv.max() <= 1
    # initially misclassified: success without a query
    assert r.success[:4].all() and (r.total_queries[:4] == 0).all()
    # every reported success really is misclassified at its x_adv
    with torch.no_grad():
        pred = model(r.x_adv).argmax(1)
    assert (pred[r.success] != y[r.success]).all()
    assert (pred[~r.success] == y[~r.success]).all()


def test_query_counts_per_step(yw_runtime):
    """A step is 1 loss query (forward+backward); each restart's last iterate is 1 check query."""
    model = linear_model()
    x = data()
    y = labelled(model, x, wrong=0)
    for attack, steps, restarts in [
        (FGSM(), 1, 1),
        (FGSMRS(), 1, 1),
        (PGD(steps=5, restarts=3), 5, 3),
    ]:
        r = run(attack, model, x, y, budget=100, runtime=yw_runtime)
        assert r.success.any() and (~r.success).any()
        assert (r.total_queries[~r.success] == restarts * (steps + 1)).all()
        assert (r.total_queries[r.success] >= 1).all()
        # of the first T forwards, every (steps + 1)-th was a check, the others gradient queries
        checks = r.total_queries // (steps + 1)
        assert torch.equal(r.loss_queries, r.total_queries - checks)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("attack", [FGSM(), FGSMRS(), PGD(steps=4, restarts=3)], ids=repr)
def test_smaller_budget_is_a_prefix(attack, norm):
    """Same seed: what is fooled within Q queries is fooled the same way with a larger budget."""
    model = linear_model()
    x = data()
    y = labelled(model, x)
    small = run(attack, model, x, y, norm, budget=4)
    large = run(attack, model, x, y, norm, budget=100)
    assert small.success.any()
    assert (large.success[small.success]).all()
    assert torch.equal(small.total_queries[small.success], large.total_queries[small.success])
    assert torch.equal(small.x_adv[small.success], large.x_adv[small.success])
    # and the budget is the only reason the small run missed the others
    missed = large.success & ~small.success
    assert (large.total_queries[missed] > 4).all()


def exact_robust(model: Binary, x, y, eps, norm):
    """Robust iff correctly classified and |w.x + b| > eps * ||w||_dual (no box clipping)."""
    with torch.no_grad():
        s = model.score(x)
    dual = model.w.abs().sum() if norm == "linf" else model.w.norm()
    correct = (s > 0).long() == y
    return correct & (s.abs() > eps * dual)


def binary_setup():
    model = Binary()
    x = data(400, seed=1, shape=(1, 8, 8))
    with torch.no_grad():
        s = model.score(x)
    g = torch.Generator().manual_seed(2)
    y = ((s + 0.5 * torch.randn(len(x), generator=g)) > 0).long()  # some clean errors
    return model, x, y


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_fgsm_is_exact_on_a_binary_linear_model(norm):
    model, x, y = binary_setup()
    eps = {"linf": 0.01, "l2": 0.1}[norm]
    exact = exact_robust(model, x, y, eps, norm)
    clean = (model(x).argmax(1) == y).float().mean().item()
    assert 0.2 < exact.float().mean() < clean - 0.2  # the test is not vacuous
    r = run(FGSM(), model, x, y, norm, budget=2, eps=eps)
    assert torch.equal(~r.success, exact)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_lies_between_exact_and_clean(norm):
    model, x, y = binary_setup()
    eps = {"linf": 0.01, "l2": 0.1}[norm]
    exact = exact_robust(model, x, y, eps, norm).float().mean().item()
    clean = (model(x).argmax(1) == y).float().mean().item()
    robust = 1 - run(PGD(), model, x, y, norm, budget=11, eps=eps).success.float().mean().item()
    assert exact <= robust <= clean
    assert robust < clean


@pytest.mark.parametrize("eps", [0.01, 0.03])
def test_fgsm_rs_stays_in_ball_and_steps_relative_to_eps(eps):
    """delta = clip_eps(delta0 + 1.25 eps sign(g)): on a linear model every coordinate of a
    stepped sample moves at least 0.25 eps in the adversarial direction, at most eps."""
    model, x, y = binary_setup()
    r = run(FGSMRS(), model, x, y, "linf", budget=2, eps=eps)
    delta = (r.x_adv - x).flatten(1)
    assert delta.abs().max() <= eps + 1e-6
    stepped = r.total_queries == 2
    assert stepped.sum() > 100
    direction = (2 * y[stepped, None] - 1) * -model.w.detach().sign()  # lowers the true logit
    moved = (delta[stepped] * direction).min()
    assert moved >= 0.25 * eps - 1e-6


def test_restarts_never_lower_success(yw_runtime):
    """Restart 1 is the single-restart run (same seed); later restarts only add successes."""
    model = linear_model()
    x = data(128)
    y = labelled(model, x, wrong=0)
    one = run(PGD(steps=2, restarts=1), model, x, y, eps=0.02, runtime=yw_runtime)
    four = run(PGD(steps=2, restarts=4), model, x, y, eps=0.02, runtime=yw_runtime)
    assert (four.success[one.success]).all()
    assert four.success.sum() > one.success.sum()


def test_unfooled_keep_restart_with_highest_final_ce():
    model = linear_model()
    x = data()
    y = labelled(model, x, wrong=0)
    r = run(PGD(steps=1, restarts=3), model, x, y, eps=0.005)
    assert (~r.success).any()
    # the chosen x_adv of an unfooled sample is no worse than the first restart's final iterate
    first = run(PGD(steps=1, restarts=1), model, x, y, eps=0.005)
    keep = ~r.success & ~first.success
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        a = ce(model(r.x_adv[keep]), y[keep], reduction="none")
        b = ce(model(first.x_adv[keep]), y[keep], reduction="none")
    assert (a >= b - 1e-6).all()
    assert (a > b).any()


def test_model_mode_and_parameter_grads_are_left_alone(yw_runtime):
    model = linear_model().train()
    x = data(8)
    run(PGD(), model, x, labelled(model, x, wrong=0), runtime=yw_runtime)
    assert model.training
    assert all(p.grad is None for p in model.parameters())
