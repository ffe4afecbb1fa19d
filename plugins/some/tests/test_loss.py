"""Spec (g) invariants of SOME's loss: the threshold schedule, the self-paced weights, circular
teaching, the cosine constraint and the Consistency term."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from yw_plugin_some import (
    circular_ce,
    consistency_term,
    cosine_penalty,
    self_paced_weights,
    smoothed_losses,
    threshold,
)


@pytest.mark.parametrize("epochs, classes, last", [(150, 10, 1.2), (5, 10, 1.6), (2, 100, 0.8)])
def test_schedule_hits_both_endpoints_and_is_linear_in_ten_to_minus_lambda(epochs, classes, last):
    lams = [threshold(e, epochs, classes, last) for e in range(1, epochs + 1)]
    assert lams[0] == pytest.approx(math.log(classes), abs=1e-12)
    assert lams[-1] == pytest.approx(last, abs=1e-12)
    powers = [10.0**-lam for lam in lams]
    steps = [b - a for a, b in zip(powers, powers[1:])]
    assert steps == pytest.approx([steps[0]] * len(steps), rel=1e-9)


def test_one_epoch_schedule_stays_at_ln_c_and_bad_epochs_fail():
    assert threshold(1, 1, 10, 1.2) == pytest.approx(math.log(10))
    with pytest.raises(ValueError, match="epoch must lie in"):
        threshold(0, 5, 10, 1.2)
    with pytest.raises(ValueError, match="num_classes"):
        threshold(1, 5, 1, 1.2)


def test_weights_lie_in_0_1_easy_samples_get_1_and_ties_count_as_easy():
    g = torch.Generator().manual_seed(0)
    losses = 4 * torch.rand(3, 200, generator=g)
    lam = 1.2
    w = self_paced_weights(losses, lam)
    assert ((w > 0) & (w <= 1)).all()
    assert (w[losses <= lam] == 1).all()
    assert self_paced_weights(torch.full((3, 1), lam), lam).eq(1).all()
    hard = losses > lam
    expected = (1 + math.exp(-lam)) / (1 + torch.exp(losses.roll(-1, 0) - lam))
    torch.testing.assert_close(w[hard], expected[hard])


def test_hard_samples_are_down_weighted_by_the_students_loss():
    """Head 0 finds the sample hard; its weight (used on head 1) falls as head 1's loss grows."""
    lam = 1.0
    student = torch.linspace(0.0, 8.0, 50)
    losses = torch.stack([torch.full_like(student, 3.0), student, torch.zeros_like(student)])
    w = self_paced_weights(losses, lam)[0]
    assert w[0] == pytest.approx(1.0)  # a student with loss 0 keeps the full weight
    assert (w[1:] < w[:-1]).all()
    _, v = circular_ce(losses, lam)
    torch.testing.assert_close(v[1], w)  # head 1 is weighted by head 0's weights


def test_circular_ce_is_the_mean_of_teacher_weighted_losses_and_no_grad_flows_to_weights():
    losses = torch.tensor([[0.5, 3.0], [2.0, 0.1], [4.0, 2.5]], requires_grad=True)
    loss, v = circular_ce(losses, 1.0)
    w = self_paced_weights(losses, 1.0)
    torch.testing.assert_close(v, w[[2, 0, 1]])
    torch.testing.assert_close(loss, (v * losses).mean())
    loss.backward()
    torch.testing.assert_close(losses.grad, v / losses.numel())


def test_smoothed_losses_average_the_noise_copies():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 3, 5, 4, generator=g)
    y = torch.randint(0, 4, (5,), generator=g)
    ce = nn.functional.cross_entropy
    expected = torch.stack(
        [
            torch.stack([ce(logits[h, j], y, reduction="none") for j in range(3)]).mean(0)
            for h in range(2)
        ]
    )
    torch.testing.assert_close(smoothed_losses(logits, y), expected)


def _heads(n: int, seed: int = 0) -> list[nn.Module]:
    torch.manual_seed(seed)
    return [nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)) for _ in range(n)]


def _value(t: torch.Tensor) -> float:
    return float(t.detach())


def test_cosine_penalty_by_hand():
    a, b = nn.Linear(2, 1, bias=False), nn.Linear(2, 1, bias=False)
    c = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        a.weight.copy_(torch.tensor([[1.0, 0.0]]))
        b.weight.copy_(torch.tensor([[0.0, 3.0]]))
        c.weight.copy_(torch.tensor([[2.0, 2.0]]))
    assert _value(cosine_penalty([a, b])) == pytest.approx(0.0)
    assert _value(cosine_penalty([a, c])) == pytest.approx(0.5)
    assert _value(cosine_penalty([a, b, c])) == pytest.approx(1.0)
    assert _value(cosine_penalty([a])) == 0.0


def test_pairwise_cosine_falls_when_descending_the_penalty():
    """Heads that start as near-copies are pushed apart by the constraint's gradient."""
    base, *heads = _heads(4)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for head in heads:
            for p, q in zip(head.parameters(), base.parameters()):
                p.copy_(q + 0.01 * torch.randn(q.shape, generator=g))
    params = [p for head in heads for p in head.parameters()]
    opt = torch.optim.SGD(params, lr=0.5)
    start = _value(cosine_penalty(heads))
    assert start > 2.9  # three pairs, each cos^2 close to 1
    for _ in range(50):
        opt.zero_grad()
        cosine_penalty(heads).backward()
        opt.step()
    assert _value(cosine_penalty(heads)) < 0.1 * start


def test_consistency_term_vanishes_without_kl_and_entropy_and_weights_it():
    confident = torch.tensor([[[[30.0, 0.0, 0.0]]]]).expand(2, 3, 1, 3)  # all copies agree
    ones = torch.ones(2, 1)
    assert float(consistency_term(confident, ones, 20.0, 0.5)) == pytest.approx(0.0, abs=1e-6)
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3, 4, 3, generator=g)
    full = consistency_term(logits, torch.ones(2, 4), 20.0, 0.5)
    half = consistency_term(logits, torch.full((2, 4), 0.5), 20.0, 0.5)
    assert float(full) > 0
    torch.testing.assert_close(half, full / 2)
