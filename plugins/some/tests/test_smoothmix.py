"""SmoothMix's adversarial search and mixup term on SOME's heads."""

from __future__ import annotations

import pytest
import torch

from yw_core.testing import tiny_classifier
from yw_plugin_some import build_multihead, smoothmix_pair, smoothmix_term
from yw_plugin_some.smoothmix import noisy_logits


def _setup(n: int = 6, m: int = 2):
    g = torch.Generator().manual_seed(0)
    net = build_multihead(tiny_classifier(), 3).train()
    x = torch.rand(n, 1, 8, 8, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    noises = 0.25 * torch.randn(m, *x.shape, generator=g)
    return net, x, y, noises


def _smoothed_nll(net, x, y, noises) -> torch.Tensor:
    with torch.no_grad():
        pbar = noisy_logits(net, x, noises).softmax(-1).mean(1)  # (H, N, C)
        return -pbar.gather(2, y.view(1, -1, 1).expand(3, -1, 1)).log().mean(0).squeeze(1)


def test_search_raises_the_smoothed_loss_stays_in_range_and_touches_no_weights():
    net, x, y, noises = _setup()
    modes = [m.training for m in net.modules()]
    start, adv = smoothmix_pair(
        net, x, y, noises, steps=4, alpha=0.5, mix_step=0, max_norm_start=0.0
    )
    assert torch.equal(start, x)
    assert adv.min() >= 0 and adv.max() <= 1
    steps = (adv - x).flatten(1).norm(dim=1)
    assert (steps > 0).all() and (steps <= 4 * 0.5 + 1e-5).all()
    assert (_smoothed_nll(net, adv, y, noises) > _smoothed_nll(net, x, y, noises)).all()
    assert all(p.grad is None for p in net.parameters())
    assert [m.training for m in net.modules()] == modes


def test_one_step_adversary_is_pulled_into_its_ball():
    net, x, y, noises = _setup()
    start, _ = smoothmix_pair(net, x, y, noises, steps=4, alpha=1.0, mix_step=1, max_norm_start=0.3)
    radius = (start - x).flatten(1).norm(dim=1)
    assert (radius > 0).all() and (radius <= 0.3 + 1e-5).all()
    assert start.min() >= 0 and start.max() <= 1


def test_mixup_term_is_a_weighted_kl_that_vanishes_at_the_target():
    """Heads that output the uniform distribution match a uniform target (mixed with uniform it
    stays uniform): KL 0. Another target gives KL > 0, scaled linearly by the weights."""
    net, x, y, noises = _setup()
    with torch.no_grad():
        for head in net.head.members:
            head.weight.zero_()
            head.bias.zero_()
    ones = torch.ones(3, len(x))
    uniform = torch.full((len(x), 4), 0.25)
    peaked = torch.tensor([0.7, 0.1, 0.1, 0.1]).expand(len(x), 4)

    def term(target, weights):
        g = torch.Generator().manual_seed(0)
        return float(smoothmix_term(net, x, x, noises, target, weights, g).detach())

    assert term(uniform, ones) < 1e-6
    assert term(peaked, ones) > 0.05
    assert term(peaked, 0.5 * ones) == pytest.approx(term(peaked, ones) / 2)
