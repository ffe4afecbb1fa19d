"""DIO's training loss L = L_c + alpha L_o + beta L_d on clean (CE), PGD (AT) or TRADES batches."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from yw_core.adversarial import pgd
from yw_core.models import eval_mode
from yw_core.train import unwrap

Base = Literal["ce", "at", "trades"]


def mean_path_ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L_c: the mean over paths of each path's cross-entropy, for (L, N, C) logits."""
    return F.cross_entropy(logits.flatten(0, 1), y.repeat(logits.shape[0]))


def mean_path_kl(adv_logits: torch.Tensor, clean_probs: torch.Tensor) -> torch.Tensor:
    """TRADES' KL(clean || adversarial), summed over the batch and averaged over paths, divided
    by the batch size: the reference's (1/N) KLDivLoss(sum), averaged over paths."""
    L, N = adv_logits.shape[:2]
    kl = F.kl_div(adv_logits.log_softmax(dim=2), clean_probs, reduction="sum")
    return kl / (L * N)


class DIOLoss:
    """`fit`'s loss_fn for DIO: builds the batch the base asks for and adds L_o and L_d.

    - "ce": L_c on the clean batch.
    - "at": PGD (`steps`, `eps`, `step`) in eval mode against the random-path model, which
      draws a new path at every forward (every PGD step), as the reference's attack does; then
      L_c and L_d on the adversarial batch.
    - "trades": PGD in eval mode on the path-averaged KL(clean || adversarial); then
      L_c on the clean batch + trades_beta * the path-averaged KL, and L_d on the adversarial
      batch (as the reference's TRADES script).

    `terms` collects (L_o, L_d) per step, detached, for the epoch means in the history.
    """

    def __init__(
        self,
        *,
        base: Base,
        alpha: float,
        beta: float,
        tau: float,
        eps: float,
        step: float,
        steps: int,
        trades_beta: float,
        generator: torch.Generator | None = None,
    ):
        self.base, self.alpha, self.beta, self.tau = base, alpha, beta, tau
        self.eps, self.step, self.steps, self.trades_beta = eps, step, steps, trades_beta
        self.generator = generator
        self.terms: list[torch.Tensor] = []

    def _attack(self, net, x, y, model, loss_fn=F.cross_entropy):
        with eval_mode(net):
            return pgd(
                model,
                x,
                y,
                eps=self.eps,
                step=self.step,
                steps=self.steps,
                generator=self.generator,
                loss_fn=loss_fn,
            )

    def __call__(self, model, batch) -> torch.Tensor:
        """The DIO loss of one batch (x, y) for `model`, a DIONet (or its DDP wrapper)."""
        net = unwrap(model)
        x, y = batch[0], batch[1]
        if self.base == "ce":
            logits = model(x, path="all")
            classification = mean_path_ce(logits, y)
        elif self.base == "at":
            x_adv = self._attack(net, x, y, lambda v: net(v, path="random"))
            logits = model(x_adv, path="all")
            classification = mean_path_ce(logits, y)
        else:
            with torch.no_grad(), eval_mode(net):
                target = net(x, path="all").softmax(dim=2)
            x_adv = self._attack(net, x, target, lambda v: net(v, path="all"), mean_path_kl)
            clean = model(x, path="all")
            logits = model(x_adv, path="all")
            kl = mean_path_kl(logits, clean.softmax(dim=2))
            classification = mean_path_ce(clean, y) + self.trades_beta * kl
        ortho = net.heads.ortho_loss()
        margin = net.heads.margin_loss(logits, y, self.tau)
        self.terms.append(torch.stack([ortho.detach(), margin.detach()]).float())
        return classification + self.alpha * ortho + self.beta * margin

    def epoch_means(self) -> dict[str, float]:
        """Mean L_o and L_d over the steps since the last call, then forget them."""
        ortho, margin = torch.stack(self.terms).mean(dim=0).tolist()
        self.terms.clear()
        return {"ortho_loss": ortho, "margin_loss": margin}
