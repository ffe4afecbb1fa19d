"""AAA's logit post-processing (spec §1(b)): a sawtooth margin target, a calibration term, Adam.

For logits z0 of shape (B, C), with c = argmax z0 and m0 = top1(z0) - top2(z0):

    attractor   a = (round(m0 / I + d) - d) * I,  d = 0.5  (bin midpoints; bin edges are k * I;
                rounding half up, so an edge belongs to the bin above it)
    linear      t = a - kappa * (m0 - a)                    (kappa = 1 mirrors m0 about a)
    sine        t = m0 - 0.7 * I * sin(pi * (1 - 2 * (m0 - a) / I))
    p_ref       = max softmax(z0 / T)
    loss(z)     = mean_b |m(z) - t| + w * mean_b |softmax(z)[c] - p_ref|

where m(z) is top1 - top2 of the current z (the top two are found again at every step). Starting
from z0, `iterations` Adam steps on z alone minimise the loss; then the top-1 class is enforced
(`enforce_top1`). `postprocess` does this with a hand-written gradient (`aaa_grad`) and Adam
written out as tensor ops, without autograd, so it runs under `torch.no_grad()` and
`torch.inference_mode()`; `postprocess_reference` does it with autograd and `torch.optim.Adam`.

The fast path keeps the logits transposed, (C, B), while it iterates: softmax and top-2 over the
leading dimension are several times faster on a CPU than over a short trailing one. Arithmetic is
float32 (float64 when the logits are float64); the result has the logits' dtype.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch

OFFSET = 0.5  # d: puts the attractors at bin midpoints (hard-coded in the reference)
SINE_AMPLITUDE = 0.7  # the sine variant's amplitude, as a fraction of the interval
BETAS = (0.9, 0.999)  # torch.optim.Adam defaults, as the reference uses
ADAM_EPS = 1e-8
GRAPH_CACHE_SIZE = 8  # captured CUDA graphs kept (one per batch shape, dtype, device, settings)

DEFAULTS = {  # the reference run's settings (spec §1(c))
    "variant": "linear",
    "interval": 6.0,
    "reverse_step": 1.0,
    "calibration_weight": 5.0,
    "iterations": 100,
    "lr": 0.1,
}


def attractor(m0: torch.Tensor, interval: float) -> torch.Tensor:
    """The midpoint of the bin [k*I, (k+1)*I) that holds each margin m0: (round(m0/I + d) - d)*I.

    The rounding is half-up (floor(x + 0.5)), so a margin on a bin edge belongs to the bin above,
    as the spec's half-open bins say. torch.round rounds half to even instead, which would send
    every even multiple of I (m0 = 0 included) to the bin below and give m0 = 0 a target of -I.
    """
    return (torch.floor(m0 / interval + OFFSET + 0.5) - OFFSET) * interval


def target_margin(
    m0: torch.Tensor, interval: float, reverse_step: float, variant: str = "linear"
) -> torch.Tensor:
    """The margin AAA aims for: m0 reflected about its bin's attractor (linear) or a sine wave."""
    a = attractor(m0, interval)
    if variant == "linear":
        return a - reverse_step * (m0 - a)
    if variant == "sine":
        return m0 - SINE_AMPLITUDE * interval * torch.sin(math.pi * (1 - 2 * (m0 - a) / interval))
    raise ValueError(f"variant must be 'linear' or 'sine', got {variant!r}")


def aaa_loss(
    z: torch.Tensor, c: torch.Tensor, t: torch.Tensor, p_ref: torch.Tensor, weight: float
) -> torch.Tensor:
    """The batch loss mean|m(z) - t| + weight * mean|softmax(z)[c] - p_ref|; z (B, C), c (B, 1)."""
    top = z.topk(2, dim=1).values
    p = z.softmax(1).gather(1, c).squeeze(1)
    return (top[:, 0] - top[:, 1] - t).abs().mean() + weight * (p - p_ref).abs().mean()


def aaa_grad(
    z: torch.Tensor, c: torch.Tensor, t: torch.Tensor, p_ref: torch.Tensor, weight: float
) -> torch.Tensor:
    """d aaa_loss / dz by hand (z (B, C), c (B, 1)); the fast path's gradient, transposed back."""
    zt, ct = z.t().contiguous(), c.t()
    return _grad_t(zt, ct, torch.zeros_like(zt).scatter_(0, ct, 1.0), t, p_ref, weight).t()


def _grad_t(zt, ct, onehot, t, p_ref, weight):
    """The gradient on transposed logits zt (C, B); ct (1, B) and onehot (C, B) mark class c.

    Margin term: +sign(m - t)/B on the current top-1 entry and -sign(m - t)/B on the top-2 entry.
    Calibration term: with q = softmax(z), p = q_c and dp/dz_j = q_j * ([j = c] - p), it is
    s * q_j * ([j = c] - p) where s = weight * sign(p - p_ref)/B.
    """
    batch = zt.shape[1]
    top, idx = zt.topk(2, dim=0)
    s_margin = (top[0] - top[1]).sub_(t).sign_().mul_(1.0 / batch)
    q = zt.softmax(0)
    p = q.gather(0, ct)
    s_cal = (p - p_ref).sign_().mul_(weight / batch)
    grad = (onehot - p).mul_(s_cal).mul_(q)
    return grad.scatter_add_(0, idx, torch.stack((s_margin, -s_margin)))


