"""The network block of the TC forecast: link-prediction indices, Node2Vec and interactions.

The paper (Gu, Chen, Wu; arXiv 2604.00803, Table 3) describes each pair of IPC codes in the
co-classification network by 14 topology indices and by Node2Vec embeddings, whose pairs enter
through the interaction features of Table 4 (cosine, Hadamard sum, L2 and L1 distance). A
forecast scores every unconnected pair of a network of a few hundred codes, so the indices are
computed from whole-graph matrix products (numpy) and gathered for all pairs at once.

With Γ the neighbour set, k the degree and A the symmetric 0/1 adjacency (zero diagonal):

- neighbours |Γx ∪ Γy|: the paper lists "|Γx|", a node quantity; we take the pair's union
  so that the feature is symmetric ([I]);
- common neighbours |Γx ∩ Γy|, Adamic-Adar Σ_{z∈∩} 1/log k_z, Salton |∩|/√(k_x k_y),
  Jaccard |∩|/|∪|, hub promoted |∩|/min(k_x, k_y), hub depressed |∩|/max(k_x, k_y),
  Sørensen 2|∩|/(k_x + k_y), Leicht-Holme-Newman |∩|/(k_x k_y), preferential attachment
  k_x k_y, resource allocation Σ_{z∈∩} 1/k_z;
- Katz Σ_{l≥1} β^l (A^l)_xy = [(I − βA)^{-1} − I]_xy, finite only for β < 1/λ_max(A);
- random walk with restart q_xy + q_yx, where q_x = r (I − (1 − r) Pᵀ)^{-1} e_x is the steady
  state of a walk on P = D^{-1}A that returns to x with probability r at each step;
- local path (A² + εA³)_xy.

A ratio whose denominator is zero (an isolated node) is 0. Node2Vec is the usual one (Grover
and Leskovec 2016): second-order random walks biased by p and q, then skip-gram with negative
sampling; here the walks are drawn in numpy and the skip-gram is trained in torch.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

INDEX_NAMES: tuple[str, ...] = (
    "neighbours",
    "common_neighbours",
    "adamic_adar",
    "salton",
    "jaccard",
    "hub_promoted",
    "hub_depressed",
    "sorensen",
    "lhn",
    "preferential_attachment",
    "resource_allocation",
    "katz",
    "rwr",
    "local_path",
)


def _binary(adjacency) -> np.ndarray:
    """The 0/1 float adjacency (>0 is an edge, diagonal dropped), after checking its shape."""
    a = np.asarray(adjacency, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"adjacency must be a square (n, n) matrix, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("adjacency has NaN or infinite entries")
    if not np.allclose(a, a.T):
        raise ValueError("adjacency must be symmetric (an undirected network)")
    a = (a > 0).astype(float)
    np.fill_diagonal(a, 0.0)
    return a


def _pairs(pairs, n: int) -> np.ndarray:
    """`pairs` as an (m, 2) integer array of node indices in [0, n)."""
    p = np.asarray(pairs)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"pairs must have shape (m, 2), got {p.shape}")
    if p.size and not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"pairs must be integer node indices, got dtype {p.dtype}")
    if p.size and (p.min() < 0 or p.max() >= n):
        raise ValueError(f"pairs hold node indices out of range [0, {n})")
    return p.astype(np.int64)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, and 0 where den is 0."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den != 0)


def link_indices(
    adjacency: np.ndarray,
    pairs: np.ndarray,
    *,
    katz_beta: float = 0.01,
    rwr_restart: float = 0.15,
    lp_epsilon: float = 0.01,
) -> dict[str, np.ndarray]:
    """The 14 topology indices of Table 3 for each pair: {name: (m,) float64}, INDEX_NAMES order.

    The paper gives no β, restart or ε; the defaults are the usual ones of Lü and Zhou's survey
    of link prediction (Physica A 390, 2011). Weighted adjacencies are binarised (>0 is an edge).
    """
    a = _binary(adjacency)
    n = len(a)
    p = _pairs(pairs, n)
    if not 0 < rwr_restart < 1:
        raise ValueError(f"rwr_restart must lie in (0, 1), got {rwr_restart}")
    lam = float(np.linalg.eigvalsh(a)[-1]) if n else 0.0
    bound = 1 / lam if lam > 0 else np.inf
    if not 0 < katz_beta * (1 + 1e-9) < bound:  # margin: λ_max carries rounding error
        raise ValueError(
            f"katz_beta={katz_beta} must lie in (0, 1/λ_max) = (0, {bound:.6g}), where "
            f"λ_max = {lam:.6g} is the adjacency's largest eigenvalue"
        )

    k = a.sum(1)
    logk = np.log(k, out=np.zeros_like(k), where=k > 1)
    a2 = a @ a
    eye = np.eye(n)
    katz = np.linalg.solve(eye - katz_beta * a, eye) - eye
    walk = a * _ratio(np.ones_like(k), k)[:, None]  # P = D^{-1} A; rows of isolated nodes 0
    rwr = rwr_restart * np.linalg.solve(eye - (1 - rwr_restart) * walk.T, eye)  # column x: q_x

    x, y = p[:, 0], p[:, 1]
    kx, ky = k[x], k[y]
    common = a2[x, y]
    union = kx + ky - common
    return {
        "neighbours": union,
        "common_neighbours": common,
        "adamic_adar": ((a * _ratio(np.ones_like(k), logk)) @ a)[x, y],
        "salton": _ratio(common, np.sqrt(kx * ky)),
        "jaccard": _ratio(common, union),
        "hub_promoted": _ratio(common, np.minimum(kx, ky)),
        "hub_depressed": _ratio(common, np.maximum(kx, ky)),
        "sorensen": _ratio(2 * common, kx + ky),
        "lhn": _ratio(common, kx * ky),
        "preferential_attachment": kx * ky,
        "resource_allocation": ((a * _ratio(np.ones_like(k), k)) @ a)[x, y],
        "katz": (katz[x, y] + katz[y, x]) / 2,  # symmetric up to rounding; make it exact
        "rwr": rwr[y, x] + rwr[x, y],
        "local_path": common + lp_epsilon * (a2 @ a)[x, y],
    }


def _walks(a: np.ndarray, count: int, length: int, p: float, q: float, rng) -> np.ndarray:
    """(walks, length) second-order node2vec walks, `count` from each non-isolated node.

    Each biased step draws a neighbour uniformly and accepts it with probability w / max(w),
    where w is 1/p for the previous node, 1 for its neighbours and 1/q otherwise.
    """
    deg = a.sum(1).astype(np.int64)
    start = np.concatenate([[0], np.cumsum(deg)])
    nbrs = np.nonzero(a)[1]
    edge = a > 0
    walks = np.empty((count * int((deg > 0).sum()), length), dtype=np.int64)
    walks[:, 0] = np.tile(np.flatnonzero(deg > 0), count)
    if length > 1:
        cur = walks[:, 0]
        walks[:, 1] = nbrs[start[cur] + rng.integers(deg[cur])]
    top = max(1 / p, 1.0, 1 / q)
    for i in range(2, length):
        todo = np.arange(len(walks))
        while todo.size:
            prev, cur = walks[todo, i - 2], walks[todo, i - 1]
            cand = nbrs[start[cur] + rng.integers(deg[cur])]
            w = np.where(cand == prev, 1 / p, np.where(edge[prev, cand], 1.0, 1 / q))
            ok = rng.random(todo.size) * top < w
            walks[todo[ok], i] = cand[ok]
            todo = todo[~ok]
    return walks


def node2vec(
    adjacency: np.ndarray,
    *,
    dim: int = 16,
    walks_per_node: int = 10,
    walk_length: int = 20,
    window: int = 5,
    p: float = 1.0,
    q: float = 1.0,
    negatives: int = 5,
    epochs: int = 2,
    lr: float = 0.05,
    batch_size: int = 2048,
    seed: int = 0,
) -> np.ndarray:
    """(n, dim) Node2Vec embeddings: p/q-biased walks, skip-gram with negative sampling (Adam).

    Deterministic for a seed; isolated nodes (no walks) get the zero vector. The paper tunes
    the hyperparameters by Bayesian optimisation and reports none; the walks here are shorter
    than node2vec's defaults (10 walks of 80 steps, window 10) because the networks are small,
    and lr/batch_size were picked on held-out link AUC, which hardly moved across settings.
    """
    a = _binary(adjacency)
    n = len(a)
    if p <= 0 or q <= 0:
        raise ValueError(f"node2vec p and q must be positive, got p={p}, q={q}")
    out = np.zeros((n, dim))
    walks = _walks(a, walks_per_node, walk_length, p, q, np.random.default_rng(seed))
    if walks.size == 0 or walk_length < 2:
        return out

    # skip-gram pairs: every node and each node within `window` steps of it, both ways
    left = [walks[:, :-o].ravel() for o in range(1, min(window, walk_length - 1) + 1)]
    right = [walks[:, o:].ravel() for o in range(1, min(window, walk_length - 1) + 1)]
    centre = torch.from_numpy(np.concatenate(left + right))
    context = torch.from_numpy(np.concatenate(right + left))
    counts = np.bincount(walks.ravel(), minlength=n)
    noise = torch.from_numpy(counts**0.75)  # word2vec's unigram^0.75 noise
    sign = torch.tensor([1.0] + [-1.0] * negatives)  # the context, then the negatives

    g = torch.Generator().manual_seed(seed)
    emb = ((torch.rand(n, dim, generator=g) - 0.5) / dim).requires_grad_()
    ctx = torch.zeros(n, dim, requires_grad=True)
    opt = torch.optim.Adam([emb, ctx], lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(centre), generator=g)
        negs = torch.multinomial(noise, len(order) * negatives, True, generator=g)
        targets = torch.cat([context[order, None], negs.view(len(order), negatives)], 1)
        for c, t in zip(centre[order].split(batch_size), targets.split(batch_size)):
            score = (F.embedding(c, emb).unsqueeze(1) * F.embedding(t, ctx)).sum(2)
            loss = -F.logsigmoid(score * sign).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    seen = counts > 0
    out[seen] = emb.detach().double().numpy()[seen]
    return out


def interactions(embeddings: np.ndarray, pairs: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """Table 4's interactions of each pair's vectors: cosine, Hadamard sum, L2 and L1 distance.

    A zero vector has cosine 0 with everything.
    """
    e = np.asarray(embeddings, dtype=float)
    p = _pairs(pairs, len(e))
    ex, ey = e[p[:, 0]], e[p[:, 1]]
    dot = (ex * ey).sum(1)
    diff = ex - ey
    return {
        f"{prefix}_cosine": _ratio(dot, np.linalg.norm(ex, axis=1) * np.linalg.norm(ey, axis=1)),
        f"{prefix}_hadamard_sum": dot,
        f"{prefix}_l2": np.linalg.norm(diff, axis=1),
        f"{prefix}_l1": np.abs(diff).sum(1),
    }
