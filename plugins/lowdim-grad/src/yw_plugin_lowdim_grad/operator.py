"""Φ, the n x p matrix of normalised fitting gradients (row i = φ(x_i)), as a linear operator.

Φ is never formed: its products come from the gradient map's JVPs and VJPs, a batch of
fitting inputs at a time. With T = s ⊙ Y (the scale applied to each row of a p x b block):

- Φ Y   = Φ_raw T − 1 (z̄ᵀ T)                     (`matvec`, n x b)
- Φᵀ W  = s ⊙ (Φ_rawᵀ W − z̄ (1ᵀ W))               (`rmatvec`, p x b)
- ΦᵀΦ Y = Σ_batches Φ_bᵀ (Φ_b Y)                   (`gram`, p x b, one pass over the data)

In the NTK mode s = 1 and z̄ = 0. The memory of one product is b x p plus b copies of a
batch's activations, whatever n is (official code: `jacobian_matrix_product`,
`matrix_jacobian_product`).
"""

from __future__ import annotations

import torch

from yw_plugin_lowdim_grad.gradients import GradientMap
from yw_plugin_lowdim_grad.normalise import Normalisation


class FitJacobian:
    """Products with Φ of the fitting inputs `x` (kept where they are, moved a batch at a
    time)."""

    def __init__(self, gmap: GradientMap, norm: Normalisation, x: torch.Tensor, batch_size: int):
        self.gmap, self.norm, self.x, self.batch_size = gmap, norm, x, batch_size
        self.n, self.p = len(x), gmap.p

    def _batches(self):
        start = 0
        for batch in self.x.split(self.batch_size):
            yield slice(start, start + len(batch)), batch.to(self.gmap.device)
            start += len(batch)

    def _scaled(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(T, z̄ᵀT): the block the raw JVP takes, and the mean's share of Φ Y."""
        if not self.norm.nfk:
            return y, None
        t = self.norm.scale[:, None] * y
        return t, self.norm.mean @ t

    def _finish(self, raw: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """s ⊙ (raw − z̄ (1ᵀW)) from Φ_rawᵀ W and the column sums of W."""
        if not self.norm.nfk:
            return raw
        return self.norm.scale[:, None] * (raw - self.norm.mean[:, None] * weights[None, :])

    def matvec(self, y: torch.Tensor) -> torch.Tensor:
        """Φ Y for Y of shape (p, b): (n, b)."""
        t, shift = self._scaled(y)
        out = torch.empty(self.n, y.shape[1], device=y.device)
        for rows, batch in self._batches():
            out[rows] = self.gmap.jvp(batch, t) - (0 if shift is None else shift)
        return out

    def rmatvec(self, w: torch.Tensor) -> torch.Tensor:
        """Φᵀ W for W of shape (n, b): (p, b)."""
        w = w.to(self.gmap.device)
        raw = torch.zeros(self.p, w.shape[1], device=w.device)
        for rows, batch in self._batches():
            raw += self.gmap.vjp(batch, w[rows])
        return self._finish(raw, w.sum(0))

    def gram(self, y: torch.Tensor) -> torch.Tensor:
        """ΦᵀΦ Y for Y of shape (p, b): (p, b), one JVP and one VJP per batch."""
        t, shift = self._scaled(y)
        raw = torch.zeros_like(y)
        sums = torch.zeros(y.shape[1], device=y.device)
        for _, batch in self._batches():
            u = self.gmap.jvp(batch, t) - (0 if shift is None else shift)
            raw += self.gmap.vjp(batch, u)
            sums += u.sum(0)
        return self._finish(raw, sums)
