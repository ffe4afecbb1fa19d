"""White-box gradient attacks (spec §8): FGSM, FGSM-RS and PGD, with per-sample query accounting.

All three are one loop, projected gradient ascent on the cross-entropy: from x (FGSM) or a random
start in the eps-ball (FGSM-RS, PGD), take `steps` steps of size alpha along sign(grad) (L-inf) or
grad / ||grad|| (L2), each followed by projection onto the eps-ball and clipping to [0, 1].

Query accounting (spec §0 semantics, applied to gradients):
- one forward of one sample is one query. The forward+backward that gives the gradient at the
  current iterate is one *loss* query, and its paid output is also that iterate's success check;
- the last iterate of a run (or restart) is not stepped from: its forward only checks success and
  gives the final CE, so it counts in `total_queries` but not in `loss_queries`. A run therefore
  costs at most steps + 1 queries per sample and restart (FGSM and FGSM-RS: 1 gradient + 1 check);
- early stop: the first evaluated iterate that is misclassified ends the sample's attack, with
  success=True and x_adv = that iterate; a sample also stops, unfooled, when its budget is spent;
- the trajectory does not depend on the budget (random starts are drawn for the whole batch at
  every restart), so a run with a smaller budget is a prefix of one with a larger budget;
- an unfooled sample reports x_adv = the last evaluated iterate of the restart with the highest CE
  there (the PGD-50-10 rule: later restarts only touch samples that are still correct);
- initially misclassified samples are not attacked: success=True, 0 queries (the clean forward is
  not charged unless `count_clean_query`).
The model runs in eval mode (its previous mode is restored) and gradients are taken with respect
to the input only, so the parameters' `.grad` are left alone.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Literal

import torch
from pydantic import Field

from yw_core.interfaces import Attack, AttackResult, Capabilities, Paper
from yw_core.models import eval_mode
from yw_core.runtime import Runtime
from yw_plugin_attacks.queries import (
    AttackConfig,
    QueryOracle,
    check_inputs,
    cross_entropy,
    project,
)


class _GradientOracle(QueryOracle):
    """QueryOracle that also charges a forward+backward: the gradient query of white-box attacks."""

    def gradient(self, x: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CE per sample and its gradient w.r.t. x, for samples idx: one charged loss query each."""
        self.check_can_query(idx)
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = self.model(x)
            loss = cross_entropy(logits, self.y[idx])
            (grad,) = torch.autograd.grad(loss.sum(), x)
        self.charge(idx, x, logits, for_loss=True)
        return loss.detach(), grad


def _unit_l2(t: torch.Tensor) -> torch.Tensor:
    """Each sample scaled to unit L2 norm."""
    return t / t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (t.dim() - 1))


def _random_delta(x: torch.Tensor, eps: float, norm: str, g: torch.Generator) -> torch.Tensor:
    """Random start: U(-eps, eps) per coordinate (L-inf); Gaussian direction, radius U(0, eps) (L2).

    The L2 rule is torchattacks.PGDL2's (the spec's L2 reference); it is drawn for the whole batch.
    """
    if norm == "linf":
        return (torch.rand(x.shape, generator=g, device=x.device, dtype=x.dtype) * 2 - 1) * eps
    direction = _unit_l2(torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype))
    radius = torch.rand(len(x), generator=g, device=x.device, dtype=x.dtype) * eps
    return direction * radius.view(-1, *[1] * (x.dim() - 1))


def _ascent_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """sign(grad) for L-inf; grad / ||grad||_2 per sample for L2."""
    return grad.sign() if norm == "linf" else _unit_l2(grad)


def gradient_attack(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str,
    budget: int,
    runtime: Runtime,
    steps: int,
    step_size: float,
    random_start: bool,
    restarts: int = 1,
    count_clean_query: bool = False,
) -> AttackResult:
    """Projected gradient ascent on CE with restarts and early stop; see the module docstring."""
    check_inputs(x, y, eps, budget, norm)
    with eval_mode(model):
        x = x.detach()
        oracle = _GradientOracle(model, x, y, budget, count_clean_query=count_clean_query)
        g = runtime.generator(device=x.device)
        n = len(x)
        best_x = x.clone()
        best_ce = torch.full((n,), float("-inf"), device=x.device)
        for _ in range(restarts):
            start = x + _random_delta(x, eps, norm, g) if random_start else x
            x_cur = project(start, x, eps, norm)
            last_x = x.clone()
            last_ce = torch.full((n,), float("-inf"), device=x.device)
            for t in range(steps + 1):
                idx = oracle.live()
                if len(idx) == 0:
                    break
                xi = x_cur[idx]
                if t < steps:
                    ce, grad = oracle.gradient(xi, idx)
                    step = xi + step_size * _ascent_direction(grad, norm)
                    x_cur[idx] = project(step, x[idx], eps, norm)
                else:
                    ce = cross_entropy(oracle.query(xi, idx, for_loss=False), y[idx])
                last_x[idx] = xi
                last_ce[idx] = ce
            better = last_ce > best_ce
            best_x[better] = last_x[better]
            best_ce[better] = last_ce[better]
        oracle.keep(torch.arange(n, device=x.device), best_x)
        return oracle.result()


