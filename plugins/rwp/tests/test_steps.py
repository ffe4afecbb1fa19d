"""RWP's update (spec §3 (g)): alpha = 0 is SGD bit for bit, the update is the mix of a clean and
a perturbed gradient, the weights and BN statistics come back, and the two-worker split mixes the
same way."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from yw_core.runtime import Runtime
from yw_core.testing import tiny_dataset
from yw_plugin_rwp import RWP, FilterNoise, ParityStep, TwoPassStep, frozen_bn_stats, rwp_step

ALPHA, GAMMA = 0.3, 0.05
# Gradients are compared with atol 1e-6: the conv bias in front of BatchNorm has a true gradient
# of 0, so what it gets is float32 round-off of order 1e-7, different for two orders of summation.


def bn_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(256, 4)
    ).train()


def batches(n: int, size: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    x, y = tiny_dataset(n * size, seed=1).tensors
    return [(x[i : i + size], y[i : i + size]) for i in range(0, n * size, size)]


def loss_fn(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


def sgd(model, lr=0.1):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)


class Recording(torch.optim.SGD):
    """SGD with lr 0 that records the weights and gradients it is asked to step from."""

    def __init__(self, params):
        super().__init__(params, lr=0.0)
        self.weights: list[torch.Tensor] = []
        self.grads: list[torch.Tensor] = []

    def step(self, closure=None):
        params = [p for g in self.param_groups for p in g["params"]]
        self.weights = [p.detach().clone() for p in params]
        self.grads = [p.grad.clone() for p in params]
        return super().step(closure)


class TwoRanks(Runtime):
    """A CPU runtime that reports itself as rank `rank` of 2, to simulate the workers in one
    process (no process group, no DDP: the test averages the gradients itself)."""

    def __init__(self, rank: int, world_size: int = 2):
        super().__init__(device="cpu", seed=0, distributed=False)
        self._fake = (rank, world_size)

    is_distributed = property(lambda self: True)
    rank = property(lambda self: self._fake[0])
    world_size = property(lambda self: self._fake[1])


def gradient(model, batch, weights=None):
    """d loss / d params at `weights` (default: the model's own), BN running stats left alone."""
    model = copy.deepcopy(model)
    if weights is not None:
        with torch.no_grad():
            for p, w in zip(model.parameters(), weights):
                p.copy_(w)
    with frozen_bn_stats(model):
        return torch.autograd.grad(loss_fn(model, batch), list(model.parameters()))


def noise_for(model, gamma, seed=0):
    """The noise the step's generator (seeded with runtime.seed) draws first for this model."""
    return [
        z.clone()
        for z in FilterNoise(model.parameters(), torch.Generator().manual_seed(seed)).draw(gamma)
    ]


# ---- sequential mode ----------------------------------------------------------------------------


def test_alpha_zero_reproduces_sgd_bit_for_bit(yw_runtime):
    """RWP fed B1, B2, ..., B8 with alpha = 0 equals SGD fed B1, B3, B5, B7 (momentum, weight decay
    and BN statistics included)."""
    data = batches(8)
    rwp_model, sgd_model = bn_net(), bn_net()
    step = RWP(alpha=0.0, gamma=GAMMA).attach(rwp_model, sgd(rwp_model), runtime=yw_runtime)
    for b in data:
        step.step(b, loss_fn)
    opt = sgd(sgd_model)
    for b in data[::2]:
        opt.zero_grad(set_to_none=True)
        loss_fn(sgd_model, b).backward()
        opt.step()
    for (name, a), b in zip(rwp_model.state_dict().items(), sgd_model.state_dict().values()):
        assert torch.equal(a, b), name


def test_update_mixes_clean_and_perturbed_gradients_from_restored_weights(yw_runtime):
    model = bn_net()
    ref = copy.deepcopy(model)
    w = [p.detach().clone() for p in model.parameters()]
    opt = Recording(model.parameters())
    step = RWP(alpha=ALPHA, gamma=GAMMA).attach(model, opt, runtime=yw_runtime)
    seen = []

    def spy(m, batch):
        seen.append([p.detach().clone() for p in m.parameters()])
        return loss_fn(m, batch)

    b1, b2 = batches(2)
    step.step(b1, spy)
    assert opt.grads == [], "stepped after the first (clean) pass"
    step.step(b2, spy)
    eps = noise_for(ref, GAMMA)
    # the clean pass saw w, the perturbed pass w + eps, and the optimizer stepped from w exactly
    assert all(torch.equal(a, b) for a, b in zip(seen[0], w))
    assert all(torch.equal(a, b + e) for a, b, e in zip(seen[1], w, eps))
    assert all(torch.equal(a, b) for a, b in zip(opt.weights, w))
    # on g = alpha g(w + eps; B2) + (1 - alpha) g(w; B1)
    g_clean = gradient(ref, b1)
    g_pert = gradient(ref, b2, [a + e for a, e in zip(w, eps)])
    for got, gc, gp in zip(opt.grads, g_clean, g_pert):
        assert torch.allclose(got, ALPHA * gp + (1 - ALPHA) * gc, rtol=1e-5, atol=1e-6)


def test_perturbed_pass_leaves_bn_running_stats_alone(yw_runtime):
    model = bn_net()
    bn = model[1]
    step = RWP(gamma=GAMMA).attach(model, sgd(model), runtime=yw_runtime)
    start = [t.clone() for t in bn.buffers()]
    b1, b2 = batches(2)
    step.step(b1, loss_fn)
    after_clean = [t.clone() for t in bn.buffers()]
    assert not torch.equal(after_clean[0], start[0]), "the clean pass should update BN stats"
    step.step(b2, loss_fn)
    assert all(torch.equal(a, b) for a, b in zip(bn.buffers(), after_clean))
    assert bn.track_running_stats, "BN tracking was not switched back on"


def test_weights_are_restored_when_the_perturbed_loss_raises(yw_runtime):
    model = bn_net()
    step = RWP(gamma=GAMMA).attach(model, sgd(model), runtime=yw_runtime)
    b1, b2 = batches(2)
    step.step(b1, loss_fn)
    before = [p.detach().clone() for p in model.parameters()]

    def broken(m, batch):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        step.step(b2, broken)
    assert all(torch.equal(p.detach(), w) for p, w in zip(model.parameters(), before))
    assert model[1].track_running_stats


def test_same_seed_same_run_and_the_seed_drives_the_noise():
    data = batches(4)

    def run(seed):
        model = bn_net()
        runtime = Runtime(device="cpu", seed=seed, distributed=False)
        step = RWP(gamma=GAMMA).attach(model, sgd(model), runtime=runtime)
        for b in data:
            step.step(b, loss_fn)
        return [p.detach() for p in model.parameters()]

    first, again, other = run(0), run(0), run(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])


