"""Filter-wise noise (spec §3 (b)1, (g)): its std per filter, its seeding, the exact restore."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from yw_plugin_rwp import FilterLayout, FilterNoise


def layers(seed: int = 0) -> nn.Module:
    """A conv whose filters have norms 0.1 to 12.8, a bias, and a linear layer."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8, 5))
    with torch.no_grad():
        w = model[0].weight
        w.mul_(
            (0.1 * 2.0 ** torch.arange(8.0)).view(8, 1, 1, 1)
            / w.flatten(1).norm(dim=1).view(8, 1, 1, 1)
        )
        model[0].bias.copy_(torch.linspace(-1, 1, 8))
    return model


def draws(noise: FilterNoise, gamma: float, n: int) -> list[torch.Tensor]:
    """n draws stacked per parameter: one (n, *shape) tensor per parameter."""
    out = [[] for _ in noise.params]
    for _ in range(n):
        for acc, z in zip(out, noise.draw(gamma)):
            acc.append(z.clone())
    return [torch.stack(a) for a in out]


def test_per_filter_std_is_gamma_times_the_filter_norm():
    model = layers()
    gamma = 0.01
    noise = FilterNoise(model.parameters(), torch.Generator().manual_seed(0))
    conv_w, conv_b, lin_w, _ = draws(noise, gamma, 400)
    for p, z in ((model[0].weight, conv_w), (model[2].weight, lin_w)):
        rows = p.detach().flatten(1).norm(dim=1)
        samples = z.transpose(0, 1).flatten(1)  # per filter: 400 draws x filter size
        std, mean = samples.std(dim=1), samples.mean(dim=1)
        assert torch.allclose(std / rows, torch.full_like(rows, gamma), rtol=0.03)
        assert (mean.abs() < 5 * gamma * rows / samples.shape[1] ** 0.5).all()
    # a bias is one vector: std gamma * (||b|| + 1e-16), the same for every element
    b = model[0].bias.detach()
    assert torch.allclose(conv_b.std(), gamma * b.norm(), rtol=0.05)
    assert torch.allclose(conv_b.std(dim=0), torch.full_like(b, gamma * b.norm().item()), rtol=0.15)


def test_a_zero_filter_gets_no_noise():
    w = torch.randn(3, 4)
    w[1] = 0
    (z,) = FilterNoise([w], torch.Generator().manual_seed(0)).draw(0.5)
    assert torch.equal(z[1], torch.zeros(4)) and (z[0] != 0).all() and (z[2] != 0).all()


def test_same_seed_same_noise_and_each_draw_is_fresh():
    model = layers()
    a = FilterNoise(model.parameters(), torch.Generator().manual_seed(3))
    b = FilterNoise(model.parameters(), torch.Generator().manual_seed(3))
    first = [z.clone() for z in a.draw(0.01)]
    assert all(torch.equal(x, y) for x, y in zip(first, b.draw(0.01)))
    assert not torch.equal(first[0], a.draw(0.01)[0])


def test_scale_multiplies_the_std_per_group():
    model = layers()
    plain = FilterNoise(model.parameters(), torch.Generator().manual_seed(0))
    scaled = FilterNoise(model.parameters(), torch.Generator().manual_seed(0))
    twice = [torch.full((1, 1), 2.0) for _ in scaled.layout.groups]
    for x, y in zip(plain.draw(0.01), scaled.draw(0.01, twice)):
        assert torch.equal(2 * x, y)


def test_perturb_adds_the_noise_and_restore_brings_back_the_exact_weights():
    model = layers()
    before = [p.detach().clone() for p in model.parameters()]
    noise = FilterNoise(model.parameters(), torch.Generator().manual_seed(0))
    noise.perturb(0.05)
    for p, w, z in zip(model.parameters(), before, noise.layout.views(noise.noise)):
        assert torch.equal(p.detach(), w + z)
        assert not torch.equal(p.detach(), w)
    noise.restore()
    assert all(torch.equal(p.detach(), w) for p, w in zip(model.parameters(), before))


def test_layout_groups_filters_of_one_size_into_one_matrix():
    """Two convs with 27-element filters share a group; the bias vectors of length 8 share one."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(3, 4, 3), nn.Linear(8, 8))
    params = list(model.parameters())
    layout = FilterLayout(params)
    flat = layout.empty()
    for view, p in zip(layout.views(flat), params):
        view.copy_(p.detach())
    shapes = sorted(r.shape for r in layout.rows(flat))
    assert shapes == sorted(
        [torch.Size([12, 27]), torch.Size([8, 8]), torch.Size([2, 8]), torch.Size([1, 4])]
    )
    rows = torch.cat(
        [r for r, (_, _, size, vector) in zip(layout.rows(flat), layout.groups) if size == 27]
    )
    assert torch.equal(
        rows, torch.cat([params[0].detach().flatten(1), params[2].detach().flatten(1)])
    )


def test_bad_input_is_a_clear_value_error():
    with pytest.raises(ValueError, match="gamma"):
        FilterNoise([torch.zeros(2, 2)], torch.Generator()).draw(-0.1)
    with pytest.raises(ValueError, match="no parameters"):
        FilterNoise([], torch.Generator())
    with pytest.raises(ValueError, match="dtype"):
        FilterNoise([torch.zeros(2), torch.zeros(2, dtype=torch.float64)], torch.Generator())
    with pytest.raises(ValueError, match="one tensor per layout group"):
        FilterNoise([torch.zeros(2, 2)], torch.Generator()).draw(
            0.1, [torch.ones(1), torch.ones(1)]
        )
