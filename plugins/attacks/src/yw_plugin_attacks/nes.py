"""NES (Ilyas et al., ICML 2018): antithetic Gaussian gradient estimate, then a PGD step.

Each step draws q directions u ~ N(0, I)/sqrt(d), queries the loss at x + sigma*u and x - sigma*u
(2q loss queries), averages the antithetic differences into an estimate g of the loss gradient and
steps x <- clip(x + lr*sign(g)) (L2: x + lr_l2*g/||g||), projected to the eps-ball. The new iterate
is unqueried, so one more charged query checks it for success. Every query, finite-difference probes
included, is projected to the ball and clipped to [0, 1], so any query that fools the model is a
valid adversarial example.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from yw_core.interfaces import Attack, AttackResult, Capabilities, Paper
from yw_core.models import eval_mode
from yw_plugin_attacks.queries import (
    AttackConfig,
    QueryOracle,
    check_inputs,
    cross_entropy,
    margin,
    project,
)


def ascent_loss(name: str):
    """The loss the attack maximises: CE on the true label, or CW = -margin."""
    if name == "ce":
        return cross_entropy
    return lambda logits, y: -margin(logits, y)


def nes_estimate(
    loss_plus: torch.Tensor, loss_minus: torch.Tensor, u: torch.Tensor, sigma: float
) -> torch.Tensor:
    """Antithetic estimate mean_i (L(x+sigma*u_i) - L(x-sigma*u_i)) / (2*sigma) * u_i.

    loss_plus, loss_minus: (B, q); u: (B, q, *shape). Returns (B, *shape). Unbiased (up to the
    scale of u) for a linear loss; only its sign or direction is used.
    """
    weights = (loss_plus - loss_minus) / (2 * sigma)
    return (weights.view(*weights.shape, *([1] * (u.dim() - 2))) * u).mean(1)


class NES(Attack):
    """Score-based L-inf/L2 attack: NES gradient estimation with antithetic sampling + PGD steps."""

    name = "nes"
    summary = "NES: antithetic Gaussian finite differences estimate the gradient; PGD sign steps"
    paper = Paper(
        title="Black-box Adversarial Attacks with Limited Queries and Information",
        authors=("Ilyas", "Engstrom", "Athalye", "Lin"),
        year=2018,
        venue="ICML",
        arxiv_id="1804.08598",
        code_url="https://github.com/labsix/limited-blackbox-attacks",
    )
    status = "stable"
    capabilities = Capabilities()

    class Config(AttackConfig):
        fd_eta: float = Field(
            0.01,
            gt=0,
            le=1,
            description="sigma: finite-difference step; probes are x +- sigma*u with "
            "u ~ N(0, I)/sqrt(d), so ||sigma*u||_2 ~ sigma (2.55/255 of the CIFAR configs)",
        )
        lr: float = Field(
            2 / 255, gt=0, le=1, description="L-inf step: x <- x + lr*sign(g) (2/255 for eps=8/255)"
        )
        lr_l2: float = Field(
            0.25,
            gt=0,
            le=100,
            description="L2 step length: x <- x + lr_l2*g/||g||_2 (0.25 for eps=0.5: half of "
            "eps, SignHunter's L2 lr/eps ratio)",
        )
        q: int = Field(
            20, ge=1, le=10000, description="antithetic pairs per step: 2q loss queries + 1 check"
        )
        loss: Literal["ce", "margin"] = Field(
            "ce", description="maximised loss: 'ce' (cross-entropy) or 'margin' (CW = -margin)"
        )

    def run(self, model, x, y, *, eps, norm="linf", budget, runtime) -> AttackResult:
        """Attack (x, y); each step costs 2q+1 queries and a sample that cannot afford it stops."""
        check_inputs(x, y, eps, budget, norm)
        cfg = self.config
        loss_fn = ascent_loss(cfg.loss)
        g = runtime.generator(device=x.device)
        with eval_mode(model):
            with torch.no_grad():
                oracle = QueryOracle(model, x, y, budget, count_clean_query=cfg.count_clean_query)
                x_cur = x.clone()
                dim = x[0].numel()
                step_cost = 2 * cfg.q + 1
                while True:
                    live = oracle.live()
                    live = live[oracle.remaining(live) >= step_cost]
                    if len(live) == 0:
                        break
                    x0, xl, yl = x[live], x_cur[live], y[live]
                    shape = (len(live), cfg.q, *x.shape[1:])
                    u = torch.randn(shape, generator=g, device=x.device, dtype=x.dtype) / dim**0.5
                    losses = torch.zeros(2, len(live), cfg.q, device=x.device)
                    for k in range(cfg.q):
                        for side, sign in enumerate((1.0, -1.0)):
                            rows = torch.nonzero(~oracle.success[live]).squeeze(1)
                            if len(rows) == 0:
                                break
                            probe = project(
                                xl[rows] + sign * cfg.fd_eta * u[rows, k], x0[rows], eps, norm
                            )
                            logits = oracle.query(probe, live[rows])
                            losses[side, rows, k] = loss_fn(logits, yl[rows])
                    rows = torch.nonzero(~oracle.success[live]).squeeze(1)
                    if len(rows) == 0:
                        continue
                    grad = nes_estimate(losses[0, rows], losses[1, rows], u[rows], cfg.fd_eta)
                    new = project(xl[rows] + self._step(grad, norm), x0[rows], eps, norm)
                    idx = live[rows]
                    oracle.query(new, idx, for_loss=False)
                    x_cur[idx] = new
                    oracle.keep(idx, new)
                return oracle.result()

    def _step(self, grad: torch.Tensor, norm: str) -> torch.Tensor:
        """lr*sign(g) for L-inf, lr_l2*g/||g|| for L2."""
        if norm == "linf":
            return self.config.lr * grad.sign()
        norms = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
        return self.config.lr_l2 * grad / norms.view(-1, *([1] * (grad.dim() - 1)))
