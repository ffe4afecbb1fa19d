"""Adversarial examples for training (L-inf): FGSM-RS and PGD, shared by the AT methods.

Training-time defenses (Fast-AT, PGD-AT, Sub-AT, DIO) generate a perturbed batch every step.
These functions take the input gradient with `torch.autograd.grad`, so the model's parameter
gradients are never touched, and they leave the model's mode alone (Sub-AT attacks in train mode,
as its reference does). Inputs live in [0, 1]; outputs stay in [0, 1] and in the eps-ball.
For *evaluation* use the attack plugins (query accounting, restarts, early stop).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check(x: torch.Tensor, eps: float, step: float) -> None:
    if not eps > 0 or not step > 0:
        raise ValueError(f"eps and step must be > 0, got eps={eps}, step={step}")
    if x.is_floating_point() and (x.min() < 0 or x.max() > 1):
        raise ValueError("inputs must lie in [0, 1] (normalisation belongs inside the model)")


def _uniform(x: torch.Tensor, eps: float, generator: torch.Generator | None) -> torch.Tensor:
    noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (noise * 2 - 1) * eps


def _ascend(model, x_adv, x, y, eps, step, loss_fn: Loss) -> torch.Tensor:
    """One signed-gradient step on loss_fn(model(x_adv), y), projected to the ball and [0, 1]."""
    x_adv = x_adv.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(model(x_adv), y)
        (grad,) = torch.autograd.grad(loss, x_adv)
    x_adv = x_adv.detach() + step * grad.sign()
    return torch.min(torch.max(x_adv, x - eps), x + eps).clamp_(0, 1)


def fgsm_rs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step: float,
    generator: torch.Generator | None = None,
    loss_fn: Loss = F.cross_entropy,
) -> torch.Tensor:
    """FGSM from a uniform random start in the eps-ball (Wong et al. 2020's Fast-AT step)."""
    _check(x, eps, step)
    start = (x + _uniform(x, eps, generator)).clamp(0, 1)
    return _ascend(model, start, x, y, eps, step, loss_fn)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step: float,
    steps: int,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    loss_fn: Loss = F.cross_entropy,
) -> torch.Tensor:
    """`steps` steps of PGD (Madry et al. 2018) on loss_fn, from a random start by default."""
    _check(x, eps, step)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    x_adv = (x + _uniform(x, eps, generator)).clamp(0, 1) if random_start else x.clone()
    for _ in range(steps):
        x_adv = _ascend(model, x_adv, x, y, eps, step, loss_fn)
    return x_adv


@torch.no_grad()
def pgd_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    step: float,
    steps: int = 20,
    batch_size: int = 500,
    generator: torch.Generator | None = None,
) -> float:
    """Accuracy under PGD-`steps` in eval mode: the validation signal AT methods select on."""
    from yw_core.models import eval_mode

    correct = 0
    with eval_mode(model):
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            x_adv = pgd(model, xb, yb, eps=eps, step=step, steps=steps, generator=generator)
            correct += int((model(x_adv).argmax(1) == yb).sum())
    return correct / max(len(x), 1)
