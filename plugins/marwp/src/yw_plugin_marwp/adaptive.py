"""ARWP's adaptive noise (spec §5 (b)2-3): a Fisher-like scale per filter and the sigma ramp."""

from __future__ import annotations

import math

import torch

from yw_plugin_rwp.noise import FilterLayout


class FisherScale:
    """F, an un-normalised EMA of squared gradients at the perturbed point (F <- beta F + g^2,
    so the first update gives F = g^2), and the noise factor 1 / sqrt(1 + eta S_i) it implies.

    S_i sums F over output filter i and is shared by the filter's elements; a 1-D parameter has
    one S per element. F lives in the same flat layout as the noise, so `scale()` plugs straight
    into `FilterNoise.perturb`.
    """

    def __init__(self, layout: FilterLayout, *, eta: float, beta: float):
        if not eta >= 0:
            raise ValueError(f"eta (the strength of the adaptive scaling) must be >= 0, got {eta}")
        if not 0 <= beta <= 1:
            raise ValueError(f"beta (the decay of F) must be in [0, 1], got {beta}")
        self.layout = layout
        self.eta, self.beta = float(eta), float(beta)
        self.fisher = layout.empty()
        self._views = layout.views(self.fisher)
        self._rows = layout.rows(self.fisher)

    def views(self) -> list[torch.Tensor]:
        """F, one tensor per parameter (views: writing to them sets F)."""
        return self._views

    @torch.no_grad()
    def update(self) -> None:
        """F <- beta F + g^2 from each parameter's raw .grad (before weight decay or mixing);
        a parameter without a gradient keeps beta F."""
        torch._foreach_mul_(self._views, self.beta)
        pairs = [(f, p.grad) for f, p in zip(self._views, self.layout.params) if p.grad is not None]
        if pairs:
            fs, gs = (list(t) for t in zip(*pairs))
            torch._foreach_addcmul_(fs, gs, gs)

    @torch.no_grad()
    def scale(self) -> list[torch.Tensor]:
        """1 / sqrt(1 + eta S) per layout group: (filters, 1) for filter groups, element-wise for
        groups of 1-D parameters. All ones while F is zero (the first update is plain RWP)."""
        out = []
        for rows, (_, _, _, vector) in zip(self._rows, self.layout.groups):
            s = rows if vector else rows.sum(dim=1, keepdim=True)
            out.append(torch.rsqrt(s * self.eta + 1))
        return out


def ramped_sigma(sigma0: float, inc: float, progress: float) -> float:
    """sigma0 (1 + inc (1 - cos(pi t / T)) / 2) at progress t / T: sigma0 at 0, sigma0 (1 + inc)
    at 1 (values outside [0, 1] are clamped)."""
    t = min(max(progress, 0.0), 1.0)
    return sigma0 * (1 + inc * (1 - math.cos(math.pi * t)) / 2)
