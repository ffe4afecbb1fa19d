"""Training in a low-dimensional weight subspace: the pieces TWA (and Sub-AT) share.

A subspace is described by rows in the flattened parameter space (D = all parameters of a model,
in `named_parameters()` order). This module holds:

- `flatten` / `unflatten` / `assign_`: one flat vector from tensors (or a state dict) and back;
- `validate_checkpoints` / `stack_checkpoints`: checked parameter state dicts, their n x D matrix;
- `gram_schmidt` (orthonormal rows, in order) and `pca_directions` (top principal directions);
- `Projector` (g -> Pᵀ P g, optionally from a row shard summed over ranks) and
  `ProjectedOptimizer` (projects `.grad` before the base optimizer steps);
- `quantize` / `Quantized`: low-bit uniform quantisation of directions, stored as uint8;
- `subspace_sharpness` (the largest curvature of a loss inside span(P), by Hessian-vector
  products) and `momentum_lr_bound` (the learning rate momentum SGD stays stable below).

Nothing here picks a device: tensors stay where the caller put them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from yw_core.interfaces import TrainStep

# ------------------------------------------------------------------------------ flat vectors


def flatten(tensors: Iterable[torch.Tensor] | Mapping[str, torch.Tensor]) -> torch.Tensor:
    """One 1-D tensor from tensors (or a state dict's values, in its order), detached."""
    if isinstance(tensors, Mapping):
        tensors = tensors.values()
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def unflatten(vector: torch.Tensor, shapes: Sequence[torch.Size | tuple[int, ...]]) -> list:
    """Views of `vector` with the given shapes (the inverse of `flatten`)."""
    sizes = [int(torch.Size(s).numel()) for s in shapes]
    if vector.dim() != 1 or vector.numel() != sum(sizes):
        raise ValueError(
            f"vector of shape {tuple(vector.shape)} does not hold {sum(sizes)} values for "
            f"{len(sizes)} tensors"
        )
    return [v.view(s) for v, s in zip(vector.split(sizes), shapes)]


@torch.no_grad()
def assign_(params: Sequence[torch.Tensor], vector: torch.Tensor) -> None:
    """Copy a flat vector into parameters in place (the model's weights become `vector`)."""
    torch._foreach_copy_(list(params), unflatten(vector, [p.shape for p in params]))


def flatten_grads(params: Sequence[torch.Tensor], out: torch.Tensor | None = None) -> torch.Tensor:
    """The parameters' gradients as one vector (zeros where `.grad` is None), into `out`."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    return torch.cat([g.reshape(-1) for g in grads], out=out)


# ------------------------------------------------------------------------------ checkpoints


def validate_checkpoints(
    checkpoints: Sequence[Mapping[str, torch.Tensor]], model: nn.Module | None = None
) -> list[dict[str, torch.Tensor]]:
    """Check checkpoints and keep only their parameters, in the model's order.

    `checkpoints` are parameter state dicts (name -> tensor) or full state dicts; with `model`,
    keys that are the model's buffers (BN statistics) are dropped and every parameter must be
    there with the model's shape. Without it, all must match the first checkpoint. Raises a
    ValueError naming the first problem: fewer than 2 checkpoints, a missing or unknown key, or a
    shape that differs (with both shapes).
    """
    if isinstance(checkpoints, Mapping) or not isinstance(checkpoints, Sequence):
        raise ValueError(
            f"checkpoints must be a list of state dicts, got {type(checkpoints).__name__}"
        )
    if len(checkpoints) < 2:
        raise ValueError(f"need at least 2 checkpoints to span a subspace, got {len(checkpoints)}")
    for i, ckpt in enumerate(checkpoints):
        if not isinstance(ckpt, Mapping):
            raise ValueError(
                f"checkpoint {i} is a {type(ckpt).__name__}, not a mapping of parameter names "
                "to tensors"
            )
    if model is not None:
        shapes = {n: p.shape for n, p in model.named_parameters()}
        known = set(model.state_dict()) | set(shapes)
        where = "the model"
    else:
        shapes = {n: torch.as_tensor(t).shape for n, t in checkpoints[0].items()}
        known = set(shapes)
        where = "checkpoint 0"
    kept = []
    for i, ckpt in enumerate(checkpoints):
        for name in ckpt:
            if name not in known:
                raise ValueError(
                    f"checkpoint {i} has {name!r}, which {where} does not have "
                    "(checkpoints of a different architecture?)"
                )
        for name, shape in shapes.items():
            if name not in ckpt:
                raise ValueError(f"checkpoint {i} lacks parameter {name!r} of {where}")
            got = torch.as_tensor(ckpt[name]).shape
            if got != shape:
                raise ValueError(
                    f"checkpoint {i} does not match {where} at {name!r}: shape {tuple(got)} in "
                    f"the checkpoint, {tuple(shape)} in {where}"
                )
        kept.append({name: torch.as_tensor(ckpt[name]) for name in shapes})
    return kept


def stack_checkpoints(
    checkpoints: Sequence[Mapping[str, torch.Tensor]],
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The n x D matrix whose rows are the flattened checkpoints (validate them first)."""
    first = flatten(checkpoints[0])
    rows = torch.empty(len(checkpoints), first.numel(), device=device, dtype=dtype)
    for i, ckpt in enumerate(checkpoints):
        rows[i] = first if i == 0 else flatten(ckpt)
    return rows


# ------------------------------------------------------------------------------ bases


def _check_rows(rows: torch.Tensor) -> None:
    if rows.dim() != 2 or not rows.is_floating_point():
        raise ValueError(
            f"rows must be a 2-D float tensor (n x D), got {rows.dtype} {tuple(rows.shape)}"
        )
    if not torch.isfinite(rows).all():
        raise ValueError("rows contain NaN or inf")


@torch.no_grad()
def gram_schmidt(rows: torch.Tensor, tol: float = 1e-5) -> torch.Tensor:
    """Orthonormal rows P (k x D) spanning the rows of `rows` (n x D), built in order, uncentred.

    Row i of P is row i of the input minus its projection on the rows of P before it, normalised:
    P's first j rows span the first j inputs (TWA's ICLR construction). Each row is orthogonalised
    twice (classical Gram-Schmidt with one re-orthogonalisation), which keeps P Pᵀ = I to float
    rounding (about 1e-6 in float32) however correlated the inputs are. A row whose remainder
    after both passes is at most `tol` times its own norm lies (numerically) in the span of the
    rows before it and is dropped, as is a zero row, so k <= n. Runs on the input's device.
    """
    _check_rows(rows)
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    basis = torch.empty_like(rows)
    k = 0
    for row in rows:
        norm0 = torch.linalg.vector_norm(row)
        if norm0 == 0:
            continue
        v = row.clone()
        for _ in range(2):
            if k:
                v.addmv_(basis[:k].t(), basis[:k] @ v, alpha=-1)
        norm = torch.linalg.vector_norm(v)
        if norm <= tol * norm0:
            continue
        basis[k] = v / norm
        k += 1
    return basis if k == len(rows) else basis[:k].clone()


@torch.no_grad()
def pca_directions(rows: torch.Tensor, k: int, center: bool = True) -> torch.Tensor:
    """The top-k principal directions (k x D, orthonormal) of a trajectory of n weight vectors.

    With `center` the rows' mean is subtracted first (PCA); without it these are the top right
    singular vectors of the rows. Signs are fixed so each direction's largest-magnitude entry is
    positive, so the result does not depend on the SVD routine's sign choice.
    """
    _check_rows(rows)
    n, d = rows.shape
    limit = min(n - 1 if center else n, d)
    if not 1 <= k <= limit:
        raise ValueError(
            f"k must be in [1, {limit}] for {n} rows of length {d}"
            + (" (centring removes one dimension)" if center else "")
            + f", got {k}"
        )
    x = rows - rows.mean(0) if center else rows
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    directions = vh[:k]
    peak = directions.gather(1, directions.abs().argmax(1, keepdim=True))
    return directions * torch.where(peak < 0, -1.0, 1.0).to(directions.dtype)


def shard_rows(n: int, rank: int, world: int) -> slice:
    """The contiguous rows (of n) that rank `rank` of `world` holds; shard sizes differ by <= 1."""
    if not 0 <= rank < world:
        raise ValueError(
            f"shard must be (rank, world) with 0 <= rank < world, got ({rank}, {world})"
        )
    size, extra = divmod(n, world)
    start = rank * size + min(rank, extra)
    return slice(start, start + size + (rank < extra))


def sums_over_ranks(world: int) -> bool:
    """True when the parts of a `world`-way shard live on the ranks of the current process group
    and must be summed with an all-reduce; False in one process (checks the world size)."""
    if world == 1 or not (dist.is_available() and dist.is_initialized()):
        return False
    if dist.get_world_size() != world:
        raise ValueError(
            f"shard world size {world} differs from the process group's {dist.get_world_size()}"
        )
    return True


class Projector:
    """g -> Pᵀ(P g): the orthogonal projection onto the row space of an orthonormal P (k x D).

    With `shard=(rank, world)` it keeps only a contiguous block of P's rows (`shard_rows`), so
    each process stores k/world rows. When torch.distributed is initialised with `world`
    processes, `project` sums the shards' partial projections P_rᵀ(P_r g) with an all-reduce, so
    every rank gets the full Pᵀ P g (the rows are orthonormal, so the parts add up). Without a
    process group it returns this shard's part: the parts of all shards sum to the projection.
    """

    def __init__(self, basis: torch.Tensor, shard: tuple[int, int] | None = None):
        _check_rows(basis)
        rank, world = shard if shard is not None else (0, 1)
        self.total_rows, self.dim = basis.shape
        self.rows = shard_rows(self.total_rows, rank, world)
        self.basis = basis[self.rows].contiguous()
        self.reduce = sums_over_ranks(world)

    def project(self, g: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Pᵀ(P g) for a flat vector g of length D (written into `out` when given)."""
        if g.shape != (self.dim,):
            raise ValueError(f"g must be a vector of length {self.dim}, got {tuple(g.shape)}")
        out = torch.mv(self.basis.t(), torch.mv(self.basis, g), out=out)
        if self.reduce:
            dist.all_reduce(out)
        return out


class ProjectedOptimizer:
    """A base optimizer whose `step()` first replaces the parameters' gradient g by Pᵀ P g.

    `params` are the parameters in the order of the projector's coordinates (a model's
    `named_parameters()` order); a parameter without a gradient counts as a zero gradient and
    gets the projected one. Momentum and Adam states then only ever see projected gradients.
    Weight decay in the base optimizer adds wd * w after the projection, so the iterate stays in
    span(P) only when w itself is in it, as for TWA's uncentred span of checkpoints.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        projector: Projector,
        params: Sequence[torch.Tensor],
    ):
        self.optimizer = optimizer
        self.projector = projector
        self.params = list(params)
        numel = sum(p.numel() for p in self.params)
        if numel != projector.dim:
            raise ValueError(
                f"the parameters hold {numel} values but the projector's basis has length "
                f"{projector.dim}"
            )
        self._flat = self.params[0].new_empty(numel)
        self._projected = torch.empty_like(self._flat)
        self._views = unflatten(self._projected, [p.shape for p in self.params])

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero (or drop) the gradients, as the base optimizer does."""
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def project_gradients(self) -> None:
        """Replace every parameter's `.grad` by its part of Pᵀ P g."""
        for p in self.params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flatten_grads(self.params, out=self._flat)
        self.projector.project(self._flat, out=self._projected)
        torch._foreach_copy_([p.grad for p in self.params], self._views)

    def step(self) -> None:
        """Project the gradients, then step the base optimizer."""
        self.project_gradients()
        self.optimizer.step()


