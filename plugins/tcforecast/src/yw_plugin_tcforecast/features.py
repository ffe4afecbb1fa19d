"""Step 1 of the TC forecast: bibliometric, network and text features of IPC pairs at a cutoff.

Everything here reads only the patents filed before the cutoff year: the co-classification
network (two codes are linked once some patent carries both, counted over all years before the
cutoff), the current window (the `window` years just before the cutoff) and the one before it.
A pair's features at cutoff t predict whether it converges in the window starting at t.

- bibliometric (the paper's Table 2): per code over the current window, patents, their growth
  on the previous window (`patent_count_new`, [I]), inventors, applicants (collaboration),
  claims, forward patent citations (from patents before the cutoff), non-patent references,
  family members and backward citations; a code's values become a pair's by mean, min and
  range. Pair level: fusion_patent_count (patents carrying both, all years before the cutoff)
  and fusion_patent_count_new (in the current window); both are 0 for the unconnected pairs a
  forecast scores, and are kept for queries of connected pairs. Optional columns missing from
  the records drop their features.
- network (Table 3 and Node2Vec): the 14 link-prediction indices and the four interactions of
  the codes' Node2Vec embeddings (`yw_plugin_tcforecast.network`).
- text (topics, Table 4, fusers): each code's patent texts of the current window (all its
  earlier patents when it has none there) give its topic strength S_x = mean D_p and coverage
  C_x = mean 1[D_p > threshold]; pair features cos(S), cos(C), main-topic match and
  complementarity sum_i S_x^i (1 - S_y^i) + S_y^i (1 - S_x^i); the four interactions of the
  codes' mean text embeddings; and the type-1/type-2 fused pair vector with its link logit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from yw_core.interfaces import Records

BLOCKS = ("bibliometric", "network", "text")
NODE_COUNTS = {  # feature -> the patent column it sums (None: the patent itself)
    "patent_count": None,
    "inventor": "inventors",
    "collaboration": "applicants",
    "claim": "claims",
    "patent_ref": "forward",
    "nonpatent_ref": "nonpatent_refs",
    "family": "family",
    "cited_patent": "backward",
}

Pair = tuple[str, str]


def pair_key(a: str, b: str) -> Pair:
    """A pair of codes in one order, so (x, y) and (y, x) are the same pair."""
    return (a, b) if a <= b else (b, a)


@dataclass
class Snapshot:
    """The patents before a cutoff year, as the feature blocks read them."""

    cutoff: int
    window: int
    rows: np.ndarray  # indices of the records filed before the cutoff
    codes: tuple[str, ...]  # every code those patents carry, sorted
    incidence: np.ndarray  # (rows, codes) 0/1: patent carries code
    years: np.ndarray  # (rows,)
    index: dict[str, int] = field(init=False)

    def __post_init__(self):
        self.index = {c: i for i, c in enumerate(self.codes)}

    def links(self, start: int | None = None) -> np.ndarray:
        """(codes, codes) patents carrying both codes, filed from `start` to the cutoff."""
        m = self.incidence if start is None else self.incidence[self.years >= start]
        links = m.T @ m
        np.fill_diagonal(links, 0.0)
        return links

    def members(self, start: int) -> list[np.ndarray]:
        """For each code, the snapshot rows filed from `start` on (all its rows when none)."""
        recent = self.years >= start
        out = []
        for c in range(len(self.codes)):
            carries = self.incidence[:, c] > 0
            rows = np.flatnonzero(carries & recent)
            out.append(rows if len(rows) else np.flatnonzero(carries))
        return out

    def indices(self, pairs: Iterable[Pair]) -> np.ndarray:
        """(m, 2) code indices of pairs; KeyError for a code with no patent before the cutoff."""
        return np.array([[self.index[a], self.index[b]] for a, b in pairs], dtype=int).reshape(
            -1, 2
        )


def snapshot(history: Records, cutoff: int, window: int) -> Snapshot:
    """The history's patents filed before `cutoff`; ValueError when there are none."""
    years = np.asarray(history["year"])
    rows = np.flatnonzero(years < cutoff)
    if len(rows) == 0:
        raise ValueError(
            f"no patent was filed before {cutoff}: there is no history to forecast from"
        )
    ipc = history["ipc"]
    codes = tuple(sorted({c for r in rows for c in ipc[r]}))
    index = {c: i for i, c in enumerate(codes)}
    incidence = np.zeros((len(rows), len(codes)))
    for k, r in enumerate(rows):
        incidence[k, [index[c] for c in ipc[r]]] = 1.0
    return Snapshot(cutoff, window, rows, codes, incidence, years[rows])


def converged(history: Records, start: int, stop: int) -> set[Pair]:
    """The pairs some patent filed in [start, stop) carries."""
    return {
        pair_key(a, b)
        for year, codes in zip(history["year"], history["ipc"])
        if start <= year < stop
        for a, b in combinations(sorted(set(codes)), 2)
    }


def candidates(snap: Snapshot) -> list[Pair]:
    """The pairs of the snapshot's codes that no patent before the cutoff carries."""
    links = snap.links()
    return [
        (snap.codes[i], snap.codes[j])
        for i, j in combinations(range(len(snap.codes)), 2)
        if links[i, j] == 0
    ]


