"""SignHunter (Al-Dujaili & O'Reilly, ICLR 2020): search sign(grad L) by flipping blocks of signs.

The sign vector s in {-1, +1}^n (n = input size) starts at all +1 around x_o = x. The probe
x_o + eps*s (L2: eps*s/||s||), projected to the eps-ball and clipped to [0, 1], is queried once;
its loss is the best so far. Then, at level h, chunk i (length ceil(n/2^h)), flip s on the chunk,
query the probe, and keep the flip iff the loss is >= the best. After the last chunk of a level h
moves to h+1; when h reaches ceil(log2 n)+1 the round is over and a new one starts from the current
iterate (x_o <- x_adv, s <- all +1, one new initial probe). The iterate is always the best probe, so
each query is also the success check: 1 charged query per step, and 1 per round's initial probe
(the reference code charges 3 there, counting L(x_o), which only offsets the loss within a round).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field

from yw_core.interfaces import Attack, AttackResult, Capabilities, Paper
from yw_core.models import eval_mode
from yw_plugin_attacks.nes import ascent_loss
from yw_plugin_attacks.queries import AttackConfig, QueryOracle, check_inputs, project


def chunk_bounds(h: int, i: int, n: int) -> tuple[int, int]:
    """Coordinates [start, end) of chunk i at level h: length ceil(n / 2^h), cut at n."""
    length = -(-n // 2**h)
    return i * length, min(n, (i + 1) * length)


class SignFlipState:
    """SignHunter's search state: sign vectors s (one row per sample) and the shared (h, i) pointer.

    All live samples advance in lockstep (one query each per step), so the level h and chunk i are
    the same for every sample; only s differs.
    """

    def __init__(self, rows: int, n: int, device=None, dtype=torch.float32):
        self.n = n
        self.s = torch.ones(rows, n, device=device, dtype=dtype)
        self.h = 0
        self.i = 0
        self.last_level = math.ceil(math.log2(n)) if n > 1 else 0

    def flip(self, rows: torch.Tensor) -> None:
        """Flip the signs of the current chunk for the given rows (also used to revert a flip)."""
        start, end = chunk_bounds(self.h, self.i, self.n)
        self.s[rows, start:end] *= -1

    def advance(self) -> bool:
        """Move to the next chunk (or level); True when the round is over (h = ceil(log2 n)+1)."""
        _, end = chunk_bounds(self.h, self.i, self.n)
        self.i += 1
        if self.i == 2**self.h or end == self.n:
            self.h += 1
            self.i = 0
        if self.h == self.last_level + 1:
            self.h = 0
            return True
        return False


def sign_probe(x_o: torch.Tensor, s: torch.Tensor, x: torch.Tensor, eps: float, norm: str):
    """x_o + eps*s (L2: eps*s/||s||) in x's shape, projected to the eps-ball around x, clipped."""
    step = s if norm == "linf" else s / s.norm(dim=1, keepdim=True)
    return project(x_o + eps * step.view_as(x_o), x, eps, norm)


class SignHunter(Attack):
    """Score-based L-inf/L2 attack: hierarchical sign-flip search for the sign of the gradient."""

    name = "signhunter"
    summary = (
        "SignHunter: estimate sign(grad) by flipping ever smaller blocks of signs; 1 query/step"
    )
    paper = Paper(
        title="Sign Bits Are All You Need for Black-Box Attacks",
        authors=("Al-Dujaili", "O'Reilly"),
        year=2020,
        venue="ICLR",
        arxiv_id="1902.06894",
        code_url="https://github.com/ash-aldujaili/blackbox-adv-examples-signhunter",
    )
    status = "stable"
    capabilities = Capabilities()

    class Config(AttackConfig):
        loss: Literal["ce", "margin"] = Field(
            "ce", description="maximised loss: 'ce' (cross-entropy) or 'margin' (CW = -margin)"
        )

    def run(self, model, x, y, *, eps, norm="linf", budget, runtime) -> AttackResult:
        """Attack (x, y); 1 query per step. Deterministic: nothing is drawn from `runtime`."""
        check_inputs(x, y, eps, budget, norm)
        loss_fn = ascent_loss(self.config.loss)
        with eval_mode(model):
            with torch.no_grad():
                oracle = QueryOracle(
                    model, x, y, budget, count_clean_query=self.config.count_clean_query
                )
                state = SignFlipState(len(x), x[0].numel(), device=x.device, dtype=x.dtype)
                x_o = x.clone()
                x_cur = x.clone()
                best = torch.full((len(x),), -math.inf, device=x.device)
                new_round = True
                while len(live := oracle.live()) > 0:
                    if new_round:  # (re)start around the current iterate with s = all +1
                        state.s[live] = 1
                        x_o[live] = x_cur[live]
                        probe = sign_probe(x_o[live], state.s[live], x[live], eps, norm)
                        best[live] = loss_fn(oracle.query(probe, live), y[live])
                        x_cur[live] = probe
                        oracle.keep(live, probe)
                        new_round = False
                        continue
                    state.flip(live)
                    probe = sign_probe(x_o[live], state.s[live], x[live], eps, norm)
                    loss = loss_fn(oracle.query(probe, live), y[live])
                    better = loss >= best[live]
                    state.flip(live[~better])
                    kept = live[better]
                    best[kept] = loss[better]
                    x_cur[kept] = probe[better]
                    oracle.keep(kept, probe[better])
                    new_round = state.advance()
                return oracle.result()
