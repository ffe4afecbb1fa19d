"""The gradient's normalisation: φ(x) = s ⊙ (g(x) − z̄) (NFK, the neural Fisher kernel) or
φ(x) = g(x) (NTK).

On the fitting inputs (official code: `pre_compute`):

- z̄ = mean of the per-sample gradients, from one backward product per batch (Σ_i g(x_i));
- L = mean of (g(x_i) − z̄)², the diagonal of the gradient covariance, from per-sample gradients
  in chunks, accumulated in float64;
- s = L^(-1/2). An entry whose variance is 0 (or so small that s overflows float32) is infinite;
  `fill_infinite` replaces it by max(largest finite entry, 1).

The last rule is what the official code does in two steps (inf -> 1, then every entry equal to
1 -> the maximum), written plainly; the official second step would also move entries that are
exactly 1.0 before any replacement, which we leave alone. Where the variance is 0 the gradient
equals z̄ on every fitting input, so φ is 0 there on that data whatever s is.
"""

from __future__ import annotations

import torch

from yw_plugin_lowdim_grad.gradients import GradientMap


def fill_infinite(scale: torch.Tensor) -> torch.Tensor:
    """`scale` with its infinite entries replaced by max(largest finite entry, 1)."""
    finite = torch.isfinite(scale)
    if bool(finite.all()):
        return scale
    largest = float(scale[finite].max()) if bool(finite.any()) else 1.0
    return torch.where(finite, scale, torch.full_like(scale, max(largest, 1.0)))


class Normalisation:
    """z̄ and s of the NFK mode (both None in the NTK mode, where φ = g)."""

    def __init__(self, mean: torch.Tensor | None = None, scale: torch.Tensor | None = None):
        self.mean, self.scale = mean, scale

    @property
    def nfk(self) -> bool:
        return self.mean is not None

    @classmethod
    def fit(
        cls,
        gmap: GradientMap,
        x: torch.Tensor,
        *,
        mode: str,
        chunk_size: int,
        batch_size: int,
    ) -> Normalisation:
        """z̄ and s from the fitting inputs `x` (on any device; moved a batch at a time)."""
        if mode == "ntk":
            return cls()
        device, n = gmap.device, len(x)
        total = torch.zeros(gmap.p, dtype=torch.float64, device=device)
        for batch in x.split(batch_size):
            ones = torch.ones(len(batch), 1, device=device)
            total += gmap.vjp(batch.to(device), ones)[:, 0].double()
        mean = total / n
        squares = torch.zeros_like(total)
        for chunk in x.split(chunk_size):
            grads = gmap.per_sample(chunk.to(device))
            for name, rows in gmap.slices.items():
                deviation = grads.pop(name).reshape(len(chunk), -1).double() - mean[rows]
                squares[rows] += deviation.square().sum(0)
        scale = fill_infinite((squares / n).rsqrt().float())
        return cls(mean.float(), scale)

    def apply_(self, g: torch.Tensor, rows: slice) -> torch.Tensor:
        """φ in place on g, (B, |rows|): the raw gradients of the parameter at `rows`."""
        if self.nfk:
            g.sub_(self.mean[rows]).mul_(self.scale[rows])
        return g

    def phi(self, g: torch.Tensor) -> torch.Tensor:
        """φ of flat gradients g, (B, p) (a new tensor)."""
        return self.apply_(g.clone(), slice(None))