# ---- the distributed split, simulated in one process -------------------------------------------


def test_two_worker_simulation_equals_the_mix():
    """Rank 0 (clean, loss x 2(1 - alpha)) and rank 1 (perturbed, loss x 2 alpha) each on its own
    batch; the average of their gradients, which DDP would form, is alpha g_s + (1 - alpha) g."""
    model = bn_net()
    w = [p.detach().clone() for p in model.parameters()]
    b_even, b_odd = batches(2)
    grads, bn_before, bn_after = [], None, None
    for rank, batch in ((0, b_even), (1, b_odd)):
        worker = copy.deepcopy(model)
        opt = Recording(worker.parameters())
        step = ParityStep(worker, opt, TwoRanks(rank), alpha=ALPHA, gamma=GAMMA)
        assert step.batches_per_update == 1 and step.perturbed == (rank == 1)
        if rank == 1:
            bn_before = [t.clone() for t in worker[1].buffers()]
        step.step(batch, loss_fn)
        if rank == 1:
            bn_after = list(worker[1].buffers())
            assert all(torch.equal(a, b) for a, b in zip(opt.weights, w)), "not restored"
        grads.append(opt.grads)
    eps = noise_for(model, GAMMA)
    g = gradient(model, b_even)
    g_s = gradient(model, b_odd, [a + e for a, e in zip(w, eps)])
    for g0, g1, gc, gp in zip(*grads, g, g_s):
        assert torch.allclose((g0 + g1) / 2, ALPHA * gp + (1 - ALPHA) * gc, rtol=1e-5, atol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(bn_after, bn_before))


def test_distributed_needs_an_even_world_size_and_the_ddp_model():
    model = bn_net()
    with pytest.raises(ValueError, match="even number of processes"):
        ParityStep(model, sgd(model), TwoRanks(0, world_size=3), alpha=0.5, gamma=0.01)
    with pytest.raises(ValueError, match="DistributedDataParallel"):
        rwp_step(model, sgd(model), TwoRanks(0), alpha=0.5, gamma=0.01)


def test_one_process_uses_two_batches_per_update(yw_runtime):
    model = bn_net()
    step = RWP().attach(model, sgd(model), runtime=yw_runtime)
    assert isinstance(step, TwoPassStep) and step.batches_per_update == 2


# ---- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value"), [("alpha", -0.1), ("alpha", 1.5), ("gamma", -0.01)])
def test_out_of_range_config_names_the_field(field, value):
    with pytest.raises(ValidationError, match=field):
        RWP(**{field: value})


def test_steps_check_alpha_and_gamma_too(yw_runtime):
    model = bn_net()
    with pytest.raises(ValueError, match="alpha"):
        TwoPassStep(model, sgd(model), yw_runtime, alpha=2.0, gamma=0.01)
    with pytest.raises(ValueError, match="gamma"):
        TwoPassStep(model, sgd(model), yw_runtime, alpha=0.5, gamma=-1.0)


def test_attach_rejects_unknown_arguments(yw_runtime):
    model = bn_net()
    with pytest.raises(TypeError, match="checkpoints"):
        RWP().attach(model, sgd(model), runtime=yw_runtime, checkpoints=[])
