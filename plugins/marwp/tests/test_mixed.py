"""m-RWP and m-ARWP (spec §5 (g)): lam = 0 is SGD, m-RWP is RWP's step, the perturbed pass leaves
BN statistics alone, and m-ARWP's F and noise scale come from the raw perturbed gradient."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from yw_core.runtime import Runtime
from yw_core.testing import tiny_dataset
from yw_plugin_marwp import ARWP, MARWP, MRWP
from yw_plugin_rwp import RWP, FilterNoise, TwoPassStep, frozen_bn_stats


def bn_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(256, 4)
    ).train()


def batches(n: int, size: int = 16):
    x, y = tiny_dataset(n * size, seed=1).tensors
    return [(x[i : i + size], y[i : i + size]) for i in range(0, n * size, size)]


def loss_fn(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)


def train(method, data, runtime):
    model = bn_net()
    step = method.attach(model, sgd(model), runtime=runtime)
    step.begin(len(data) // step.batches_per_update)
    for b in data:
        step.step(b, loss_fn)
    return model, step


class TwoRanks(Runtime):
    """A CPU runtime that says it is rank 0 of 2 (no process group): shows which step is chosen."""

    def __init__(self):
        super().__init__(device="cpu", seed=0, distributed=False)

    is_distributed = property(lambda self: True)
    world_size = property(lambda self: 2)


@pytest.mark.parametrize("method", [MRWP(lam=0.0), MARWP(lam=0.0)], ids=["mrwp", "marwp"])
def test_lam_zero_reproduces_sgd_bit_for_bit(yw_runtime, method):
    """Fed B1..B8 with lam = 0, both equal SGD fed B1, B3, B5, B7, BN statistics included."""
    data = batches(8)
    model, _ = train(method, data, yw_runtime)
    ref = bn_net()
    opt = sgd(ref)
    for b in data[::2]:
        opt.zero_grad(set_to_none=True)
        loss_fn(ref, b).backward()
        opt.step()
    for (name, a), b in zip(model.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), name


def test_mrwp_is_rwp_with_lam_and_sigma(yw_runtime):
    data = batches(6)
    a, _ = train(MRWP(lam=0.3, sigma=0.02), data, yw_runtime)
    b, _ = train(RWP(alpha=0.3, gamma=0.02), data, yw_runtime)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_marwp_perturbed_pass_leaves_bn_running_stats_alone(yw_runtime):
    model = bn_net()
    step = MARWP().attach(model, sgd(model), runtime=yw_runtime)
    b1, b2, b3, b4 = batches(4)
    for clean, perturbed in ((b1, b2), (b3, b4)):  # the second pair uses F from the first
        step.step(clean, loss_fn)
        after_clean = [t.clone() for t in model[1].buffers()]
        step.step(perturbed, loss_fn)
        assert all(torch.equal(a, b) for a, b in zip(model[1].buffers(), after_clean))


def test_marwp_f_and_noise_scale_come_from_the_raw_perturbed_gradient(yw_runtime):
    """After update 1, F = g(w + eps; B2)^2 (not the mixed gradient's square), and update 2 draws
    its noise with the factor 1 / sqrt(1 + eta S) of that F."""
    model = bn_net()
    ref = copy.deepcopy(model)
    method = MARWP(sigma=0.02, lam=0.5, eta=3.0, beta=0.9)
    step = method.attach(model, sgd(model), runtime=yw_runtime)
    scales = []
    perturb = step.noise.perturb
    step.noise.perturb = lambda gamma, scale=None: (scales.append(scale), perturb(gamma, scale))
    b1, b2, b3, b4 = batches(4)
    step.step(b1, loss_fn)
    step.step(b2, loss_fn)
    eps = FilterNoise(ref.parameters(), torch.Generator().manual_seed(0)).draw(0.02)
    with torch.no_grad():
        for p, e in zip(ref.parameters(), eps):
            p.add_(e)
    with frozen_bn_stats(ref):
        g_pert = torch.autograd.grad(loss_fn(ref, b2), list(ref.parameters()))
    for f, g in zip(step.fisher.views(), g_pert):
        assert torch.allclose(f, g * g, rtol=1e-5, atol=1e-12)
    assert all(torch.equal(s, torch.ones_like(s)) for s in scales[0])  # F was 0
    expected = step.fisher.scale()
    step.step(b3, loss_fn)
    step.step(b4, loss_fn)
    assert all(torch.equal(a, b) for a, b in zip(scales[1], expected))
    assert any((s < 0.99).any() for s in scales[1]), "eta = 3 should shrink some filters' noise"


def test_under_torchrun_mrwp_splits_ranks_and_marwp_runs_both_passes():
    model = bn_net()
    with pytest.raises(ValueError, match="DistributedDataParallel"):  # RWP's even/odd split
        MRWP().attach(model, sgd(model), runtime=TwoRanks())
    step = MARWP().attach(model, sgd(model), runtime=TwoRanks())
    assert isinstance(step, TwoPassStep) and step.batches_per_update == 2


@pytest.mark.parametrize(
    ("method", "field", "value"),
    [
        (MRWP, "sigma", -0.01),
        (MRWP, "lam", 1.5),
        (MARWP, "lam", -0.1),
        (MARWP, "eta", -1.0),
        (MARWP, "beta", 1.5),
        (ARWP, "inc", -1.0),
        (ARWP, "sigma", -0.001),
    ],
)
def test_out_of_range_config_names_the_field(method, field, value):
    with pytest.raises(ValidationError, match=field):
        method(**{field: value})
