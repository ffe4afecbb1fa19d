"""The low-dimensional gradient feature h(x) = Vᵀφ(x), k numbers per input.

Per-sample gradients are computed `chunk_size` inputs at a time; then, one parameter tensor at
a time, its gradient rows are normalised in place (− z̄, ⊙ s) and multiplied by that parameter's
rows of V, and the products are summed. The full gradient is never concatenated, so the peak
memory is V plus chunk_size x p, whatever the batch (the official code flattens a whole batch's
gradients with torch.cat, normalises them into new tensors and then does one matmul).

We scale the chunk rather than the basis (the official code's JVP route multiplies V by s):
(s ⊙ (g − z̄))ᵀ v = (g − z̄)ᵀ (s ⊙ v), and V stays orthonormal in its storage dtype.

V may be stored in float16 or bfloat16 (`basis_dtype`, for large models on a GPU). Then each
chunk's normalised rows are divided by their largest magnitude (so they lie in [-1, 1] and cannot
overflow float16), cast to V's dtype, multiplied, and scaled back in float32; the sum over
parameters is float32. The error is about the dtype's rounding (float16: ~3e-4 relative to h;
bfloat16: ~3e-3).
"""

from __future__ import annotations

import torch

from yw_plugin_lowdim_grad.gradients import GradientMap
from yw_plugin_lowdim_grad.normalise import Normalisation


def _product(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """g @ v in float32, g (c, m) float32 (overwritten), v (m, k) in its storage dtype."""
    if v.dtype == torch.float32:
        return g @ v
    peak = torch.linalg.vector_norm(g, float("inf"), dim=1, keepdim=True)  # no |g| copy
    peak = peak.clamp_min(torch.finfo(torch.float32).tiny)
    return (g.div_(peak).to(v.dtype) @ v).float() * peak


def project(
    gmap: GradientMap,
    norm: Normalisation,
    basis: torch.Tensor,
    x: torch.Tensor,
    chunk_size: int,
) -> torch.Tensor:
    """h = Vᵀφ(x) for inputs x (any device): (N, k) float32 on the gradient map's device."""
    device = gmap.device
    out = torch.empty(len(x), basis.shape[1], device=device)
    start = 0
    for chunk in x.split(chunk_size):
        grads = gmap.per_sample(chunk.to(device))
        h = torch.zeros(len(chunk), basis.shape[1], device=device)
        for name, rows in gmap.slices.items():
            # contiguous: vmap may return an expanded tensor for a gradient that is the same
            # for every sample (a parameter the output does not depend on), which in-place
            # normalisation cannot write to
            g = norm.apply_(grads.pop(name).reshape(len(chunk), -1).contiguous(), rows)
            h += _product(g, basis[rows])
        out[start : start + len(chunk)] = h
        start += len(chunk)
    return out
