"""W8A16: the per-token FFN weights stored as int8 with one scale per output channel.

UG-Sep quantises the weight-loading-bound GEMMs of the user side (small M) to int8 weights with
16-bit activations (the paper's Tab. 4). The granularity is not published: ours is symmetric,
one scale per (token, output channel) of both FFN matrices, `s = max|w| / 127`,
`q = round(w / s)`; the matmul dequantises `q·s` to the activations' dtype first, so the
activations keep whatever precision the model runs in (fp32 on CPU, fp16/bf16 where the caller
casts). Every weight is within s/2 of its original (`dequantisation_error_bound`).
"""

from __future__ import annotations

import torch
from torch import nn

from yw_plugin_ugsep.mixer import PerTokenFFN


def quantize_int8(weight: torch.Tensor, reduce_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 of `weight` with one scale per slice along `reduce_dim` (the input dim):
    (q int8, scale float32 broadcastable to weight)."""
    w = weight.detach().float()
    scale = w.abs().amax(dim=reduce_dim, keepdim=True) / 127
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero channel stays 0
    q = torch.round(w / scale).clamp_(-127, 127).to(torch.int8)
    return q, scale


class Int8PerTokenFFN(PerTokenFFN):
    """A trained PerTokenFFN with int8 weights and float scales (buffers); biases kept as float."""

    def __init__(self, ffn: PerTokenFFN):
        nn.Module.__init__(self)
        q1, s1 = quantize_int8(ffn.w1, reduce_dim=1)  # w1 (T, D, kD): input dim 1
        q2, s2 = quantize_int8(ffn.w2, reduce_dim=1)  # w2 (T, kD, D): input dim 1
        for name, value in {"q1": q1, "s1": s1, "q2": q2, "s2": s2}.items():
            self.register_buffer(name, value)
        self.register_buffer("b1", ffn.b1.detach().clone())
        self.register_buffer("b2", ffn.b2.detach().clone())

    def weights(self, tokens: slice, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            self.q1[tokens].to(dtype) * self.s1[tokens].to(dtype),
            self.q2[tokens].to(dtype) * self.s2[tokens].to(dtype),
        )

    def dequantisation_error_bound(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-weight bound on |w - q·s| for W1 and W2: half a step, s/2."""
        return self.s1 / 2, self.s2 / 2


def quantize_model(model: nn.Module) -> nn.Module:
    """Replace every PerTokenFFN of `model` in place by its Int8PerTokenFFN; returns `model`."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is PerTokenFFN:
                setattr(module, name, Int8PerTokenFFN(child))
    return model
