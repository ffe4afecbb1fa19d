"""Query accounting shared by every attack: per-sample charges, early stop, and the attack losses.

A query is one forward of one image. `QueryOracle.query` charges each sample it forwards and marks a
sample successful at the first charged output that is misclassified; from then on the sample is
no longer live and its x_adv is frozen at that input. Attacks ask `live()` for the samples they may
still query and `remaining()` before a step that costs several queries, so no sample ever spends
more than its budget.
"""

from __future__ import annotations

import torch
from pydantic import Field

from yw_core.interfaces import Attack, AttackResult, MethodConfig


class AttackConfig(MethodConfig):
    """Options every attack here shares."""

    count_clean_query: bool = Field(
        False, description="charge the harness's clean forward as one query (AAA's convention)"
    )


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """z_y - max_{j != y} z_j per sample; the attack succeeds when it is <= 0 (minimised)."""
    true = logits.gather(1, y[:, None]).squeeze(1)
    other = logits.clone()
    other.scatter_(1, y[:, None], float("-inf"))
    return true - other.amax(1)


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """-log softmax(z)_y per sample (maximised by untargeted attacks)."""
    return torch.nn.functional.cross_entropy(logits.float(), y, reduction="none")


def true_prob(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """softmax(z)_y per sample (SimBA's loss, minimised)."""
    return logits.float().softmax(1).gather(1, y[:, None]).squeeze(1)


LOSSES = {"margin": margin, "ce": cross_entropy, "prob": true_prob}


class QueryOracle:
    """The model as a score-based attacker sees it: every forward is charged per sample."""

    def __init__(
        self,
        model: torch.nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        budget: int,
        count_clean_query: bool = False,
    ):
        if budget < 1:
            raise ValueError(f"budget must be a positive number of queries, got {budget}")
        self.model = model
        self.x = x
        self.y = y
        self.budget = int(budget)
        n = len(x)
        self.x_adv = x.detach().clone()
        self.loss_queries = torch.zeros(n, dtype=torch.long, device=x.device)
        self.total_queries = torch.zeros(n, dtype=torch.long, device=x.device)
        self.success = torch.zeros(n, dtype=torch.bool, device=x.device)
        with torch.no_grad():
            clean = model(x)
        check_output(clean, x)
        if count_clean_query:
            self.total_queries += 1
        # initially misclassified samples are not attacked: success with 0 (or 1) queries
        self.success |= clean.argmax(1) != y
        self.clean_logits = clean

    def live(self) -> torch.Tensor:
        """Indices of samples that are not yet fooled and have budget left."""
        return torch.nonzero(~self.success & (self.total_queries < self.budget)).squeeze(1)

    def remaining(self, idx: torch.Tensor) -> torch.Tensor:
        """Queries each sample in idx may still spend."""
        return self.budget - self.total_queries[idx]

    @torch.no_grad()
    def query(self, x: torch.Tensor, idx: torch.Tensor, for_loss: bool = True) -> torch.Tensor:
        """Logits of inputs x for samples idx, one charged query each; fooled samples stop here.

        `for_loss=False` marks a forward that only checks success (it counts in total_queries
        but not in loss_queries).
        """
        self.check_can_query(idx)
        logits = self.model(x)
        self.charge(idx, x, logits, for_loss)
        return logits

    def check_can_query(self, idx: torch.Tensor) -> None:
        """Refuse a forward that breaks the accounting: repeats, spent budgets, fooled samples."""
        if len(torch.unique(idx)) != len(idx):
            raise RuntimeError("one query call may hold each sample once (charges would be lost)")
        if (self.total_queries[idx] >= self.budget).any():
            raise RuntimeError("attack tried to query a sample past its budget")
        if self.success[idx].any():
            raise RuntimeError("attack tried to query a sample that is already fooled")

    def charge(self, idx: torch.Tensor, x: torch.Tensor, logits: torch.Tensor, for_loss: bool):
        """Charge one query to each sample in idx for the paid output `logits` of inputs x, and
        stop the samples it misclassifies (x_adv freezes at that input)."""
        self.total_queries[idx] += 1
        if for_loss:
            self.loss_queries[idx] += 1
        fooled = logits.detach().argmax(1) != self.y[idx]
        if fooled.any():
            self.x_adv[idx[fooled]] = x[fooled].detach()
            self.success[idx[fooled]] = True

    def keep(self, idx: torch.Tensor, x: torch.Tensor) -> None:
        """Record x as the current best adversarial input of samples idx (those still live)."""
        open_ = ~self.success[idx]
        self.x_adv[idx[open_]] = x[open_].detach()

    def result(self) -> AttackResult:
        return AttackResult(
            x_adv=self.x_adv,
            success=self.success.clone(),
            loss_queries=self.loss_queries.clone(),
            total_queries=self.total_queries.clone(),
        )


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """Project x_adv onto the eps-ball around x (L-inf or L2), then clip to [0, 1]."""
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    elif norm == "l2":
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        factor = (eps / norms).clamp(max=1.0)
        delta = delta * factor.view(-1, *([1] * (delta.dim() - 1)))
    else:
        raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
    return (x + delta).clamp(0.0, 1.0)


def check_output(logits: torch.Tensor, x: torch.Tensor) -> None:
    """The model must map (N, ...) inputs to (N, classes) scores."""
    if logits.dim() != 2 or logits.shape[0] != x.shape[0]:
        raise ValueError(
            f"model output must have shape (N, classes) = ({x.shape[0]}, C) for input of shape "
            f"{tuple(x.shape)}, got {tuple(logits.shape)}"
        )


# Shared with third-party attacks: the input checks live on the Attack interface.
check_inputs = Attack.check_inputs