def bibliometric(history: Records, snap: Snapshot, pairs: np.ndarray) -> dict[str, np.ndarray]:
    """The bibliometric block (Table 2) for `pairs` (m, 2) of code indices."""
    values = _patent_values(history, snap)
    now = snap.years >= snap.cutoff - snap.window
    before = (snap.years >= snap.cutoff - 2 * snap.window) & ~now
    node = {
        name: snap.incidence[now].T @ values[column][now]
        for name, column in NODE_COUNTS.items()
        if column in values
    }
    node["patent_count_new"] = node["patent_count"] - snap.incidence[before].sum(0)
    x, y = pairs[:, 0], pairs[:, 1]
    out = {
        "fusion_patent_count": snap.links()[x, y],
        "fusion_patent_count_new": snap.links(snap.cutoff - snap.window)[x, y],
    }
    for name, v in node.items():
        out[f"{name}_mean"] = (v[x] + v[y]) / 2
        out[f"{name}_min"] = np.minimum(v[x], v[y])
        out[f"{name}_range"] = np.abs(v[x] - v[y])
    return out


def network(snap: Snapshot, pairs: np.ndarray, *, dim: int, seed: int, **indices) -> dict:
    """The network block: 14 link-prediction indices and Node2Vec interactions."""
    from yw_plugin_tcforecast.network import interactions, link_indices, node2vec

    adjacency = (snap.links() > 0).astype(float)
    top = float(np.linalg.eigvalsh(adjacency).max()) if len(adjacency) else 0.0
    if top > 0:  # Katz's series converges only below 1/lambda_max: dense networks cap beta
        indices["katz_beta"] = min(indices["katz_beta"], 0.5 / top)
    out = link_indices(adjacency, pairs, **indices)
    out.update(interactions(node2vec(adjacency, dim=dim, seed=seed), pairs, "node2vec"))
    return out


def text(
    history: Records,
    snap: Snapshot,
    pairs: np.ndarray,
    model,
    fuser,
    *,
    coverage: float,
) -> dict[str, np.ndarray]:
    """The text block: topic similarity and complementarity, embedding interactions, fused."""
    from yw_plugin_tcforecast.fusers import code_patents, fused_features
    from yw_plugin_tcforecast.network import interactions

    texts = [history["text"][r] for r in snap.rows]
    embeddings, mix = model.embed(texts), model.topic_mix(texts)
    members = snap.members(snap.cutoff - snap.window)
    strength = np.stack([mix[m].mean(0) for m in members])
    cover = np.stack([(mix[m] > coverage).mean(0) for m in members])
    code_vectors = np.stack([embeddings[m].mean(0) for m in members])
    x, y = pairs[:, 0], pairs[:, 1]
    sx, sy = strength[x], strength[y]
    out = {
        "topic_strength_cosine": _cosine(sx, sy),
        "topic_coverage_cosine": _cosine(cover[x], cover[y]),
        "main_topic_match": (sx.argmax(1) == sy.argmax(1)).astype(float),
        "complementarity": (sx * (1 - sy) + sy * (1 - sx)).sum(1),
    }
    out.update(interactions(code_vectors, pairs, "text"))
    out.update(fused_features(fuser, *code_patents(embeddings, members), pairs))
    return out


@dataclass
class FeatureTable:
    """Pair features: one row per pair, named columns, and the block of each column."""

    pairs: list[Pair]
    names: list[str]
    blocks: list[str]
    values: np.ndarray  # (pairs, features)

    def select(self, blocks: Iterable[str]) -> np.ndarray:
        """The columns of the given blocks."""
        keep = [i for i, b in enumerate(self.blocks) if b in set(blocks)]
        return self.values[:, keep]


def pair_features(
    history: Records, snap: Snapshot, pairs: list[Pair], *, model, fuser, config
) -> FeatureTable:
    """All three blocks for `pairs` at the snapshot's cutoff."""
    index = snap.indices(pairs)
    blocks = {
        "bibliometric": bibliometric(history, snap, index),
        "network": network(
            snap,
            index,
            dim=config.node2vec_dim,
            seed=config.seed,
            katz_beta=config.katz_beta,
            rwr_restart=config.rwr_restart,
            lp_epsilon=config.lp_epsilon,
        ),
        "text": text(history, snap, index, model, fuser, coverage=config.coverage_threshold),
    }
    names = [n for columns in blocks.values() for n in columns]
    values = np.column_stack([v for columns in blocks.values() for v in columns.values()])
    owners = [b for b, columns in blocks.items() for _ in columns]
    return FeatureTable(list(pairs), names, owners, values.astype(np.float64))


def _patent_values(history: Records, snap: Snapshot) -> dict[str | None, np.ndarray]:
    """Per snapshot row: 1 (None), each optional count column present, forward and backward
    citations counted among the patents before the cutoff."""
    rows = snap.rows
    values: dict[str | None, np.ndarray] = {None: np.ones(len(rows))}
    for column in ("inventors", "applicants", "claims", "nonpatent_refs", "family"):
        if column in history:
            values[column] = np.asarray([history[column][r] for r in rows], dtype=float)
    position = {history["id"][r]: k for k, r in enumerate(rows)}
    forward = np.zeros(len(rows))
    cited = history["cited"]
    for r in rows:
        for pid in cited[r]:
            if (k := position.get(pid)) is not None:
                forward[k] += 1
    values["forward"] = forward
    values["backward"] = np.asarray([len(cited[r]) for r in rows], dtype=float)
    return values


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.divide((a * b).sum(1), norms, out=np.zeros(len(a)), where=norms > 0)
