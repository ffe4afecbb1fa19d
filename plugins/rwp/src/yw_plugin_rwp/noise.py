"""RWP's filter-wise Gaussian weight noise (spec §3 (b)1), added in place and removed exactly.

For a parameter W with more than one dimension, each output filter W_i (a row of W reshaped to
(out, -1)) gets noise N(0, (gamma ||W_i||)^2 I). A 1-D (or 0-D) parameter, such as a bias or a BN
affine weight, gets N(0, (gamma (||W|| + 1e-16))^2 I) with the norm of the whole vector.

Speed: the weights are copied into one flat buffer laid out by `FilterLayout`, which puts the
parameters whose filters have the same size next to each other, so each group is one 2-D
(filters, filter size) matrix. A perturbation is then one copy, one `normal_`, two ops per group
(norms, scaling) and one `_foreach_add_`; restoring is one `_foreach_copy_`. A ResNet-18 has
about 14 groups for its 62 parameters. Nothing syncs with the host.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

VECTOR_EPS = 1e-16  # added to the norm of a 1-D parameter, as in the reference


def trained_parameters(optimizer: torch.optim.Optimizer) -> list[nn.Parameter]:
    """The parameters `optimizer` updates that require grad, each once, in the optimizer's order."""
    seen: dict[int, nn.Parameter] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.requires_grad and p.numel() > 0:
                seen.setdefault(id(p), p)
    return list(seen.values())


class FilterLayout:
    """Where each parameter lives in one flat buffer, grouped so that every group is a 2-D
    (filters, filter size) matrix: per-filter statistics then cost one op per group.

    A group holds either filter rows of parameters with more than one dimension (`vector` False)
    or whole 1-D parameters of one length, one per row (`vector` True).
    """

    def __init__(self, params: Iterable[torch.Tensor]):
        self.params = list(params)
        if not self.params:
            raise ValueError("no parameters to perturb: the optimizer has no trainable parameters")
        kinds = {(p.device, p.dtype) for p in self.params}
        if len(kinds) > 1:
            found = ", ".join(f"{d}/{t}" for d, t in sorted(kinds, key=str))
            raise ValueError(
                f"all trained parameters must share one device and dtype, found {found}"
            )
        self.device, self.dtype = next(iter(kinds))
        by_key: dict[tuple[bool, int], list[int]] = {}
        for i, p in enumerate(self.params):
            vector = p.dim() <= 1
            row = p.numel() if vector else p[0].numel()
            by_key.setdefault((vector, row), []).append(i)
        self.offsets = [0] * len(self.params)
        self.groups: list[tuple[int, int, int, bool]] = []  # (start, rows, row size, vector)
        start = 0
        for (vector, row), members in by_key.items():
            group_start = start
            for i in members:
                self.offsets[i] = start
                start += self.params[i].numel()
            self.groups.append((group_start, (start - group_start) // row, row, vector))
        self.numel = start

    def empty(self) -> torch.Tensor:
        """A zeroed flat buffer for this layout, on the parameters' device and dtype."""
        return torch.zeros(self.numel, device=self.device, dtype=self.dtype)

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """One view of `flat` per parameter, shaped like it, in the parameters' order."""
        return [flat[o : o + p.numel()].view(p.shape) for o, p in zip(self.offsets, self.params)]

    def rows(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """One (filters, filter size) view of `flat` per group, in `self.groups` order."""
        return [flat[s : s + n * r].view(n, r) for s, n, r, _ in self.groups]


class FilterNoise:
    """Draws filter-wise noise for a fixed list of parameters, adds it in place, and restores
    the saved weights bit for bit (a copy back, not a subtraction)."""

    def __init__(self, params: Iterable[torch.Tensor], generator: torch.Generator):
        self.layout = FilterLayout(params)
        self.params = self.layout.params
        self.generator = generator
        self.saved = self.layout.empty()
        self.noise = self.layout.empty()
        self._saved_views = self.layout.views(self.saved)
        self._saved_rows = self.layout.rows(self.saved)
        self._noise_views = self.layout.views(self.noise)
        self._noise_rows = self.layout.rows(self.noise)

    @classmethod
    def for_optimizer(cls, optimizer: torch.optim.Optimizer, runtime) -> FilterNoise:
        """Noise for the optimizer's trained parameters from a generator on their device, seeded
        with `runtime.seed` (every rank gets the same stream)."""
        params = trained_parameters(optimizer)
        device = params[0].device if params else None
        return cls(params, runtime.generator(runtime.seed, device=device))

    @torch.no_grad()
    def draw(self, gamma: float, scale: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Fresh noise for the current weights, one tensor per parameter (views of an internal
        buffer that the next draw overwrites); the weights are not changed.

        `scale` (ARWP's adaptive factor) holds one tensor per layout group, broadcastable to
        that group's (filters, filter size) rows, that multiplies the std element-wise.
        """
        if not gamma >= 0:
            raise ValueError(f"gamma (the noise scale) must be >= 0, got {gamma}")
        if scale is not None and len(scale) != len(self.layout.groups):
            raise ValueError(
                f"scale must hold one tensor per layout group ({len(self.layout.groups)}), "
                f"got {len(scale)}"
            )
        torch._foreach_copy_(self._saved_views, self.params)
        self.noise.normal_(generator=self.generator)
        for i, (w, z, group) in enumerate(
            zip(self._saved_rows, self._noise_rows, self.layout.groups)
        ):
            std = torch.linalg.vector_norm(w, dim=1, keepdim=True)
            if group[3]:
                std.add_(VECTOR_EPS)
            std.mul_(gamma)
            z.mul_(std if scale is None else std * scale[i])
        return self._noise_views

    @torch.no_grad()
    def perturb(self, gamma: float, scale: Sequence[torch.Tensor] | None = None) -> None:
        """Save the weights, then add fresh noise to them in place (see `draw`)."""
        torch._foreach_add_(self.params, self.draw(gamma, scale))

    @torch.no_grad()
    def restore(self) -> None:
        """Copy the weights saved by the last `perturb` back, exactly."""
        torch._foreach_copy_(self.params, self._saved_views)
