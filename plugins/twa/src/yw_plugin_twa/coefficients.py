"""The journal TWA parameterisation: weights = checkpoint mean + trainable coefficients times
centred, per-tensor normalised, low-bit quantised checkpoint directions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.distributed as dist

from yw_core.subspace import Quantized, quantize, shard_rows, sums_over_ranks


class CoefficientSpace:
    """w_b = mean_b + sum_i X[i, b] * d_ib for every parameter tensor (block) b.

    d_ib is checkpoint i's tensor b minus the mean, scaled to unit norm and quantised to `bits`
    bits (uint8 codes, one scale and zero point per (i, b)). The coefficients X start at 0, so
    the weights start at the mean. With `shard=(rank, world)` this process holds the rows
    `shard_rows(n, rank, world)` of X and of the directions; under torch.distributed the partial
    sums are all-reduced, so every rank gets the same weights.
    """

    def __init__(
        self,
        checkpoints: Sequence[Mapping[str, torch.Tensor]],
        *,
        bits: int,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        shard: tuple[int, int] | None = None,
    ):
        rank, world = shard if shard is not None else (0, 1)
        self.rows = shard_rows(len(checkpoints), rank, world)
        self.reduce = sums_over_ranks(world)
        mine = checkpoints[self.rows]
        means, self.slices, self.directions = [], [], []
        offset = 0
        for name in checkpoints[0]:
            first = checkpoints[0][name]
            mean = _rows(checkpoints, name, first, device, dtype).mean(0)
            means.append(mean)
            self.slices.append(slice(offset, offset + mean.numel()))
            mine_rows = _rows(mine, name, first, device, dtype)
            self.directions.append(_direction(mine_rows - mean, bits))
            offset += mean.numel()
        self.mean = torch.cat(means)
        self.coefficients = torch.zeros(
            len(mine), len(self.slices), device=device, dtype=dtype, requires_grad=True
        )

    def coefficient_grad(self, g: torch.Tensor) -> torch.Tensor:
        """dL/dX for this shard's rows, from the flat gradient g = dL/dw: d_ib . g_b."""
        columns = []
        for part, q in zip(self.slices, self.directions):  # d = codes * scale + zero, per row
            gb = g[part]
            column = torch.mv(q.codes.to(gb.dtype), gb).mul_(q.scale[:, 0])
            columns.append(column.add_(q.zero[:, 0] * gb.sum()))
        return torch.stack(columns, dim=1)

    @torch.no_grad()
    def weights(self) -> torch.Tensor:
        """The flat weights mean + sum_i X[i, b] * d_ib (summed over ranks when sharded)."""
        delta = torch.empty_like(self.mean)
        x = self.coefficients.detach()
        for b, (part, q) in enumerate(zip(self.slices, self.directions)):
            xb = x[:, b]
            torch.mv(q.codes.to(xb.dtype).t(), xb * q.scale[:, 0], out=delta[part])
            delta[part] += (xb * q.zero[:, 0]).sum()
        if self.reduce:
            dist.all_reduce(delta)
        return delta.add_(self.mean)


def _rows(checkpoints, name: str, like: torch.Tensor, device, dtype) -> torch.Tensor:
    """Tensor `name` of each checkpoint, flattened, as the rows of a matrix (maybe 0 rows)."""
    rows = [c[name].reshape(-1) for c in checkpoints]
    if not rows:
        return torch.zeros(0, like.numel(), device=device, dtype=dtype)
    return torch.stack(rows).to(device, dtype)


def _direction(rows: torch.Tensor, bits: int) -> Quantized:
    """Centred rows scaled to unit norm (zero rows stay zero), quantised to `bits` bits."""
    if not len(rows):  # a shard with no rows (more ranks than checkpoints)
        column = rows.new_zeros(0, 1)
        codes = torch.zeros(rows.shape, dtype=torch.uint8, device=rows.device)
        return Quantized(codes=codes, scale=column, zero=column, bits=bits)
    norms = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
    return quantize(torch.where(norms > 0, rows / norms.clamp_min(1e-30), 0.0), bits)
