"""Input sensitivities ‖∇ₓ f_k(x)‖ of a classifier's logits, and MU-Mis's loss (Eq. 3).

Per-sample input gradients come from one backward pass per class index: in eval mode sample i's
logits depend on x_i only, so ∇ₓ Σ_i f_{k_i}(x_i) holds ∇ₓ f_{k_i}(x_i) in row i.
"""

from __future__ import annotations

import torch
from torch import nn


def class_input_gradients(
    model: nn.Module, x: torch.Tensor, classes: torch.Tensor, *, create_graph: bool = False
) -> torch.Tensor:
    """(N, D): row i is ∇ₓ f_{classes_i}(x_i), flattened; zeros where the logit ignores x."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    picked = logits.gather(1, classes.view(-1, 1)).sum()
    (grad,) = torch.autograd.grad(
        picked, x, create_graph=create_graph, allow_unused=True, materialize_grads=True
    )
    return grad.flatten(1)


def mumis_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, other: torch.Tensor
) -> torch.Tensor:
    """mean_i ‖∇ₓ f_{y_i}(x_i)‖² − ‖∇ₓ f_{other_i}(x_i)‖², differentiable in the weights
    (double backprop): the target-class sensitivity against one irrelevant class per sample."""
    target = class_input_gradients(model, x, y, create_graph=True)
    irrelevant = class_input_gradients(model, x, other, create_graph=True)
    return (target.pow(2).sum(1) - irrelevant.pow(2).sum(1)).mean()


def other_classes(y: torch.Tensor, classes: int, generator: torch.Generator) -> torch.Tensor:
    """One class c′ ≠ y_i per sample, uniform over the other classes-1, drawn from `generator`."""
    shift = torch.randint(1, classes, y.shape, generator=generator, device=generator.device)
    return (y + shift.to(y.device)) % classes


def sensitivities(
    model: nn.Module, batches, classes: int, *, other: str = "mean"
) -> tuple[float, float]:
    """(S_t, S_o) over the batches of (x, y): the mean over samples of ‖∇ₓ f_y(x)‖ and of the
    irrelevant-class norm: its mean over all k ≠ y (`other="mean"`, classes-1 passes) or, for
    `other="random"`, the norm at the class c′ each batch carries as a third tensor."""
    target = irrelevant = 0.0
    n = 0
    with torch.enable_grad():
        for batch in batches:
            x, y = batch[0], batch[1]
            target += float(class_input_gradients(model, x, y).norm(dim=1).sum())
            if other == "random":
                irrelevant += float(class_input_gradients(model, x, batch[2]).norm(dim=1).sum())
            else:
                total = torch.zeros(len(y), device=x.device)
                for shift in range(1, classes):
                    k = (y + shift) % classes
                    total += class_input_gradients(model, x, k).norm(dim=1)
                irrelevant += float(total.sum()) / (classes - 1)
            n += len(y)
    return target / n, irrelevant / n
