"""Square Attack (Andriushchenko et al., ECCV 2020; spec §1): random search over square windows.

The original algorithm (max-andr/square-attack), batched over the live samples:
- L-inf: start from vertical stripes (one +-eps sign per image, channel and column); each step sets
  one square window of each image to a fresh +-eps per channel, redrawing the signs while the
  clipped candidate equals the current best on that window;
- L2: start from a grid of bumps eta(s0) with random signs, rescaled to the eps-sphere; each
  step moves the mass of a second window W2 into a first window W1 of the same side, adding a new
  bump eta(s) there;
- a candidate costs one query and is kept only if the loss strictly drops (`acceptance="down"`);
- the window side follows p_schedule on i / n_iters (not on the budget), so a run with a smaller
  budget is a prefix of a run with a larger one; the run stops when the budget is spent.

Choices where the original differs or is silent: window corners (and the L2 bump's transposition)
are drawn per image also for L2 (the original draws one per batch for L2); the L2 init tiles
h//s0 x w//s0 bumps as the original does (the spec's 5x5 holds for 28, 32, 224 and 299 pixels, not
for e.g. 8x8 images, where the original tiles 7x7 one-pixel bumps); the L2 side is capped at the
largest odd number below min(h, w), since corners need s < h; for non-square images the side is
clamped by min(h, w) and the L2 init grid is centred in each dimension separately.
`acceptance="up"|"bi"` are the adaptive counters of spec §7 against AAA's reversed margin trend.
"""

from __future__ import annotations

import functools
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
    cross_entropy,
    margin,
)

P_INIT = {"linf": 0.05, "l2": 0.1}
"""The original's p_init for standard (non-robust) models, per norm (spec §1 "Defaults")."""

# halving points of p on the rescaled iteration int(i / n_iters * 10000)
_BREAKS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(p_init: float, i: int, n_iters: int) -> float:
    """Fraction of pixels changed at step i: p_init, halved past each breakpoint of i / n_iters.

    Past n_iters it stays at p_init / 512 (the original jumps back to p_init: the spec's guard).
    """
    rescaled = int(i / n_iters * 10000)
    return p_init / 2 ** sum(rescaled > b for b in _BREAKS)


def square_side(p: float, h: int, w: int, norm: str) -> int:
    """Window side round(sqrt(p*h*w)): in [1, side-1] for L-inf; odd and in [3, side-1] for L2."""
    s = round(math.sqrt(p * h * w))
    limit = min(h, w) - 1  # corners are drawn from {0, ..., h - s - 1}, so s < h
    if norm == "linf":
        return min(max(s, 1), limit)
    s = max(s, 3)
    s += s % 2 == 0
    return min(s, limit if limit % 2 else limit - 1)