class _GradientAttack(Attack):
    """The three white-box attacks differ only in their step schedule for `gradient_attack`."""

    @abstractmethod
    def schedule(self, eps: float) -> dict:
        """steps, step_size, random_start (and restarts) for this eps."""

    def run(self, model, x, y, *, eps, norm: Literal["linf", "l2"] = "linf", budget, runtime):
        """Attack (x, y) within eps and `budget` queries per sample."""
        return gradient_attack(
            model,
            x,
            y,
            eps=eps,
            norm=norm,
            budget=budget,
            runtime=runtime,
            count_clean_query=self.config.count_clean_query,
            **self.schedule(eps),
        )


class FGSM(_GradientAttack):
    """Fast Gradient Sign Method: one step x + eps * sign(grad CE), clipped to [0, 1]."""

    name = "fgsm"
    summary = "FGSM: one eps-sized gradient-sign step on the cross-entropy (white-box)"
    paper = Paper(
        title="Explaining and Harnessing Adversarial Examples",
        authors=("Goodfellow", "Shlens", "Szegedy"),
        year=2015,
        venue="ICLR",
        arxiv_id="1412.6572",
    )
    status = "stable"
    capabilities = Capabilities()

    class Config(AttackConfig):
        """FGSM has no hyperparameter besides eps (given to run)."""

    def schedule(self, eps: float) -> dict:
        """Gradient at x (1 loss query), one step of size eps, check (1 query)."""
        return {"steps": 1, "step_size": eps, "random_start": False}


class FGSMRS(_GradientAttack):
    """FGSM with a random start (Wong et al. 2020): delta0 ~ U(-eps, eps), one alpha-step."""

    name = "fgsm-rs"
    summary = "FGSM-RS: uniform random start in the eps-ball, one gradient-sign step of 1.25 eps"
    paper = Paper(
        title="Fast is better than free: Revisiting adversarial training",
        authors=("Wong", "Rice", "Kolter"),
        year=2020,
        venue="ICLR",
        arxiv_id="2001.03994",
        code_url="https://github.com/locuslab/fast_adversarial",
    )
    status = "stable"
    capabilities = Capabilities()

    class Config(AttackConfig):
        """alpha is relative to eps so that it scales with the eps given to run()."""

        step_ratio: float = Field(
            1.25,
            gt=0,
            description="step size alpha as a multiple of eps (1.25: alpha = 10/255 at 8/255)",
        )

    def schedule(self, eps: float) -> dict:
        """Gradient at the random start (1 loss query), one step, check (1 query)."""
        return {"steps": 1, "step_size": self.config.step_ratio * eps, "random_start": True}


class PGD(_GradientAttack):
    """Projected Gradient Descent (Madry et al.) on CE, with random restarts (PGD-50-10 style)."""

    name = "pgd"
    summary = "PGD: projected gradient ascent on the cross-entropy from a random start (white-box)"
    paper = Paper(
        title="Towards Deep Learning Models Resistant to Adversarial Attacks",
        authors=("Madry", "Makelov", "Schmidt", "Tsipras", "Vladu"),
        year=2018,
        venue="ICLR",
        arxiv_id="1706.06083",
    )
    status = "stable"
    capabilities = Capabilities()

    class Config(AttackConfig):
        """Madry's CIFAR-10 setting: 10 steps of eps/4 (2/255 at 8/255); PGD-50-10: 50 steps, 10
        restarts."""

        steps: int = Field(10, ge=1, description="gradient steps per restart")
        step_ratio: float = Field(
            0.25, gt=0, description="step size alpha as a multiple of eps (0.25: 2/255 at 8/255)"
        )
        restarts: int = Field(
            1, ge=1, description="random restarts; later ones only attack still-correct samples"
        )
        random_start: bool = Field(True, description="start from a uniform point in the eps-ball")

    def schedule(self, eps: float) -> dict:
        """At most restarts * (steps + 1) queries per sample, capped by the budget."""
        c = self.config
        return {
            "steps": c.steps,
            "step_size": c.step_ratio * eps,
            "random_start": c.random_start,
            "restarts": c.restarts,
        }
