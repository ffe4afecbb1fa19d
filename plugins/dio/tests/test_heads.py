"""OrthoHeads: the paths, L_o and L_d against hand-computed values (spec §9 (b), (g))."""

from __future__ import annotations

import pytest
import torch

from yw_plugin_dio import OrthoHeads, margin_loss


def heads_with(weight: torch.Tensor) -> OrthoHeads:
    heads = OrthoHeads(weight.shape[2], weight.shape[1], weight.shape[0])
    with torch.no_grad():
        heads.weight.copy_(weight)
    return heads


def test_paths_are_bias_free_linear_maps_of_the_embedding():
    heads = OrthoHeads(6, 4, 3, generator=torch.Generator().manual_seed(0))
    e = torch.randn(5, 6, generator=torch.Generator().manual_seed(1))
    logits = heads(e)
    assert logits.shape == (3, 5, 4)
    for i in range(3):
        assert torch.allclose(logits[i], e @ heads.weight[i].T, atol=1e-6)
        assert torch.allclose(heads(e, i), logits[i], atol=1e-6)


def test_ortho_loss_is_the_unnormalised_sum_over_pairs_of_squared_inner_products():
    heads = OrthoHeads(6, 4, 5, generator=torch.Generator().manual_seed(0))
    w = heads.weight.detach()
    expected = sum(float((w[i] * w[j]).sum()) ** 2 for i in range(5) for j in range(i + 1, 5))
    assert heads.ortho_loss().item() == pytest.approx(expected, rel=1e-5)
    # unnormalised: scaling every path by 2 scales L_o by 2^4
    doubled = heads_with(2 * w)
    assert doubled.ortho_loss().item() == pytest.approx(16 * expected, rel=1e-5)


def test_ortho_loss_is_zero_for_orthogonal_paths_and_cosine_says_so():
    weight = torch.zeros(3, 2, 6)
    for i in range(3):  # path i lives on coordinates 2i and 2i+1 only
        weight[i, 0, 2 * i] = 1.0
        weight[i, 1, 2 * i + 1] = -2.0
    heads = heads_with(weight)
    assert heads.ortho_loss().item() == 0.0
    cos = heads.pairwise_cosine()
    assert torch.allclose(cos, torch.eye(3))


def hand_example():
    """One path with rows w0 = (1, 0), w1 = (0, 1), w2 = (-1, 0) and two samples of class 0:
    e = (0.5, 0.4) gives z = (0.5, 0.4, -0.5), correct, nearest distance |0.5 - 0.4| / 1 = 0.1;
    e = (0.1, 0.9) gives z = (0.1, 0.9, -0.1), misclassified, so it is left out."""
    weight = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])
    e = torch.tensor([[0.5, 0.4], [0.1, 0.9]])
    return heads_with(weight), e, torch.tensor([0, 0])


def test_margin_loss_matches_the_hand_computed_value():
    heads, e, y = hand_example()
    assert heads.margin_loss(heads(e), y, tau=0.2).item() == pytest.approx(0.1, abs=1e-6)


def test_margin_loss_divides_by_the_other_class_row_norm_and_sums_over_paths():
    heads, e, y = hand_example()
    # a second path equal to the first scaled by 3: logits and ||w_k|| scale together, so the
    # distances (and its term) are the same, and L_d is the sum of the two paths' terms
    two = heads_with(torch.cat([heads.weight.detach(), 3 * heads.weight.detach()]))
    assert two.margin_loss(two(e), y, tau=0.2).item() == pytest.approx(0.2, abs=1e-6)
    # the denominator is ||w_k|| of the other class, not ||w_y - w_k||: doubling w_y alone
    # changes z_y to 1.0 and the distances to 0.6 and 1.5, so the hinge is off at tau = 0.5
    w = heads.weight.detach().clone()
    w[0, 0] *= 2
    assert margin_loss(torch.einsum("lcd,nd->lnc", w, e), y, w, 0.5).item() == 0.0
    assert margin_loss(torch.einsum("lcd,nd->lnc", w, e), y, w, 0.7).item() == pytest.approx(
        0.1, abs=1e-6
    )


def test_margin_loss_is_zero_when_every_margin_reaches_tau():
    g = torch.Generator().manual_seed(0)
    heads = OrthoHeads(8, 5, 4, generator=g)
    e, y = torch.randn(64, 8, generator=g), torch.randint(0, 5, (64,), generator=g)
    with torch.no_grad():
        logits = heads(e)
        distance = (logits.gather(2, y.view(1, -1, 1).expand(4, -1, 1)) - logits).abs()
        distance = distance / heads.weight.norm(dim=2).unsqueeze(1)
        distance.scatter_(2, y.view(1, -1, 1).expand(4, -1, 1), float("inf"))
        correct = logits.argmax(2) == y
        smallest = distance.amin(2)[correct].min().item()
    assert correct.any()
    assert heads.margin_loss(logits, y, tau=smallest).item() == 0.0
    assert heads.margin_loss(logits, y, tau=smallest + 1e-3).item() > 0.0


def test_a_path_that_gets_every_sample_wrong_adds_nothing():
    heads, e, _ = hand_example()  # argmax is class 0 for sample 0 and class 1 for sample 1
    wrong = torch.tensor([2, 2])
    assert heads.margin_loss(heads(e), wrong, tau=10.0).item() == 0.0
