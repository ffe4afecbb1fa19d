"""UniG's objective: the closed-form gradients equal autograd's, and one small step lowers it."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from yw_core.runtime import Runtime
from yw_plugin_unig import UniG
from yw_plugin_unig.gradients import (
    bounds_of,
    feature_gradient,
    pair_loss,
    pair_loss_grad,
    sgd_step,
)


def toy_problem(n=12, d=24, classes=5, seed=0):
    """Features of a random two-layer MLP on random inputs, a random head, a random p."""
    g = torch.Generator().manual_seed(seed)
    mlp = nn.Sequential(nn.Linear(10, d), nn.ReLU())
    with torch.no_grad():
        for param in mlp.parameters():
            param.copy_(torch.randn(param.shape, generator=g) * 0.5)
        f = mlp(torch.randn(n, 10, generator=g))
    weight = torch.randn(classes, d, generator=g) * 0.3
    bias = torch.randn(classes, generator=g) * 0.1
    p = 1 + 0.5 * torch.randn(n, d, generator=g)
    target = F.linear(f, weight, bias).argmax(1)
    return f, p, weight, bias, target


def test_feature_gradient_is_the_cross_entropy_gradient_in_f():
    f, p, weight, bias, target = toy_problem()
    f_var = f.clone().requires_grad_(True)
    ce = F.cross_entropy(F.linear(f_var * p, weight, bias), target)
    (expected,) = torch.autograd.grad(ce, f_var)
    torch.testing.assert_close(feature_gradient(f, p, weight, bias, target), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_closed_form_dl_dp_equals_double_backward(dtype):
    f, p, weight, bias, target = (
        t.to(dtype) if t.is_floating_point() else t for t in toy_problem()
    )
    fast, fast_bounds = pair_loss_grad(f, p, weight, bias, target)
    ref, ref_bounds = pair_loss_grad(f, p, weight, bias, target, reference=True)
    torch.testing.assert_close(torch.stack(fast_bounds), torch.stack(ref_bounds))
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    torch.testing.assert_close(fast, ref, rtol=0, atol=tol * float(ref.abs().max()))


def test_closed_form_handles_identical_neighbours_and_no_bias():
    """A zero difference between neighbours has no direction: both paths give it gradient 0."""
    f, p, weight, _, target = toy_problem()
    f[1], p[1], target[1] = f[0], p[0], target[0]
    fast, _ = pair_loss_grad(f, p, weight, None, target)
    ref, _ = pair_loss_grad(f, p, weight, None, target, reference=True)
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-6 * float(ref.abs().max()))


def test_fixed_bounds_are_used_at_later_iterations():
    f, p, weight, bias, target = toy_problem()
    bounds = (torch.tensor(-1.0), torch.tensor(2.0))
    fast, kept = pair_loss_grad(f, p, weight, bias, target, bounds)
    ref, _ = pair_loss_grad(f, p, weight, bias, target, bounds, reference=True)
    assert kept is bounds
    torch.testing.assert_close(fast, ref, rtol=0, atol=1e-6 * float(ref.abs().max()))


def test_one_step_after_either_gradient_gives_the_same_p():
    """The brief's tolerance: p after a step at the paper's lr (10) agrees within 1e-5."""
    f, p, weight, bias, target = toy_problem()
    stepped = []
    for reference in (False, True):
        q = p.clone()
        grad, _ = pair_loss_grad(f, q, weight, bias, target, reference=reference)
        sgd_step(q, grad, torch.zeros_like(q), lr=10.0, momentum=0.9, weight_decay=5e-4)
        stepped.append(q.clamp_(0.5, 1.5))
    assert (stepped[0] - stepped[1]).abs().max() <= 1e-5


@pytest.mark.parametrize("reference", [False, True])
def test_a_small_step_lowers_the_pairwise_gradient_distance(reference):
    """Spec (g): on a toy MLP with B >= 2 and a small lr, L after the update < L at init."""
    f, p, weight, bias, target = toy_problem()
    grad, bounds = pair_loss_grad(f, p, weight, bias, target, reference=reference)
    before = pair_loss(feature_gradient(f, p, weight, bias, target), bounds)
    stepped = p - 1e-3 * grad
    after = pair_loss(feature_gradient(f, stepped, weight, bias, target), bounds)
    assert after < before
    # the bounds are those of the gradients at p (equal up to float rounding of another path)
    assert torch.allclose(bounds_of(feature_gradient(f, p, weight, bias, target))[1], bounds[1])


def test_sgd_step_matches_torch_sgd_over_several_steps():
    """The hand-written step is torch.optim.SGD's (momentum, weight decay, no dampening)."""
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(4, 6, generator=g) for _ in range(3)]
    ours = torch.randn(4, 6, generator=g)
    param = nn.Parameter(ours.clone())
    opt = torch.optim.SGD([param], lr=0.7, momentum=0.9, weight_decay=5e-4)
    buf = None
    for grad in grads:
        buf = sgd_step(ours, grad, buf, lr=0.7, momentum=0.9, weight_decay=5e-4)
        param.grad = grad.clone()
        opt.step()
        torch.testing.assert_close(ours, param.detach(), rtol=0, atol=1e-6)


def test_fast_and_reference_paths_give_the_same_defended_logits():
    """Whole wrapper, three iterations and two calls (momentum carried): outputs within 1e-4."""
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU()))
    model.add_module("head", nn.Linear(32, 10))
    model.eval()
    x = torch.rand(2, 16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    outputs = []
    for path in ("fast", "reference"):
        runtime = Runtime(device="cpu", seed=0, distributed=False)
        defended = UniG(path=path, iterations=3).protect(model, runtime=runtime)
        with torch.no_grad():
            outputs.append(torch.stack([defended(x[0]), defended(x[1])]))
    assert (outputs[0] - outputs[1]).abs().max() <= 1e-4
