"""Attack: perturb inputs against a model within an eps-ball and a query budget."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from yw_core.groups import GROUPS
from yw_core.interfaces.method import Method

if TYPE_CHECKING:
    import torch
    from torch import nn

    from yw_core.runtime import Runtime


@dataclass
class AttackResult:
    """What an attack returns, per sample: the adversarial input, success, and queries spent.

    `loss_queries` counts the forwards used to compute the attack loss; `total_queries` adds the
    forwards used only to check success. Both are LongTensors of shape (N,).
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    loss_queries: torch.Tensor
    total_queries: torch.Tensor


class Attack(Method):
    """Perturbs inputs in [0, 1] against a model within an eps-ball and a per-sample query budget.

    Score-based attacks use only the model's outputs and stop querying a sample once it is
    misclassified; white-box attacks may use gradients (each forward counts as a query).

    What a host relies on (the conformance suite checks it):

    - `run` gets a model the caller moved with `runtime.to`, inputs x (N, ...) in [0, 1] and
      labels y (N,); it calls `check_inputs` first, so a bad shape, range, NaN, eps, budget or
      norm is a ValueError naming the problem.
    - `x_adv` has x's shape, lies in [0, 1] and within `eps` of x in the `norm`; no sample
      spends more than `budget` queries; `success` (bool, (N,)) marks only samples the model
      misclassifies at `x_adv`; a sample misclassified from the start costs no query and keeps x.
    - A run with a smaller budget is a prefix of a run with a larger one, the same seed gives
      the same result, and the model's training mode is restored.
    """

    interface = "attack"
    group = GROUPS["attack"]

    @abstractmethod
    def run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float,
        norm: Literal["linf", "l2"] = "linf",
        budget: int,
        runtime: Runtime,
    ) -> AttackResult:
        """Attack the batch (x, y); never spend more than `budget` queries on one sample."""

    @staticmethod
    def check_inputs(x: torch.Tensor, y: torch.Tensor, eps: float, budget: int, norm: str) -> None:
        """Clear ValueErrors for the mistakes callers make: shapes, range, NaN, eps, budget, norm.

        Attacks call it first thing in `run`; the conformance suite checks that they do.
        """
        import torch

        if x.dim() < 2 or y.dim() != 1 or len(x) != len(y):
            raise ValueError(
                f"x must have shape (N, ...) and y shape (N,), got {tuple(x.shape)} and "
                f"{tuple(y.shape)}"
            )
        if torch.isnan(x).any():
            raise ValueError("x contains NaN")
        if x.min() < 0 or x.max() > 1:
            lo, hi = x.min().item(), x.max().item()
            raise ValueError(f"x must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if int(budget) < 1:
            raise ValueError(f"budget must be a positive number of queries, got {budget}")
        if norm not in ("linf", "l2"):
            raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