# ------------------------------------------------------------------------------ curvature


def subspace_sharpness(
    loss_fn,
    params: Sequence[torch.Tensor],
    basis: torch.Tensor,
    iters: int = 20,
    generator: torch.Generator | None = None,
) -> float:
    """λ_max of P H Pᵀ, H the Hessian of `loss_fn()` in `params` (flattened in order) and P the
    k x D orthonormal `basis`, by power iteration on Hessian-vector products along Pᵀv.

    `loss_fn` is called once; its graph serves every product. Power iteration finds the
    eigenvalue of largest magnitude; when that one is negative, a second run on P H Pᵀ − λ I
    finds the largest. Returns a Rayleigh quotient (it approaches λ_max from below)."""
    _check_rows(basis)
    params = list(params)
    grads = torch.autograd.grad(loss_fn(), params, create_graph=True)
    if sum(g.numel() for g in grads) != basis.shape[1]:
        raise ValueError(
            f"the parameters hold {sum(g.numel() for g in grads)} values but the basis has "
            f"length {basis.shape[1]}"
        )
    shapes = [p.shape for p in params]

    def product(v: torch.Tensor) -> torch.Tensor:  # P H Pᵀ v
        shaped = unflatten(torch.mv(basis.t(), v), shapes)
        hvp = torch.autograd.grad(grads, params, grad_outputs=shaped, retain_graph=True)
        return torch.mv(basis, torch.cat([h.reshape(-1) for h in hvp]))

    def power(shift: float) -> float:
        v = torch.randn(basis.shape[0], generator=generator).to(basis)
        v = v / v.norm()
        value = 0.0
        for _ in range(iters):
            w = product(v) - shift * v
            value = float(v @ w)
            if float(w.norm()) == 0.0:
                break
            v = w / w.norm()
        return value

    top = power(0.0)
    return top if top >= 0 else power(top) + top


