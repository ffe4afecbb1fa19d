"""SAM: rho = 0 is SGD, the ascent point, the exact restore, BN stats, the gradient it steps with,
per-rank ascent under DDP, and bad input.

Run as a script under torchrun (`python -m torch.distributed.run ... test_sam.py OUTDIR`), this file
is also the worker of the DDP test: each rank does one SAM step on its own batch.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from yw_core.runtime import Runtime
from yw_core.testing import run_torchrun, tiny_classifier, tiny_dataset
from yw_core.train import TrainConfig, fit
from yw_plugin_baselines import SAM


def bn_model(seed: int = 0) -> nn.Module:
    """A small classifier with a BatchNorm layer, on 1x8x8 inputs with 4 classes."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 4)
    ).train()


def ce(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def recording(loss_fn, seen: list):
    """loss_fn that also records a copy of the model's parameters at every call."""

    def wrapped(model, batch):
        seen.append(flat(model.parameters()).clone())
        return loss_fn(model, batch)

    return wrapped


def test_rho_zero_reproduces_sgd_bit_for_bit():
    """Same init, data order and base optimizer: SAM(rho=0) gives SGD's weights and BN stats."""
    config = TrainConfig(epochs=2, batch_size=8, lr=0.05, progress=False)
    data = tiny_dataset(32)
    runs = []
    for method in (None, SAM(rho=0.0)):
        runtime = Runtime(device="cpu", seed=0, distributed=False)
        runs.append(fit(bn_model(), data, runtime=runtime, method=method, config=config))
    sgd, sam = (r.model.state_dict() for r in runs)
    for key in sgd:
        assert torch.equal(sgd[key], sam[key]), key


@pytest.mark.parametrize("adaptive", [False, True])
def test_ascent_point_and_exact_restore(yw_runtime, adaptive):
    """The second pass sees w + e with ||e|| = rho along g (ASAM: ||e / |w| || = rho); with a
    zero-lr base optimizer the weights after the step are the original ones, bit for bit."""
    model = yw_runtime.to(tiny_classifier()).train()
    batch = yw_runtime.to(tiny_dataset(16).tensors)
    w0 = flat(model.parameters()).clone()
    model.zero_grad()
    ce(model, batch).backward()
    g = flat(p.grad for p in model.parameters())

    rho = 0.3
    step = SAM(rho=rho, adaptive=adaptive).attach(
        model, torch.optim.SGD(model.parameters(), lr=0.0), runtime=yw_runtime
    )
    seen: list[torch.Tensor] = []
    step.step(batch, recording(ce, seen))
    assert len(seen) == 2 and torch.equal(seen[0], w0)
    e = seen[1] - w0
    if adaptive:
        assert (e / w0.abs()).norm().item() == pytest.approx(rho, rel=1e-5)
        expected = w0.pow(2) * g
    else:
        assert e.norm().item() == pytest.approx(rho, rel=1e-5)
        expected = g
    cosine = F.cosine_similarity(e, expected, dim=0).item()
    assert cosine == pytest.approx(1.0, abs=1e-5)
    assert torch.equal(flat(model.parameters()), w0), "weights not restored after the step"


def test_batchnorm_stats_are_updated_by_the_first_pass_only(yw_runtime):
    """After a SAM step the BN buffers equal one plain training forward at the original weights
    (running mean, var and num_batches_tracked), so the perturbed pass left them alone."""
    model = yw_runtime.to(bn_model())
    reference = copy.deepcopy(model)
    batch = yw_runtime.to(tiny_dataset(16).tensors)
    with torch.no_grad():
        reference(batch[0])
    step = SAM(rho=0.5).attach(
        model, torch.optim.SGD(model.parameters(), lr=0.1), runtime=yw_runtime
    )
    step.step(batch, ce)
    bn, ref = model[2], reference[2]
    assert int(bn.num_batches_tracked) == 1
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(getattr(bn, name), getattr(ref, name)), name
    assert bn.track_running_stats, "BN left with running stats switched off"


class Quadratic(nn.Module):
    """L(w) = 0.5 wᵀAw - bᵀw in float64: the gradient at any point is known in closed form."""

    def __init__(self, n: int = 6, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        m = torch.randn(n, n, generator=g, dtype=torch.float64)
        self.register_buffer("A", m @ m.T + torch.eye(n, dtype=torch.float64))
        self.register_buffer("b", torch.randn(n, generator=g, dtype=torch.float64))
        self.w = nn.Parameter(torch.randn(n, generator=g, dtype=torch.float64))

    def grad(self, w: torch.Tensor) -> torch.Tensor:
        return self.A @ w - self.b


def quadratic_loss(model, batch):
    return 0.5 * model.w @ model.A @ model.w - model.b @ model.w


def test_sam_gradient_on_a_quadratic_is_the_gradient_at_the_ascent_point(yw_runtime):
    model = Quadratic()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    used = []
    optimizer.register_step_pre_hook(lambda opt, args, kw: used.append(model.w.grad.clone()))
    step = SAM(rho=0.05).attach(model, optimizer, runtime=yw_runtime)
    for _ in range(3):
        w = model.w.detach().clone()
        g = model.grad(w)
        step.step(None, quadratic_loss)
        expected = model.grad(w + 0.05 * g / (g.norm() + 1e-12))
        torch.testing.assert_close(used[-1], expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(model.w.detach(), w - 0.1 * expected, rtol=1e-12, atol=1e-12)


def test_bad_input_is_rejected_by_name(yw_runtime):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="rho"):
        SAM(rho=-0.01)
    model = tiny_classifier()
    with pytest.raises(ValueError, match="checkpoints"):
        SAM().attach(
            model, torch.optim.SGD(model.parameters(), lr=0.1), runtime=yw_runtime, checkpoints=[]
        )


# ---- under torchrun -----------------------------------------------------------------------------

RHO, LR = 0.5, 0.5


def rank_batch(rank: int):
    return tiny_dataset(8, seed=10 + rank).tensors


def worker(out_dir: Path) -> None:
    """One SAM step on 2 DDP ranks, each on its own batch; writes the weights per rank."""
    with Runtime(device="cpu", seed=0) as rt:
        net = rt.wrap_ddp(tiny_classifier().train())
        step = SAM(rho=RHO).attach(net, torch.optim.SGD(net.parameters(), lr=LR), runtime=rt)
        step.step(rank_batch(rt.rank), ce)
        weights = flat(net.module.parameters()).tolist()
        (out_dir / f"rank{rt.rank}.json").write_text(json.dumps(weights))


def sam_gradient(model, batches, per_rank: bool) -> torch.Tensor:
    """The mean over ranks of the gradient at w + e, with e from each rank's own gradient
    (per_rank) or from the gradient averaged over ranks."""
    w0 = [p.detach().clone() for p in model.parameters()]

    def grad_at(shift, batch):
        with torch.no_grad():
            for p, w, s in zip(model.parameters(), w0, shift):
                p.copy_(w + s)
        model.zero_grad()
        ce(model, batch).backward()
        return [p.grad.clone() for p in model.parameters()]

    zero = [torch.zeros_like(w) for w in w0]
    grads = [grad_at(zero, b) for b in batches]
    if not per_rank:
        mean = [sum(gs) / len(gs) for gs in zip(*grads)]
        grads = [mean] * len(batches)
    seconds = []
    for g, b in zip(grads, batches):
        norm = torch.linalg.vector_norm(torch.stack([t.norm() for t in g]))
        seconds.append(grad_at([RHO * t / (norm + 1e-12) for t in g], b))
    with torch.no_grad():
        for p, w in zip(model.parameters(), w0):
            p.copy_(w)
    return flat(sum(gs) / len(gs) for gs in zip(*seconds))


@pytest.mark.distributed
def test_ddp_each_rank_ascends_along_its_own_gradient(tmp_path):
    """Under torchrun the ranks end with identical weights: w - lr * mean_r ∇L_r(w + e_r), where
    e_r comes from rank r's own gradient (the paper's per-accelerator SAM), not the averaged one."""
    run_torchrun(__file__, tmp_path)
    ranks = [torch.tensor(json.loads((tmp_path / f"rank{r}.json").read_text())) for r in range(2)]
    assert torch.equal(ranks[0], ranks[1])

    model = tiny_classifier().train()
    w0 = flat(model.parameters())
    batches = [rank_batch(r) for r in range(2)]
    per_rank = w0 - LR * sam_gradient(model, batches, per_rank=True)
    synced = w0 - LR * sam_gradient(model, batches, per_rank=False)
    torch.testing.assert_close(ranks[0], per_rank.to(ranks[0].dtype), rtol=0, atol=1e-6)
    assert (ranks[0] - synced).abs().max() > 1e-4, "the test cannot tell the two rules apart"


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
