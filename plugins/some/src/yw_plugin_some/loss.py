"""SOME's training loss (spec section 2(b)): the self-paced threshold schedule, circular teaching
among heads, the cosine constraint on the heads' weights, and the Consistency term.

Shapes: H heads, m noise copies, N samples, C classes. Per-sample losses are (H, N) tensors,
logits (H, m, N, C) tensors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def threshold(epoch: int, epochs: int, num_classes: int, lambda_last: float) -> float:
    """The self-paced threshold at `epoch` (1-based): 10^-lambda moves linearly from 10^-ln C
    at epoch 1 to 10^-lambda_last at epoch `epochs`, i.e. lambda_e = -log10(a e + b)."""
    if not 1 <= epoch <= epochs:
        raise ValueError(f"epoch must lie in [1, epochs={epochs}], got {epoch}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    first = math.log(num_classes)
    if epochs == 1:
        return first
    start, end = 10.0**-first, 10.0**-lambda_last
    return -math.log10(start + (epoch - 1) / (epochs - 1) * (end - start))


def self_paced_weights(losses: torch.Tensor, lam: float) -> torch.Tensor:
    """w_h(x) for each head h (rows) and sample x, in (0, 1], without gradient.

    1 where head h finds x easy (l_h(x) <= lam; the code's l_h == lam case, weight 0 there, is a
    spec gap we count as easy); else (1 + e^-lam) / (1 + exp(l_{h+1}(x) - lam)), which falls as
    the next head's loss grows. Indices wrap around (head H-1 is followed by head 0).
    """
    losses = losses.detach()
    following = losses.roll(-1, dims=0)  # row h holds l_{h+1}
    soft = (1 + math.exp(-lam)) * torch.sigmoid(lam - following)  # = (1+e^-lam)/(1+e^(l-lam))
    return torch.where(losses <= lam, torch.ones_like(soft), soft)


def circular_ce(losses: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_CE, v): L_CE = mean_h mean_x v_h(x) l_h(x), where v_h = w_{h-1} are the weights of the
    head before h (the teacher decides easy or hard; a hard sample is down-weighted by the
    student's own loss). `losses` are the per-sample smoothed losses l_h(x), shape (H, N)."""
    v = self_paced_weights(losses, lam).roll(1, dims=0)  # row h holds w_{h-1}
    return (v * losses).mean(), v


def cosine_penalty(heads: list[nn.Module] | nn.ModuleList) -> torch.Tensor:
    """L_cos = sum over pairs i < j of cos^2 between the heads' flattened parameter vectors
    (every parameter of the head, BN affine weights included); 0 for one head."""
    flat = torch.stack([torch.cat([p.reshape(-1) for p in head.parameters()]) for head in heads])
    unit = flat / flat.norm(dim=1, keepdim=True)
    return (unit @ unit.T).triu(diagonal=1).pow(2).sum()


def smoothed_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """l_h(x) = mean_j CE(f_h(x + delta_j), y), shape (H, N), from logits (H, m, N, C)."""
    heads, m, n, classes = logits.shape
    ce = F.cross_entropy(logits.reshape(-1, classes), y.repeat(heads * m), reduction="none")
    return ce.view(heads, m, n).mean(1)


def consistency_term(
    logits: torch.Tensor, weights: torch.Tensor, lam_c: float, eta: float
) -> torch.Tensor:
    """mean_h mean_x v_h(x) [lam_c mean_j KL(pbar_h || softmax f_h(x + delta_j)) + eta H(pbar_h)],
    pbar_h = mean_j softmax f_h(x + delta_j): Jeong & Shin's (NeurIPS 2020) consistency loss per
    head, weighted like the CE. Gradients flow through pbar_h, as Consistency defines it."""
    log_probs = logits.log_softmax(-1)
    pbar = log_probs.exp().mean(1)  # (H, N, C)
    kl = F.kl_div(log_probs, pbar.unsqueeze(1).expand_as(log_probs), reduction="none")
    kl = kl.sum(-1).mean(1)  # (H, N)
    entropy = -(pbar * pbar.clamp_min(1e-20).log()).sum(-1)
    return (weights * (lam_c * kl + eta * entropy)).mean()