def momentum_lr_bound(sharpness: float, momentum: float) -> float:
    """2 (1 + momentum) / λ: above this learning rate heavy-ball SGD diverges along a
    direction of curvature λ (the quadratic model); inf when λ <= 0."""
    return 2 * (1 + momentum) / sharpness if sharpness > 0 else float("inf")


# ------------------------------------------------------------------------------ quantisation


@dataclass
class Quantized:
    """x ≈ codes * scale + zero, with one (scale, zero) per row of x's last dimension."""

    codes: torch.Tensor  # uint8, x's shape
    scale: torch.Tensor  # x.shape[:-1] + (1,): (max - min) / (2**bits - 1)
    zero: torch.Tensor  # x.shape[:-1] + (1,): the row's minimum
    bits: int

    def dequantize(self) -> torch.Tensor:
        """The reconstruction, within scale/2 of the quantised input in each entry."""
        return torch.addcmul(self.zero, self.codes.to(self.scale.dtype), self.scale)


@torch.no_grad()
def quantize(x: torch.Tensor, bits: int) -> Quantized:
    """Uniform `bits`-bit quantisation (1..8) of each row of x's last dimension, stored as uint8.

    The row's range [min, max] is cut into 2**bits - 1 steps of size scale; each entry is
    rounded to the nearest level, so the dequantisation error is at most scale/2 (plus float
    rounding). A constant row has scale 0 and is reconstructed exactly.
    """
    if not isinstance(bits, int) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer in [1, 8], got {bits!r}")
    if x.dim() < 1 or x.shape[-1] == 0 or not x.is_floating_point():
        raise ValueError(f"x must be a non-empty float tensor, got {x.dtype} {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or inf")
    levels = 2**bits - 1
    low = x.amin(-1, keepdim=True)
    scale = (x.amax(-1, keepdim=True) - low) / levels
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    codes = ((x - low) / safe).round_().clamp_(0, levels).to(torch.uint8)
    return Quantized(codes=codes, scale=scale, zero=low, bits=bits)


class ProjectedStep(TrainStep):
    """A TrainStep for `yw_core.train.fit` that trains inside a subspace: forward/backward,
    g <- Pᵀ P g and the base step, all through `projected` (a ProjectedOptimizer). TWA (the span
    of checkpoints) and Sub-AT (w0 + principal directions of a trajectory) both use it."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        runtime,
        projected: ProjectedOptimizer,
    ):
        super().__init__(model, optimizer, runtime)
        self.projected = projected

    def step(self, batch, loss_fn) -> torch.Tensor:
        self.projected.zero_grad(set_to_none=True)
        loss = loss_fn(self.model, batch)
        loss.backward()
        self.projected.step()
        return loss.detach()
