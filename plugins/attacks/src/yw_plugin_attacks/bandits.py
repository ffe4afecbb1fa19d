"""Bandits-TD (Ilyas, Engstrom, Madry, ICLR 2019): a gradient prior learned online, then PGD steps.

The prior v persists across steps (time prior) and lives at a coarse prior_size x prior_size
resolution, nearest-upsampled to the image (data prior). Each step draws exploration noise u,
queries the loss at x + eta*q/||q|| for q = up(v + u) and q = up(v - u) (2 loss queries), updates
v from the finite difference (L-inf: exponentiated gradient on [-1, 1]; L2: additive), steps the
image along up(v), projects to the eps-ball, clips to [0, 1], and checks the new iterate (1 charged
query). Every query, probes included, is projected and clipped, so any fooling query is valid.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from yw_core.interfaces import Attack, AttackResult, Capabilities, Paper
from yw_core.models import eval_mode
from yw_plugin_attacks.nes import ascent_loss
from yw_plugin_attacks.queries import AttackConfig, QueryOracle, check_inputs, project

# v is kept off +-1 so atanh stays finite and a saturated coordinate can still come back
_V_LIMIT = 1 - 1e-6


def _unit(t: torch.Tensor) -> torch.Tensor:
    """Each sample scaled to unit L2 norm."""
    norms = t.flatten(1).norm(dim=1).clamp_min(1e-12)
    return t / norms.view(-1, *([1] * (t.dim() - 1)))


def upsample(v: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour upsampling of the prior (B, C, h, w) to the image size (the data prior)."""
    if tuple(v.shape[-2:]) == tuple(size):
        return v
    return F.interpolate(v, size=size, mode="nearest")


def exploration_noise(v: torch.Tensor, delta: float, generator: torch.Generator) -> torch.Tensor:
    """u = delta*N(0, I) in v's shape: BlackboxBench's form, without MadryLab's 1/sqrt(dim v)."""
    return delta * torch.randn(v.shape, generator=generator, device=v.device, dtype=v.dtype)


def prior_gradient(
    loss_plus: torch.Tensor, loss_minus: torch.Tensor, u: torch.Tensor, eta: float, delta: float
) -> torch.Tensor:
    """Bandit feedback Delta = (l+ - l-) / (eta*delta) * u: a loss-gradient estimate in v."""
    scale = (loss_plus - loss_minus) / (eta * delta)
    return scale.view(-1, *([1] * (u.dim() - 1))) * u


def update_prior(v: torch.Tensor, grad: torch.Tensor, kappa: float, norm: str) -> torch.Tensor:
    """One online step on the prior: L-inf exponentiated gradient on [-1, 1], L2 additive.

    With p = (v+1)/2 the EG step v <- 2*p*e^a / (p*e^a + (1-p)*e^-a) - 1 (a = kappa*Delta) equals
    tanh(atanh(v) + a), which is computed in that overflow-free form.
    """
    if norm == "l2":
        return v + kappa * grad
    return torch.tanh(torch.atanh(v.clamp(-_V_LIMIT, _V_LIMIT)) + kappa * grad)


def image_step(x: torch.Tensor, prior_up: torch.Tensor, image_lr: float, norm: str):
    """x + h*sign(up(v)) for L-inf, x + h*up(v)/||up(v)|| for L2 (before projection)."""
    if norm == "linf":
        return x + image_lr * prior_up.sign()
    return x + image_lr * _unit(prior_up)


