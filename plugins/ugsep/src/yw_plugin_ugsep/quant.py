"""W8A16: the per-token FFN weights stored as int8 with one scale per output channel.

UG-Sep quantises the weight-loading-bound GEMMs of the user side (small M) to int8 weights with
16-bit activations (the paper's Tab. 4). The granularity is not published: ours is symmetric,
one scale per (token, output channel) of both FFN matrices, `s = max|w| / 127`,
`q = round(w / s)`. Every weight is within s/2 of its original (`dequantisation_error_bound`).

Two matmul paths:

- a single row (the user side of a served request, computed once) on the CPU goes through
  torch's fused int8 weight-only kernel `torch._weight_int8pack_mm` with bf16 activations
  (bias and GELU in bf16 too), token by token: the W8A16 GEMM proper, which reads a quarter of
  fp32's weight bytes;
- everything else (the C candidates' item side, training-size batches, other devices, a torch
  without that op) dequantises `q·s` to the activations' dtype and runs the matmul in it.

So a quantised model's `serve` and `forward` agree to bf16 precision, not to fp32's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


def fused_kernel_available() -> bool:
    """Whether this torch has the fused int8 weight-only matmul the single-row path uses."""
    return hasattr(torch, "_weight_int8pack_mm")


class Int8PerTokenFFN(PerTokenFFN):
    """A trained PerTokenFFN with int8 weights and float scales (buffers); biases kept as float."""

    fused_rows: int = 1  # rows up to this take the fused bf16 kernel on the CPU

    def __init__(self, ffn: PerTokenFFN):
        nn.Module.__init__(self)
        q1, s1 = quantize_int8(ffn.w1, reduce_dim=1)  # w1 (T, D, kD): input dim 1
        q2, s2 = quantize_int8(ffn.w2, reduce_dim=1)  # w2 (T, kD, D): input dim 1
        # int8 kept once, per token (out, in): the fused kernel's layout; scales (T, 1, out)
        self.register_buffer("q1", q1.transpose(1, 2).contiguous())
        self.register_buffer("q2", q2.transpose(1, 2).contiguous())
        self.register_buffer("s1", s1)
        self.register_buffer("s2", s2)
        self.register_buffer("b1", ffn.b1.detach().clone())
        self.register_buffer("b2", ffn.b2.detach().clone())
        # the fused kernel's bf16 scales and first bias, converted once
        self.register_buffer("s1_bf16", s1[:, 0].bfloat16().contiguous(), persistent=False)
        self.register_buffer("s2_bf16", s2[:, 0].bfloat16().contiguous(), persistent=False)
        self.register_buffer("b1_bf16", self.b1.bfloat16(), persistent=False)

    def weights(self, tokens: slice, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            self.q1[tokens].transpose(1, 2).to(dtype) * self.s1[tokens].to(dtype),
            self.q2[tokens].transpose(1, 2).to(dtype) * self.s2[tokens].to(dtype),
        )

    def forward(self, x: torch.Tensor, tokens: slice = slice(None)) -> torch.Tensor:
        if len(x) <= self.fused_rows and x.device.type == "cpu" and fused_kernel_available():
            return self._fused(x, tokens)
        return super().forward(x, tokens)

    def _fused(self, x: torch.Tensor, tokens: slice) -> torch.Tensor:
        """Token by token in bf16: int8 weights, bf16 activations, bias and GELU; the second
        bias is added in the input's dtype."""
        ids = range(*tokens.indices(len(self.q1)))
        xb = x.bfloat16()
        out = []
        for i, t in enumerate(ids):
            h = torch._weight_int8pack_mm(xb[:, i], self.q1[t], self.s1_bf16[t])
            h = F.gelu(h + self.b1_bf16[t])
            out.append(torch._weight_int8pack_mm(h, self.q2[t], self.s2_bf16[t]))
        return torch.stack(out, 1).to(x.dtype) + self.b2[tokens]

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
