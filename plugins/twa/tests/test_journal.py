"""Journal TWA: the mean at X = 0, centred/normalised/quantised directions, the coefficient
gradient, sharded coefficients, and AdamW's warm-up and cosine schedule."""

from __future__ import annotations

import pytest
import torch

from yw_core.runtime import Runtime
from yw_core.subspace import flatten, stack_checkpoints
from yw_core.testing import tiny_classifier, tiny_dataset
from yw_core.train import TrainConfig, fit
from yw_plugin_twa import TWA, CoefficientSpace


@pytest.fixture
def runtime():
    return Runtime(device="cpu", seed=0, distributed=False)


def space_of(checkpoints, bits=4, shard=None):
    return CoefficientSpace(checkpoints, bits=bits, device=torch.device("cpu"), shard=shard)


def test_zero_coefficients_give_the_checkpoint_mean(runtime, perturbed):
    model = tiny_classifier()
    checkpoints = perturbed(model, n=5)
    step = TWA(variant="journal").attach(
        model, torch.optim.SGD(model.parameters(), lr=0.1), runtime=runtime, checkpoints=checkpoints
    )
    assert torch.equal(step.space.coefficients, torch.zeros(5, 4))  # 5 rows x 4 tensors
    assert torch.allclose(
        flatten(model.parameters()), stack_checkpoints(checkpoints).mean(0), atol=1e-7
    )


@pytest.mark.parametrize("bits", [1, 4, 8])
def test_directions_are_centred_unit_norm_blocks_within_half_a_step(perturbed, bits):
    checkpoints = perturbed(tiny_classifier(), n=4)
    space = space_of(checkpoints, bits=bits)
    rows = stack_checkpoints(checkpoints)
    centred = rows - rows.mean(0)
    for part, q in zip(space.slices, space.directions):
        exact = centred[:, part] / centred[:, part].norm(dim=1, keepdim=True)
        assert q.codes.dtype == torch.uint8 and int(q.codes.max()) <= 2**bits - 1
        assert ((q.dequantize() - exact).abs() <= q.scale / 2 + 1e-6).all()


def test_coefficient_gradient_matches_autograd(perturbed):
    space = space_of(perturbed(tiny_classifier(), n=3))
    x = torch.randn(space.coefficients.shape, generator=torch.Generator().manual_seed(1))
    x.requires_grad_(True)
    blocks = [x[:, b] @ q.dequantize() for b, q in enumerate(space.directions)]
    w = space.mean + torch.cat(blocks)
    target = torch.randn(w.shape, generator=torch.Generator().manual_seed(2))
    loss = ((w - target) ** 2).sum() + w.sin().sum()
    (auto,) = torch.autograd.grad(loss, x)
    g = 2 * (w - target) + w.cos()
    assert torch.allclose(space.coefficient_grad(g.detach()), auto, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        space.coefficients.copy_(x)
    assert torch.allclose(space.weights(), w.detach(), atol=1e-6)


@pytest.mark.parametrize("world", [2, 3, 7])
def test_sharded_coefficients_sum_to_the_unsharded_weights(perturbed, world):
    checkpoints = perturbed(tiny_classifier(), n=5)
    full = space_of(checkpoints)
    x = torch.randn(full.coefficients.shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        full.coefficients.copy_(x)
    total = torch.zeros_like(full.mean)
    for rank in range(world):
        part = space_of(checkpoints, shard=(rank, world))
        assert not part.reduce  # no process group: each shard returns its own part
        with torch.no_grad():
            part.coefficients.copy_(x[part.rows])
        total += part.weights() - part.mean
    assert torch.allclose(total + full.mean, full.weights(), atol=1e-6)


def test_adamw_lr_warms_up_over_a_fifth_then_decays_by_cosine(runtime, perturbed):
    model = tiny_classifier()
    step = TWA(variant="journal", coef_lr=0.01).attach(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        runtime=runtime,
        checkpoints=perturbed(model),
    )
    step.begin(20)
    lrs = []
    for _ in range(20):
        lrs.append(step.lr_now())
        step.updates += 1
    assert lrs[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])  # 4 of 20 updates warm up
    assert max(lrs) == pytest.approx(0.01)
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:]))  # then cosine decay
    assert 0 < lrs[-1] < 0.001


def test_fit_trains_the_coefficients_and_the_weights_follow(runtime, perturbed):
    model = tiny_classifier()
    checkpoints = perturbed(model)
    method = TWA(variant="journal", coef_lr=0.01)
    config = TrainConfig(epochs=2, batch_size=16, progress=False)
    steps = []
    real_attach = method.attach

    def attach(*args, **kw):
        steps.append(real_attach(*args, **kw))
        return steps[-1]

    method.attach = attach
    result = fit(
        model,
        tiny_dataset(64),
        runtime=runtime,
        method=method,
        config=config,
        attach_kwargs={"checkpoints": checkpoints},
    )
    space = steps[0].space
    assert space.coefficients.abs().min() > 0  # every coefficient trained
    assert torch.equal(flatten(result.model.parameters()), space.weights())