def _rings(rows: int, cols: int) -> torch.Tensor:
    """Concentric rectangles centred at (rows//2, cols//2), ring k adding 1/(k+1)^2; unit norm."""
    if rows == 0:
        return torch.zeros(0, cols, dtype=torch.float64)
    i = torch.arange(rows)[:, None]
    j = torch.arange(cols)[None, :]
    ring = torch.maximum((i - rows // 2).abs(), (j - cols // 2).abs())
    weights = 1.0 / torch.arange(1, max(rows // 2, cols // 2) + 2, dtype=torch.float64) ** 2
    tail = weights.flip(0).cumsum(0).flip(0)  # tail[d] = sum of the rings k >= d covering a cell
    block = tail[ring]
    return block / block.norm()


@functools.lru_cache(maxsize=64)
def bump(s: int) -> torch.Tensor:
    """The L2 bump eta(s): positive rings on the top s//2 rows, negative below; unit L2 norm.

    Cached: callers must not modify the returned tensor in place.
    """
    eta = torch.cat([_rings(s // 2, s), -_rings(s - s // 2, s)])
    return (eta / eta.norm()).float()


def _signs(shape: tuple[int, ...], g: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Uniform +-1 of the given shape, on like's device and dtype."""
    bits = torch.randint(0, 2, shape, generator=g, device=like.device)
    return (bits * 2 - 1).to(like.dtype)


def _corners(n: int, h: int, w: int, s: int, g: torch.Generator, device) -> tuple:
    """Per-image window corners, uniform in {0..h-s-1} x {0..w-s-1} (as the original)."""
    rows = torch.randint(0, h - s, (n,), generator=g, device=device)
    cols = torch.randint(0, w - s, (n,), generator=g, device=device)
    return rows, cols


def _window_mask(rows: torch.Tensor, cols: torch.Tensor, s: int, h: int, w: int) -> torch.Tensor:
    """(n, 1, h, w) boolean mask of each image's s x s window."""
    r = torch.arange(h, device=rows.device)
    c = torch.arange(w, device=cols.device)
    in_r = (r >= rows[:, None]) & (r < rows[:, None] + s)
    in_c = (c >= cols[:, None]) & (c < cols[:, None] + s)
    return (in_r[:, :, None] & in_c[:, None, :])[:, None]


def _window_index(rows: torch.Tensor, cols: torch.Tensor, s: int) -> tuple:
    """Advanced index selecting each image's s x s window as (n, s, s, c)."""
    offsets = torch.arange(s, device=rows.device)
    n = torch.arange(len(rows), device=rows.device)
    return (
        n[:, None, None],
        slice(None),
        (rows[:, None] + offsets)[:, :, None],
        (cols[:, None] + offsets)[:, None, :],
    )


def linf_init(x: torch.Tensor, eps: float, g: torch.Generator) -> torch.Tensor:
    """Vertical stripes: one +-eps per (image, channel, column), constant down the rows; clipped."""
    n, c, _, w = x.shape
    return (x + eps * _signs((n, c, 1, w), g, x)).clamp(0, 1)


def linf_candidate(
    x: torch.Tensor, x_best: torch.Tensor, s: int, eps: float, g: torch.Generator
) -> torch.Tensor:
    """x_best with one s x s window per image set to x +- eps (one sign per channel), clipped.

    The signs are redrawn for the images whose clipped candidate equals x_best on the window
    (capped at 64 draws: only an eps below float resolution could need more).
    """
    n, c, h, w = x.shape
    mask = _window_mask(*_corners(n, h, w, s, g, x.device), s, h, w)
    delta = x_best - x
    todo = torch.arange(n, device=x.device)
    for _ in range(64):
        if not len(todo):
            break
        fresh = torch.where(mask[todo], eps * _signs((len(todo), c, 1, 1), g, x), delta[todo])
        delta[todo] = fresh
        moved = ((x[todo] + fresh).clamp(0, 1) - x_best[todo]).abs() >= 1e-7
        todo = todo[~(moved & mask[todo]).flatten(1).any(1)]
    return (x + delta).clamp(0, 1)


def _to_sphere(x: torch.Tensor, delta: torch.Tensor, eps: float) -> torch.Tensor:
    """x + eps * delta / ||delta||_2 per image, clipped to [0, 1]."""
    norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return (x + eps * delta / norms).clamp(0, 1)


def _bumps(n: int, s: int, g: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """(n, 1, s, s) copies of eta(s), each transposed with probability 1/2."""
    eta = bump(s).to(device=like.device, dtype=like.dtype)
    flip = torch.randint(0, 2, (n, 1, 1, 1), generator=g, device=like.device).bool()
    return torch.where(flip, eta.T, eta)


def l2_init(x: torch.Tensor, eps: float, g: torch.Generator) -> torch.Tensor:
    """Tiles eta(s0), s0 = min(h, w)//5, signed per (image, channel, tile), on the eps-sphere.

    As the original: h//s0 x w//s0 tiles from the offset that centres a 5x5 grid, cut at the
    border, so a 5x5 grid for CIFAR, MNIST and ImageNet sizes (more for e.g. 8x8 or 24x24).
    """
    n, c, h, w = x.shape
    s0 = min(h, w) // 5
    top, left = (h - 5 * s0) // 2, (w - 5 * s0) // 2
    delta = torch.zeros_like(x)
    for r in range(top, top + h // s0 * s0, s0):
        for k in range(left, left + w // s0 * s0, s0):
            tile = _bumps(n, s0, g, x) * _signs((n, c, 1, 1), g, x)
            delta[:, :, r : r + s0, k : k + s0] = tile[:, :, : h - r, : w - k]
    return _to_sphere(x, delta, eps)


def l2_candidate(
    x: torch.Tensor, x_best: torch.Tensor, s: int, eps: float, g: torch.Generator
) -> torch.Tensor:
    """The L2 step: per image, move window W2's mass into window W1 with a new signed bump there."""
    n, c, h, w = x.shape
    delta = x_best - x
    r1, c1 = _corners(n, h, w, s, g, x.device)
    r2, c2 = _corners(n, h, w, s, g, x.device)
    w1, w2 = _window_mask(r1, c1, s, h, w), _window_mask(r2, c2, s, h, w)
    index1 = _window_index(r1, c1, s)

    def channel_norm(t):
        return t.square().sum((-2, -1), keepdim=True).sqrt()

    old = delta[index1].permute(0, 3, 1, 2)  # (n, c, s, s)
    norm_image = delta.flatten(1).norm(dim=1).view(n, 1, 1, 1)
    norm_union = channel_norm(delta * (w1 | w2))  # (n, c, 1, 1)
    new = _bumps(n, s, g, x) * _signs((n, c, 1, 1), g, x) + old / (1e-10 + channel_norm(old))
    budget = ((eps**2 - norm_image**2).clamp_min(0) / c + norm_union**2).sqrt()
    new = new / channel_norm(new).clamp_min(1e-12) * budget
    delta = delta * ~w2
    delta[index1] = new.permute(0, 2, 3, 1)
    return _to_sphere(x, delta, eps)


def accept(
    loss: torch.Tensor, best: torch.Tensor, up: torch.Tensor, threshold: float
) -> torch.Tensor:
    """Which candidates to keep: loss < best ("down"), or for samples in "up" mode (spec §7)
    loss > best or a jump below best by more than threshold."""
    down_rule = loss < best
    up_rule = (loss > best) | (loss - best < -threshold)
    return torch.where(up, up_rule, down_rule)


class Square(Attack):
    """Score-based random search on square windows: a query-efficient black-box attack."""

    name = "square"
    summary = "Square Attack: random search on square windows, L-inf and L2 (score-based)"
    paper = Paper(
        title="Square Attack: a query-efficient black-box adversarial attack via random search",
        authors=("Andriushchenko", "Croce", "Flammarion", "Hein"),
        year=2020,
        venue="ECCV",
        arxiv_id="1912.00049",
        code_url="https://github.com/max-andr/square-attack",
    )
    status = "stable"
    capabilities = Capabilities()

    class Config(AttackConfig):
        p_init: float | None = Field(
            None,
            gt=0,
            le=1,
            description="initial fraction of pixels in the window; None = the original's default "
            "for standard models, 0.05 (linf) or 0.1 (l2); robust models use 0.3",
        )
        n_iters: int = Field(
            10000, ge=1, description="horizon of the p schedule (independent of the budget)"
        )
        loss: Literal["margin", "ce"] = Field(
            "margin", description="margin z_y - max_j z_j (minimised) or CE (maximised)"
        )
        acceptance: Literal["down", "up", "bi"] = Field(
            "down",
            description="down: keep a strictly lower loss (the original); up / bi: the adaptive "
            "counters to AAA's reversed margin trend (spec §7)",
        )
        threshold: float = Field(
            3.0, ge=0, description="loss jump that 'up' accepts and that switches 'bi' to 'up'"
        )

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
            raise ValueError(f"Square needs images of shape (N, C, H, W), got {tuple(x.shape)}")
        smallest = 5 if norm == "l2" else 2
        if min(x.shape[2:]) < smallest:
            raise ValueError(
                f"Square {norm} needs images of at least {smallest}x{smallest} pixels, "
                f"got {tuple(x.shape[2:])}"
            )
        with eval_mode(model):
            with torch.no_grad(), runtime.autocast():
                oracle = QueryOracle(model, x, y, budget, self.config.count_clean_query)
                self._search(oracle, x, y, eps, norm, runtime.generator(device=x.device))
        return oracle.result()

    def _loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The minimised loss: margin, or minus the cross-entropy."""
        logits = logits.float()
        return margin(logits, y) if self.config.loss == "margin" else -cross_entropy(logits, y)

    def _search(self, oracle: QueryOracle, x, y, eps: float, norm: str, g) -> None:
        """Init (1 query), then one candidate per live sample and step until the budget is spent."""
        cfg = self.config
        p_init = P_INIT[norm] if cfg.p_init is None else cfg.p_init
        init, candidate = (linf_init, linf_candidate) if norm == "linf" else (l2_init, l2_candidate)
        h, w = x.shape[2:]
        idx = oracle.live()
        if not len(idx):
            return
        x_best = x.clone()
        x_best[idx] = init(x[idx], eps, g)
        best = torch.full((len(x),), float("inf"), device=x.device)
        best[idx] = self._loss(oracle.query(x_best[idx], idx), y[idx])
        oracle.keep(idx, x_best[idx])
        up = torch.full_like(best, cfg.acceptance == "up", dtype=torch.bool)
        i = 0
        while len(idx := oracle.live()):
            s = square_side(p_schedule(p_init, i, cfg.n_iters), h, w, norm)
            cand = candidate(x[idx], x_best[idx], s, eps, g)
            loss = self._loss(oracle.query(cand, idx), y[idx])
            better = accept(loss, best[idx], up[idx], cfg.threshold)
            if cfg.acceptance == "bi":
                up[idx] |= loss - best[idx] > cfg.threshold
            kept = idx[better]
            x_best[kept] = cand[better]
            best[kept] = loss[better]
            oracle.keep(kept, cand[better])
            i += 1
