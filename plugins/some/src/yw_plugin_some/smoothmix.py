"""SmoothMix (Jeong et al., NeurIPS 2021) for SOME's heads: an L2 adversarial search on the
heads' smoothed soft classifiers, then a KL loss on inputs mixed between the clean and the
adversarial point, with targets mixed between the clean smoothed prediction and uniform.

SOME's version (its `codes/2SmoothMix`) averages the search loss over heads and weights each
head's KL by the circular self-paced weights, where SmoothMix masks samples its smoothed
classifier gets wrong.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from yw_core.models import eval_mode
from yw_plugin_some.heads import MultiHeadClassifier


def noisy_logits(model: MultiHeadClassifier, x: torch.Tensor, noises: torch.Tensor) -> torch.Tensor:
    """Logits (H, m, N, C) of every head on x + noises[j], from one trunk pass over the m
    copies stacked into one batch (as the reference does, so BN sees them together)."""
    m = noises.shape[0]
    logits = torch.stack(model.heads((x.unsqueeze(0) + noises).flatten(0, 1)))
    return logits.unflatten(1, (m, -1))


def smoothmix_pair(
    model: MultiHeadClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    noises: torch.Tensor,
    *,
    steps: int,
    alpha: float,
    mix_step: int,
    max_norm_start: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_start, x_adv), both in [0, 1].

    x_adv: `steps` unprojected L2 steps of size `alpha` along the normalised input gradient of
    mean_h NLL(log mean_j softmax f_h(x + delta_j), y), in eval mode, with the training noises.
    x_start: x itself when mix_step is 0, else the iterate after `mix_step` steps (the "one-step
    adversary"), pulled back into the L2 ball of radius `max_norm_start` around x.
    No parameter gradients are touched.
    """
    heads = model.num_heads
    adv = start = x.detach()
    with eval_mode(model):
        for i in range(steps):
            if i == mix_step:
                start = adv
            adv = adv.detach().requires_grad_(True)
            pbar = noisy_logits(model, adv, noises).softmax(-1).mean(1)  # (H, N, C)
            log_pbar = pbar.clamp_min(1e-20).log().flatten(0, 1)
            loss = F.nll_loss(log_pbar, y.repeat(heads), reduction="sum") / heads
            (grad,) = torch.autograd.grad(loss, adv)
            norm = grad.flatten(1).norm(dim=1).view(-1, *[1] * (x.dim() - 1))
            adv = (adv + alpha * grad / (norm + 1e-8)).clamp(0, 1).detach()
    delta = (start - x).renorm(p=2, dim=0, maxnorm=max_norm_start)
    return (x + delta).clamp(0, 1).detach(), adv


def smoothmix_term(
    model: MultiHeadClassifier,
    x_start: torch.Tensor,
    x_adv: torch.Tensor,
    noises: torch.Tensor,
    clean_probs: torch.Tensor,
    weights: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """mean_h mean_x v_h(x) mean_j KL(t(x) || softmax f_h(x_mix + delta_j)).

    x_mix = (1 - r) x_start + r x_adv and t = (1 - r) p_clean + r / C, with r ~ U[0, 1/2] per
    sample and p_clean (N, C) the heads' mean smoothed softmax on x_start (not detached, as in
    both reference codes). `weights` (H, N) are the circular self-paced weights of the CE.
    """
    n, classes = clean_probs.shape
    r = torch.rand(n, generator=generator, device=x_start.device, dtype=x_start.dtype) / 2
    r_x = r.view(-1, *[1] * (x_start.dim() - 1))
    x_mix = (1 - r_x) * x_start + r_x * x_adv
    target = (1 - r[:, None]) * clean_probs + r[:, None] / classes
    log_probs = noisy_logits(model, x_mix, noises).log_softmax(-1)
    kl = F.kl_div(log_probs, target.expand_as(log_probs), reduction="none").sum(-1).mean(1)
    return (weights * kl).mean()