def check_logits(z0: torch.Tensor, temperature: float = 1.0) -> None:
    """ValueError unless z0 is a finite (batch, classes>=2) float tensor and temperature > 0."""
    if z0.dim() != 2:
        raise ValueError(f"logits must have shape (batch, classes), got {tuple(z0.shape)}")
    if z0.shape[1] < 2:
        raise ValueError(
            "AAA needs at least 2 classes (it reshapes the top-1 minus top-2 margin), "
            f"got {z0.shape[1]}"
        )
    if not z0.is_floating_point():
        raise ValueError(f"logits must be a floating-point tensor, got {z0.dtype}")
    if torch.isnan(z0).any():
        raise ValueError("logits contain NaN")
    if torch.isinf(z0).any():
        raise ValueError("logits contain inf")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def _setup(z0: torch.Tensor, cfg: dict, temperature: float):
    """Working-precision logits (B, C) and the fixed per-row quantities c (B, 1), t, p_ref (B,)."""
    work = z0.detach().to(torch.float64 if z0.dtype == torch.float64 else torch.float32)
    c = work.argmax(1, keepdim=True)
    top = work.topk(2, dim=1).values
    t = target_margin(top[:, 0] - top[:, 1], cfg["interval"], cfg["reverse_step"], cfg["variant"])
    p_ref = (work / temperature).softmax(1).max(1).values
    return work, c, t, p_ref


def _optimise(z0: torch.Tensor, cfg: dict, temperature: float) -> torch.Tensor:
    """The fast path after validation: no host synchronisation, so a CUDA graph can capture it."""
    work, c, t, p_ref = _setup(z0, cfg, temperature)
    zt, ct = work.t().contiguous(), c.t()
    onehot = torch.zeros_like(zt).scatter_(0, ct, 1.0)
    m, v = torch.zeros_like(zt), torch.zeros_like(zt)
    for k in range(1, cfg["iterations"] + 1):  # torch.optim.Adam's single-tensor arithmetic
        g = _grad_t(zt, ct, onehot, t, p_ref, cfg["calibration_weight"])
        m.lerp_(g, 1 - BETAS[0])
        v.mul_(BETAS[1]).addcmul_(g, g, value=1 - BETAS[1])
        denom = v.sqrt().div_(math.sqrt(1 - BETAS[1] ** k)).add_(ADAM_EPS)
        zt = zt.addcdiv(m, denom, value=-cfg["lr"] / (1 - BETAS[0] ** k))
    return _finish(zt.t(), work, c, z0.dtype)


def postprocess(
    z0: torch.Tensor, *, temperature: float = 1.0, cuda_graph: bool = False, **settings
) -> torch.Tensor:
    """AAA's defended logits for logits z0 (B, C), in z0's dtype: the fast path (no autograd).

    `settings` override DEFAULTS (variant, interval, reverse_step, calibration_weight,
    iterations, lr). With `cuda_graph=True` and z0 on a CUDA device, the whole optimisation is
    captured once per batch shape as a CUDA graph and replayed (elsewhere the flag is ignored).
    """
    cfg = {**DEFAULTS, **settings}
    check_logits(z0, temperature)
    if cuda_graph and z0.device.type == "cuda":
        return _graphed(z0, cfg, float(temperature))
    return _optimise(z0, cfg, temperature)


def postprocess_reference(z0: torch.Tensor, *, temperature: float = 1.0, **settings):
    """The same result with autograd and torch.optim.Adam: the slow, obviously-right path."""
    cfg = {**DEFAULTS, **settings}
    check_logits(z0, temperature)
    with torch.inference_mode(False), torch.enable_grad():  # normal tensors, even at call sites
        work, c, t, p_ref = _setup(z0, cfg, temperature)  # under inference_mode
        z = work.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=cfg["lr"], betas=BETAS, eps=ADAM_EPS, foreach=False)
        for _ in range(cfg["iterations"]):
            optimizer.zero_grad()
            aaa_loss(z, c, t, p_ref, cfg["calibration_weight"]).backward()
            optimizer.step()
    return _finish(z.detach(), work, c, z0.dtype)


def _finish(z, start, c, dtype) -> torch.Tensor:
    """Rows that overflowed go back to their start; cast to `dtype`; keep the top-1 class."""
    z = torch.where(torch.isfinite(z).all(1, keepdim=True), z, start)
    return enforce_top1(z.to(dtype), c)


def enforce_top1(z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Make argmax(z) == c on every row (c has shape (B, 1)), changing only rows where it is not.

    On such a row the logit of class c is raised to the next representable value (in z's dtype)
    above the largest other logit, so c is the unique maximum; every other entry is untouched.
    """
    others = z.scatter(1, c, -torch.inf).max(1, keepdim=True).values
    raised = torch.nextafter(others, torch.full_like(others, torch.inf))
    keep = z.argmax(1, keepdim=True) == c
    return z.scatter(1, c, torch.where(keep, z.gather(1, c), raised))


_graphs: OrderedDict = OrderedDict()


def _graphed(z0: torch.Tensor, cfg: dict, temperature: float) -> torch.Tensor:
    """Replay (capturing on first use) a CUDA graph of `_optimise` for z0's shape and settings."""
    key = (tuple(z0.shape), z0.dtype, z0.device, temperature, tuple(sorted(cfg.items())))
    if key not in _graphs:
        with torch.cuda.device(z0.device), torch.no_grad(), torch.inference_mode(False):
            static_in = z0.detach().clone()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up before capture, as CUDA graphs require
                for _ in range(2):
                    _optimise(static_in, cfg, temperature)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = _optimise(static_in, cfg, temperature)
        _graphs[key] = (graph, static_in, static_out)
        while len(_graphs) > GRAPH_CACHE_SIZE:
            _graphs.popitem(last=False)
    _graphs.move_to_end(key)
    graph, static_in, static_out = _graphs[key]
    static_in.copy_(z0.detach())
    graph.replay()
    return static_out.clone()
