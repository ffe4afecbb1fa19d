"""The subspace V (p x k) the gradients are projected onto.

`pca_basis`: the top-k right singular vectors of Φ by randomized block power iteration, b
columns at a time, using only Φ's products (official code: `truncated_svd_dataloader` with
`qr_alter`). Each block draws a random orthonormal Ω (n x b), takes Y = ΦᵀΩ, then repeats
`iterations` times Y <- ΦᵀΦ Y, removes the earlier blocks' columns from Y and orthonormalises it
(QR). Finally B = Φ Y (n x b), Bᵀ = P Σ Qᵀ, and the block's columns are Y P, ordered by
singular value. One difference from the official loop, which gives the same span: Y is also
orthonormalised (against the earlier blocks too) right after Y = ΦᵀΩ, so `iterations=0` still
gives orthonormal columns and the first product cannot overflow.

`explicit_pca_basis`: the same top-k directions exactly, from Φ formed in memory a chunk of
per-sample gradients at a time (n x p float32) and the eigenvectors of the n x n Gram matrix ΦΦᵀ
(float64): V = Φᵀ U Σ⁻¹. One pass over the data instead of the power iteration's
2 x iterations x k/b; for problems small enough to hold Φ (the scorer's `solver="auto"`).

`avg_grad_basis`: one column per class, v_c = s ⊙ (mean_{x in c} g(x) − z̄) = Φᵀ M with M the
class-membership matrix scaled by 1/n_c, normalised to unit norm and **not** orthogonalised
(official code: `cal_grad_per_class`, `generate_feature`).
"""

from __future__ import annotations

import torch

from yw_plugin_lowdim_grad.gradients import GradientMap
from yw_plugin_lowdim_grad.normalise import Normalisation
from yw_plugin_lowdim_grad.operator import FitJacobian


def _orthonormalise(y: torch.Tensor, earlier: torch.Tensor) -> torch.Tensor:
    """Y with the span of `earlier` (orthonormal columns) removed, then QR-orthonormalised.
    The projection is applied twice (classical Gram-Schmidt, re-orthogonalised)."""
    for _ in range(2 if earlier.shape[1] else 0):
        y = y - earlier @ (earlier.T @ y)
    return torch.linalg.qr(y).Q


def pca_basis(
    phi: FitJacobian,
    k: int,
    *,
    block_size: int,
    iterations: int,
    generator: torch.Generator,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(V, σ): V (p x k) with orthonormal columns spanning Φ's top right singular vectors, and
    the singular values each block found (k,). Ω is drawn on the CPU from `generator`; a tqdm
    bar over the blocks when `progress`."""
    from tqdm.auto import tqdm

    check_k(k, phi.n, phi.p)
    device = phi.gmap.device
    basis = torch.zeros(phi.p, 0, device=device)
    values = []
    starts = range(0, k, block_size)
    for start in tqdm(
        starts, desc="lowdim-grad power iteration", unit="block", disable=not progress, leave=False
    ):
        b = min(block_size, k - start)
        omega = torch.linalg.qr(torch.randn(phi.n, b, generator=generator)).Q.to(device)
        y = _orthonormalise(phi.rmatvec(omega), basis)
        for _ in range(iterations):
            y = _orthonormalise(phi.gram(y), basis)
        p, sigma, _ = torch.linalg.svd(phi.matvec(y).T, full_matrices=False)
        basis = torch.cat([basis, y @ p], 1)
        values.append(sigma)
    return basis, torch.cat(values)


def check_k(k: int, n: int, p: int) -> None:
    """k must not exceed the fitting inputs nor the parameters; a ValueError naming both."""
    if k > n:
        raise ValueError(
            f"lowdim-grad: k={k} basis directions need at least {k} fitting samples for "
            f"basis='pca', got {n}; lower k or fit on more data"
        )
    if k > p:
        raise ValueError(
            f"lowdim-grad: k={k} basis directions exceed the {p} parameters of the chosen "
            "set; lower k or choose more parameters"
        )


def explicit_pca_basis(
    gmap: GradientMap, norm: Normalisation, x: torch.Tensor, k: int, chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(V, σ): Φ's top-k right singular vectors and values, from Φ held in memory."""
    check_k(k, len(x), gmap.p)
    device = gmap.device
    phi = torch.empty(len(x), gmap.p, device=device)
    start = 0
    for chunk in x.split(chunk_size):
        grads = gmap.per_sample(chunk.to(device))
        for name, rows in gmap.slices.items():
            g = grads.pop(name).reshape(len(chunk), -1).contiguous()
            phi[start : start + len(chunk), rows] = norm.apply_(g, rows)
        start += len(chunk)
    gram = (phi @ phi.T).double()
    values, vectors = torch.linalg.eigh(gram)  # ascending
    values, vectors = values.flip(0)[:k], vectors.flip(1)[:, :k]
    sigma = values.clamp_min(0).sqrt()
    basis = (phi.T @ (vectors / sigma.clamp_min(1e-30)).float()).contiguous()
    # QR keeps each leading span and restores orthonormality lost to tiny singular values
    return torch.linalg.qr(basis).Q, sigma.float()


def avg_grad_basis(phi: FitJacobian, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(V, classes): one unit-norm column per class present in `labels`, v_c ∝ the class's mean
    normalised gradient, in the order of `classes` (sorted)."""
    labels = labels.long().cpu()
    classes = torch.unique(labels)
    members = (labels[:, None] == classes[None, :]).float()
    columns = phi.rmatvec(members / members.sum(0, keepdim=True))
    return columns / columns.norm(dim=0, keepdim=True).clamp_min(1e-30), classes
