"""SimBA / SimBA-DCT (Guo et al., ICML 2019; spec §2): greedy steps along orthonormal directions.

For each basis direction q, drawn without replacement: try delta - step*q and keep it if the
true-class probability drops; otherwise try delta + step*q and keep it if the probability drops.
Queries (sequential semantics): 1 when the left try is kept, else 2. The basis is the orthonormal
2-D inverse DCT-II per channel (SimBA-DCT, default) or single pixels (SimBA). The accumulated
pixel-space perturbation delta is unconstrained; each candidate uses it bounded to the threat
model: clamped to +-eps for L-inf (the original's `linf_bound`, a clamp after the IDCT) or
projected onto the eps L2 ball for L2, then clipped to [0, 1].

The run stops when every sample is fooled, has spent its budget, or has tried every direction of
the order: iterations are capped by queries, not by an iteration count. The order is drawn once
per call and shared by the batch (as the original), so a smaller budget gives a prefix of a run
with a larger one.
"""

from __future__ import annotations

import math
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
    project,
    true_prob,
)


def dct_matrix(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The orthonormal DCT-II matrix D (n x n): X = D x, and x = D^T X inverts it."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    d[0] /= math.sqrt(2)
    return d.to(device=device, dtype=dtype)


def dct2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT-II over the last two dimensions."""
    dh = dct_matrix(x.shape[-2], x.device, x.dtype)
    dw = dct_matrix(x.shape[-1], x.device, x.dtype)
    return dh @ x @ dw.T


def idct2(z: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D inverse DCT-II over the last two dimensions (inverse of dct2)."""
    dh = dct_matrix(z.shape[-2], z.device, z.dtype)
    dw = dct_matrix(z.shape[-1], z.device, z.dtype)
    return dh.T @ z @ dw


def coordinate_order(
    shape: tuple[int, int, int],
    freq_dims: int,
    order: str,
    stride: int,
    g: torch.Generator,
) -> torch.Tensor:
    """Flat indices into (c, h, w) in the order SimBA tries them.

    "rand": a random permutation of the coordinates (ch, u, v) with u, v < freq_dims.
    "strided": every coordinate; first the freq_dims x freq_dims block in random order, then
    L-shaped bands of width `stride` (max(u, v) in [freq_dims + k*stride, ... + stride)), each in
    random order.
    """
    c, h, w = shape
    u = torch.arange(h)[:, None].expand(h, w)
    v = torch.arange(w)[None, :].expand(h, w)
    far = torch.maximum(u, v).expand(c, h, w).flatten()
    key = torch.rand(c * h * w, generator=g, device=g.device).cpu().double()
    if order == "rand":
        low = torch.nonzero(((u < freq_dims) & (v < freq_dims)).expand(c, h, w).flatten())
        low = low.squeeze(1)
        return low[key[: len(low)].argsort()]
    band = torch.where(far < freq_dims, 0, 1 + (far - freq_dims) // stride)
    return (band + key).argsort()


def basis_image(k: int, like: torch.Tensor, dh=None, dw=None) -> torch.Tensor:
    """Unit direction of flat coordinate k of like's (c, h, w): its pixel, or with the DCT
    matrices dh, dw its 2-D IDCT basis image (the outer product of rows u and v)."""
    c, h, w = like.shape
    ch, u, v = k // (h * w), (k // w) % h, k % w
    q = torch.zeros_like(like)
    if dh is None:
        q[ch, u, v] = 1.0
    else:
        q[ch] = torch.outer(dh[u], dw[v])
    return q


def simba_step(
    oracle: QueryOracle,
    delta: torch.Tensor,
    prob_best: torch.Tensor,
    direction: torch.Tensor,
    step: float,
    eps: float,
    norm: str,
) -> torch.Tensor:
    """One SimBA iteration on the live samples: try delta - step*q, then (if that did not lower the
    true-class prob) delta + step*q. Updates delta and prob_best in place; returns, per sample,
    the sign taken (-1, +1) or 0. Costs 1 query per live sample, 2 where the left try failed."""
    taken = torch.zeros(len(delta), dtype=torch.long, device=delta.device)
    idx = oracle.live()
    for sign in (-1, 1):
        if sign == 1:  # the right try: samples whose left try failed and that can still query
            idx = idx[~oracle.success[idx] & (oracle.remaining(idx) > 0) & (taken[idx] == 0)]
        if not len(idx):
            break
        trial = delta[idx] + sign * step * direction
        cand = project(oracle.x[idx] + trial, oracle.x[idx], eps, norm)
        prob = true_prob(oracle.query(cand, idx), oracle.y[idx])
        better = prob < prob_best[idx]
        kept = idx[better]
        delta[kept] = trial[better]
        prob_best[kept] = prob[better]
        oracle.keep(kept, cand[better])
        taken[kept] = sign
    return taken


class SimBA(Attack):
    """Score-based greedy coordinate search in a DCT (or pixel) basis: Simple Black-box Attack."""

    name = "simba"
    summary = "SimBA / SimBA-DCT: greedy +-step search along orthonormal directions (score-based)"
    paper = Paper(
        title="Simple Black-box Adversarial Attacks",
        authors=("Guo", "Gardner", "You", "Wilson", "Weinberger"),
        year=2019,
        venue="ICML",
        arxiv_id="1905.07121",
        code_url="https://github.com/cg563/simple-blackbox-attack",
    )
    status = "stable"
    capabilities = Capabilities()

    class Config(AttackConfig):
        step: float = Field(
            0.2, gt=0, description="step along each direction (the original's epsilon)"
        )
        basis: Literal["dct", "pixel"] = Field(
            "dct", description="dct: SimBA-DCT (orthonormal 2-D IDCT per channel); pixel: SimBA"
        )
        order: Literal["rand", "strided"] = Field(
            "rand",
            description="rand: random order of the low-frequency block; strided: that block, then "
            "L-shaped bands of width `stride` (the ImageNet setting)",
        )
        freq_dims: int | None = Field(
            None, ge=1, description="side of the low-frequency block; None = the image side"
        )
        stride: int = Field(7, ge=1, description="band width of the strided order")

    def run(
        self,
        model: torch.nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float,
        norm: Literal["linf", "l2"] = "linf",
        budget: int,
        runtime: Runtime,
    ) -> AttackResult:
        """Attack images x (N, C, H, W) in [0, 1]; at most `budget` queries per sample."""
        check_inputs(x, y, eps, budget, norm)
        if x.dim() != 4:
            raise ValueError(f"SimBA needs images of shape (N, C, H, W), got {tuple(x.shape)}")
        cfg = self.config
        shape = tuple(x.shape[1:])
        side = min(shape[1:])
        if cfg.freq_dims is not None and cfg.freq_dims > side:
            raise ValueError(f"freq_dims={cfg.freq_dims} is larger than the image side {side}")
        freq_dims = side if cfg.freq_dims is None else cfg.freq_dims
        if cfg.basis == "dct":
            dh, dw = (
                dct_matrix(shape[1], x.device, x.dtype),
                dct_matrix(shape[2], x.device, x.dtype),
            )
        else:
            dh = dw = None
        with eval_mode(model):
            with torch.no_grad(), runtime.autocast():
                oracle = QueryOracle(model, x, y, budget, cfg.count_clean_query)
                g = runtime.generator(device=x.device)
                order = coordinate_order(shape, freq_dims, cfg.order, cfg.stride, g)
                delta = torch.zeros_like(x)
                prob_best = true_prob(oracle.clean_logits, y)
                for k in order.tolist():
                    if not len(oracle.live()):
                        break
                    direction = basis_image(k, x[0], dh, dw)
                    simba_step(oracle, delta, prob_best, direction, cfg.step, eps, norm)
        return oracle.result()