class Bandits(Attack):
    """Score-based L-inf/L2 attack: bandit optimisation of a time- and data-dependent prior."""

    name = "bandits"
    summary = (
        "Bandits-TD: a gradient prior with time and data (tiling) priors, learned from 2 queries"
    )
    paper = Paper(
        title="Prior Convictions: Black-Box Adversarial Attacks with Bandits and Priors",
        authors=("Ilyas", "Engstrom", "Madry"),
        year=2019,
        venue="ICLR",
        arxiv_id="1807.07978",
        code_url="https://github.com/MadryLab/blackbox-bandits",
    )
    status = "stable"
    capabilities = Capabilities()

    class Config(AttackConfig):
        image_lr: float = Field(
            0.01, gt=0, le=1, description="h, L-inf image step: x <- x + h*sign(up(v))"
        )
        image_lr_l2: float = Field(
            0.05,
            gt=0,
            le=100,
            description="h for L2: x <- x + h*up(v)/||up(v)||_2 (0.05 for eps=0.5: the ImageNet "
            "L2 config's h/eps = 0.5/5)",
        )
        fd_eta: float = Field(
            0.01, gt=0, le=1, description="eta: probes are x + eta*q/||q||_2, q = up(v +- u)"
        )
        online_lr: float = Field(0.1, gt=0, le=1e6, description="kappa: step of the prior update")
        exploration: float = Field(
            0.1,
            gt=0,
            le=100,
            description="delta: exploration noise u = delta*N(0, I), drawn WITHOUT MadryLab's "
            "1/sqrt(dim(v)) factor, as in BlackboxBench whose kappa and delta these defaults are; "
            "MadryLab's (kappa_M, delta_M) correspond to kappa = kappa_M/sqrt(dim v), "
            "delta = delta_M/sqrt(dim v)",
        )
        prior_size: int = Field(
            20,
            ge=1,
            le=100000,
            description="side of the prior v (tile resolution; BlackboxBench's prior_size), "
            "nearest-upsampled to the image; a value >= the image side means no data prior",
        )
        loss: Literal["ce", "margin"] = Field(
            "ce", description="maximised loss: 'ce' (cross-entropy) or 'margin' (CW = -margin)"
        )

    def run(self, model, x, y, *, eps, norm="linf", budget, runtime) -> AttackResult:
        """Attack (x, y); each step costs 3 queries and a sample that cannot afford them stops."""
        check_inputs(x, y, eps, budget, norm)
        if x.dim() != 4:
            raise ValueError(f"Bandits needs NCHW images, got x of shape {tuple(x.shape)}")
        cfg = self.config
        loss_fn = ascent_loss(cfg.loss)
        image_lr = cfg.image_lr if norm == "linf" else cfg.image_lr_l2
        size = tuple(x.shape[-2:])
        prior_shape = (x.shape[1], min(cfg.prior_size, size[0]), min(cfg.prior_size, size[1]))
        g = runtime.generator(device=x.device)
        with eval_mode(model):
            with torch.no_grad():
                oracle = QueryOracle(model, x, y, budget, count_clean_query=cfg.count_clean_query)
                x_cur = x.clone()
                prior = torch.zeros(len(x), *prior_shape, device=x.device, dtype=x.dtype)
                while True:
                    live = oracle.live()
                    live = live[oracle.remaining(live) >= 3]
                    if len(live) == 0:
                        break
                    v, x0, xl, yl = prior[live], x[live], x_cur[live], y[live]
                    u = exploration_noise(v, cfg.exploration, g)
                    losses = torch.zeros(2, len(live), device=x.device)
                    for side, sign in enumerate((1.0, -1.0)):
                        rows = torch.nonzero(~oracle.success[live]).squeeze(1)
                        if len(rows) == 0:
                            break
                        q = upsample(v[rows] + sign * u[rows], size)
                        probe = project(xl[rows] + cfg.fd_eta * _unit(q), x0[rows], eps, norm)
                        logits = oracle.query(probe, live[rows])
                        losses[side, rows] = loss_fn(logits, yl[rows])
                    rows = torch.nonzero(~oracle.success[live]).squeeze(1)
                    if len(rows) == 0:
                        continue
                    grad = prior_gradient(
                        losses[0, rows], losses[1, rows], u[rows], cfg.fd_eta, cfg.exploration
                    )
                    v_new = update_prior(v[rows], grad, cfg.online_lr, norm)
                    new = image_step(xl[rows], upsample(v_new, size), image_lr, norm)
                    new = project(new, x0[rows], eps, norm)
                    idx = live[rows]
                    prior[idx] = v_new
                    oracle.query(new, idx, for_loss=False)
                    x_cur[idx] = new
                    oracle.keep(idx, new)
                return oracle.result()
