"""ARWP's adaptive noise (spec §5 (g)): eta = 0 is RWP's noise, the std ratio between filters
follows F, F is the EMA of squared perturbed gradients, and the sigma ramp hits both ends."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from yw_plugin_marwp import ARWP, FisherScale, ramped_sigma
from yw_plugin_rwp import FilterNoise


def layer() -> nn.Linear:
    """4 filters of 500 weights, all of norm 1, and a bias of 4."""
    torch.manual_seed(0)
    lin = nn.Linear(500, 4)
    with torch.no_grad():
        lin.weight.div_(lin.weight.norm(dim=1, keepdim=True))
    return lin


def batches(n: int, size: int = 16):
    """n batches of 500-d inputs for `layer()`."""
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(size, 500, generator=g), torch.randint(0, 4, (size,), generator=g))
        for _ in range(n)
    ]


def loss_fn(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


class Recording(torch.optim.SGD):
    """SGD with lr 0 that records the weights and gradients it is asked to step from."""

    def __init__(self, params):
        super().__init__(params, lr=0.0)
        self.weights, self.grads = [], []

    def step(self, closure=None):
        params = [p for g in self.param_groups for p in g["params"]]
        self.weights.append([p.detach().clone() for p in params])
        self.grads.append([p.grad.clone() for p in params])
        return super().step(closure)


def test_eta_zero_gives_rwps_noise_whatever_f_is():
    lin = layer()
    rwp = FilterNoise(lin.parameters(), torch.Generator().manual_seed(0))
    arwp = FilterNoise(lin.parameters(), torch.Generator().manual_seed(0))
    fisher = FisherScale(arwp.layout, eta=0.0, beta=0.9)
    for f in fisher.views():
        f.uniform_(0, 50)
    for a, b in zip(rwp.draw(0.01), arwp.draw(0.01, fisher.scale())):
        assert torch.equal(a, b)


def test_std_ratio_between_filters_follows_the_fisher_sums():
    """Filters of equal norm with S = 0, 1, 4, 20: std ratio sqrt((1 + eta S_b) / (1 + eta S_a))."""
    lin, eta, sigma = layer(), 0.5, 0.01
    noise = FilterNoise(lin.parameters(), torch.Generator().manual_seed(0))
    fisher = FisherScale(noise.layout, eta=eta, beta=0.9)
    sums = torch.tensor([0.0, 1.0, 4.0, 20.0])
    fisher.views()[0].copy_((sums / 500).view(4, 1).expand(4, 500))
    fisher.views()[1].copy_(torch.tensor([0.0, 1.0, 3.0, 8.0]))  # bias: element-wise
    draws = torch.stack([noise.draw(sigma, fisher.scale())[0].clone() for _ in range(100)])
    std = draws.transpose(0, 1).reshape(4, -1).std(dim=1)  # 50,000 samples per filter
    for a in range(4):
        for b in range(4):
            want = math.sqrt((1 + eta * sums[b]) / (1 + eta * sums[a]))
            assert std[a] / std[b] == pytest.approx(want, rel=0.03)
    assert std[0] == pytest.approx(sigma, rel=0.02)  # S = 0: plain RWP, sigma * ||W_i|| = sigma
    bias_scale = fisher.scale()[[g[3] for g in noise.layout.groups].index(True)]
    assert torch.allclose(bias_scale.flatten(), torch.rsqrt(1 + eta * torch.tensor([0.0, 1, 3, 8])))


def test_arwp_step_uses_the_perturbed_gradient_from_restored_weights_and_builds_f(yw_runtime):
    """Update 1 is plain RWP at sigma0 (F = 0); F is then g1^2, then beta g1^2 + g2^2, with the
    raw gradients at the perturbed weights."""
    lin = layer()
    w = [p.detach().clone() for p in lin.parameters()]
    opt = Recording(lin.parameters())
    method = ARWP(sigma=0.05, inc=0.0, eta=0.1, beta=0.9)
    step = method.attach(lin, opt, runtime=yw_runtime)
    assert step.batches_per_update == 1
    b1, b2 = batches(2)
    step.step(b1, loss_fn)
    eps = FilterNoise(layer().parameters(), torch.Generator().manual_seed(0)).draw(0.05)
    probe = layer()
    with torch.no_grad():
        for p, e in zip(probe.parameters(), eps):
            p.add_(e)
    g1 = torch.autograd.grad(loss_fn(probe, b1), list(probe.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(opt.weights[0], w)), "stepped from w + eps"
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(opt.grads[0], g1))
    assert all(torch.equal(f, g * g) for f, g in zip(step.fisher.views(), opt.grads[0]))
    step.step(b2, loss_fn)
    for f, a, b in zip(step.fisher.views(), opt.grads[0], opt.grads[1]):
        assert torch.allclose(f, 0.9 * a * a + b * b, rtol=1e-6, atol=0)


def test_sigma_ramp_hits_both_ends():
    assert ramped_sigma(0.001, 10, 0.0) == 0.001
    assert ramped_sigma(0.001, 10, 1.0) == pytest.approx(0.011, rel=1e-12)
    assert ramped_sigma(0.001, 10, 0.5) == pytest.approx(0.006, rel=1e-12)
    values = [ramped_sigma(0.001, 10, t / 10) for t in range(11)]
    assert values == sorted(values) and len(set(values)) == 11


def test_arwp_draws_each_update_at_the_ramped_sigma(yw_runtime):
    lin = layer()
    step = ARWP(sigma=0.002, inc=4.0).attach(lin, Recording(lin.parameters()), runtime=yw_runtime)
    used = []
    perturb = step.noise.perturb
    step.noise.perturb = lambda gamma, scale=None: (used.append(gamma), perturb(gamma, scale))
    step.begin(5)
    for b in batches(5):
        step.step(b, loss_fn)
    assert used == [ramped_sigma(0.002, 4.0, k / 5) for k in range(5)]
    assert used[0] == 0.002 and step.sigma_at(5) == pytest.approx(0.002 * 5)


def test_ramp_without_begin_is_a_clear_error(yw_runtime):
    lin = layer()
    step = ARWP().attach(lin, Recording(lin.parameters()), runtime=yw_runtime)
    with pytest.raises(ValueError, match="begin"):
        step.step(batches(1)[0], loss_fn)


def test_fisher_scale_rejects_bad_eta_and_beta():
    layout = FilterNoise([torch.zeros(2, 2)], torch.Generator()).layout
    with pytest.raises(ValueError, match="eta"):
        FisherScale(layout, eta=-1.0, beta=0.9)
    with pytest.raises(ValueError, match="beta"):
        FisherScale(layout, eta=0.1, beta=1.5)
