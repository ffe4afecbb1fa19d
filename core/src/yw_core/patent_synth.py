"""Synthetic patents whose IPC co-classification network grows by a known convergence process.

No data set ships patents with citations and abstracts, so forecasters are tested on records
whose future is known. Every IPC subclass sits at a point of a small latent technology space and
has an activity level; both move year by year (a random walk, growth trends, and a few planted
pairs that drift towards each other). In year t each of n_t patents takes a primary code x with
probability a_x / sum(a), and a second code y with probability

    multi * w_y / (1 + sum_y' w_y'),   w_y = (a_y / mean a) * exp(-|z_x - z_y|^2 / (2 width^2)),

so codes that are close and active co-occur: two codes converge once some patent carries both.
What precedes a convergence is visible to all three feature kinds of the paper: the codes' texts
draw words near their current positions (text becomes similar before the codes meet), their
neighbourhoods overlap (network), and their activity grows (bibliometrics). Assignees have home
positions and file near them; patents cite earlier ones, mostly of their own primary code.

`convergence_probability(pairs, start, end)` is the process's own probability that a pair
co-occurs in some patent of those years: the ceiling a forecaster is measured against.
Deterministic for a seed (numpy Generators only, never the global seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from yw_core.interfaces.forecaster import Records

# Real IPC subclasses from every section (codes only; the text is synthetic)
CODES = (
    *("A01B", "A23L", "A47L", "A61B", "A61K", "A63F", "B01D", "B25J", "B29C", "B33Y"),
    *("B60L", "B62D", "B64C", "C01B", "C02F", "C07K", "C08L", "C12N", "D01F", "E04B"),
    *("E21B", "F01D", "F03D", "F16H", "F21V", "F24F", "F25B", "G01N", "G01S", "G05B"),
    *("G06F", "G06N", "G06Q", "G06T", "G08B", "G16H", "H01L", "H01M", "H02J", "H04L"),
    *("H04N", "H04W", "H05K", "G02B", "C25B", "B22F", "A61F", "G07C", "F17C", "H02S"),
)
GENERIC = ("method", "system", "device", "apparatus", "unit", "control", "module", "assembly")
FOCAL = "Focal Corp"


@dataclass(frozen=True)
class SyntheticPatents:
    """The records and the process that made them (positions and activity per year)."""

    records: Records
    codes: tuple[str, ...]
    years: tuple[int, int]
    focal_firm: str
    positions: np.ndarray  # (years, codes, dims)
    activity: np.ndarray  # (years, codes)
    patents_per_year: np.ndarray  # (years,)
    multi: float
    width: float
    converging: tuple[tuple[str, str], ...]  # the planted pairs

    def before(self, year: int) -> Records:
        """The patents filed before `year`."""
        keep = [i for i, y in enumerate(self.records["year"]) if y < year]
        return Records({c: [self.records[c][i] for i in keep] for c in self.records.columns})

    def second_code(self, year: int) -> np.ndarray:
        """(codes, codes): P(second code y | primary code x) for a patent of `year`."""
        t = year - self.years[0]
        a, z = self.activity[t], self.positions[t]
        w = (a / a.mean())[None, :] * np.exp(-_sq_dist(z) / (2 * self.width**2))
        np.fill_diagonal(w, 0.0)
        return self.multi * w / (1.0 + w.sum(axis=1, keepdims=True))

    def pair_probability(self, year: int) -> np.ndarray:
        """(codes, codes): the chance that one patent of `year` carries both codes."""
        a = self.activity[year - self.years[0]]
        both = (a / a.sum())[:, None] * self.second_code(year)
        return both + both.T

    def convergence_probability(self, pairs, start: int, end: int) -> np.ndarray:
        """P(some patent filed in start..end carries both codes), per (code, code) pair."""
        index = {c: i for i, c in enumerate(self.codes)}
        rows = np.array([[index[a], index[b]] for a, b in pairs], dtype=int).reshape(-1, 2)
        log_none = np.zeros(len(rows))
        for year in range(start, end + 1):
            p = self.pair_probability(year)[rows[:, 0], rows[:, 1]]
            log_none += self.patents_per_year[year - self.years[0]] * np.log1p(-p)
        return 1.0 - np.exp(log_none)


def synthetic_patents(
    *,
    codes: int = 50,
    years: tuple[int, int] = (2006, 2023),
    patents_per_year: int = 250,
    growth: float = 0.04,
    firms: int = 25,
    converging: int = 25,
    multi: float = 0.5,
    width: float = 0.45,
    dims: int = 2,
    words_per_patent: int = 25,
    seed: int = 0,
) -> SyntheticPatents:
    """Patents of `years` (inclusive) on `codes` real IPC subclasses; see the module docstring.

    `converging` pairs of far-apart codes start drifting together in a random year of the
    middle of the period; `multi` is the chance scale of a second code; `width` the latent
    distance at which codes co-occur."""
    if not 3 <= codes <= len(CODES):
        raise ValueError(f"codes must be in 3..{len(CODES)}, got {codes}")
    first, last = years
    if last - first < 2:
        raise ValueError(f"years {years} must span at least three years")
    rng = np.random.default_rng([seed, 7])
    names = CODES[:codes]
    span = last - first + 1

    # the process: positions, activity, the planted converging pairs
    z = np.empty((span, codes, dims))
    z[0] = rng.normal(0.0, 1.5, (codes, dims))
    far = [(i, j) for i in range(codes) for j in range(i + 1, codes)]
    far = [p for p in far if np.linalg.norm(z[0, p[0]] - z[0, p[1]]) > 2.0]
    planted = [far[k] for k in rng.choice(len(far), min(converging, len(far)), replace=False)]
    starts = rng.integers(first + 3, max(first + 4, last - 3), len(planted))
    for t in range(1, span):
        z[t] = z[t - 1] + rng.normal(0.0, 0.06, (codes, dims))
        for (i, j), s in zip(planted, starts):
            if first + t >= s:
                step = 0.18 * (z[t, j] - z[t, i])
                z[t, i] += step
                z[t, j] -= step
    log_a = (
        rng.normal(0.0, 0.5, codes)[None, :]
        + rng.normal(0.04, 0.06, codes)[None, :] * (np.arange(span)[:, None])
    )
    activity = np.exp(log_a + rng.normal(0.0, 0.1, (span, codes)))
    n_year = np.round(patents_per_year * (1 + growth) ** np.arange(span)).astype(int)

    # vocabulary: each code's words sit near its first position; generic words anywhere
    words = [f"{c.lower()}{k}" for c in names for k in range(12)]
    word_pos = np.repeat(z[0], 12, axis=0) + rng.normal(0.0, 0.35, (len(words), dims))
    homes = z[0, rng.integers(0, codes, firms + 1)] + rng.normal(0.0, 0.3, (firms + 1, dims))
    size = np.exp(rng.normal(0.0, 0.7, firms + 1))
    size[0] *= 3.0  # the focal firm is a large one
    firm_names = [FOCAL, *(f"Firm {k:02d}" for k in range(1, firms + 1))]

    synth = SyntheticPatents(
        records=Records({}),
        codes=names,
        years=years,
        focal_firm=FOCAL,
        positions=z,
        activity=activity,
        patents_per_year=n_year,
        multi=multi,
        width=width,
        converging=tuple((names[i], names[j]) for i, j in planted),
    )
    rows: dict[str, list] = {
        k: []
        for k in (
            *("id", "year", "assignee", "ipc", "cited", "text"),
            *("inventors", "applicants", "claims", "family", "nonpatent_refs"),
        )
    }
    by_code: list[list[int]] = [[] for _ in range(codes)]  # earlier patents per primary code
    for t in range(span):
        year = first + t
        pi = activity[t] / activity[t].sum()
        second = synth.second_code(year)
        word_p = np.exp(-_sq_dist(z[t], word_pos) / (2 * 0.4**2))
        word_p /= word_p.sum(axis=1, keepdims=True)
        firm_p = size[None, :] * np.exp(-_sq_dist(z[t], homes) / (2 * 0.6**2))
        firm_p /= firm_p.sum(axis=1, keepdims=True)
        primary = rng.choice(codes, n_year[t], p=pi)
        earlier = len(rows["id"])
        for k, x in enumerate(primary):
            y = rng.choice(codes + 1, p=np.append(second[x], 1.0 - second[x].sum()))
            held = [x] if y == codes else [x, y]
            generic = rng.binomial(words_per_patent, 0.2)
            split = rng.multinomial(words_per_patent - generic, np.full(len(held), 1 / len(held)))
            counts = sum(rng.multinomial(n, word_p[c]) for c, n in zip(held, split))
            tokens = [words[w] for w in np.repeat(np.arange(len(words)), counts)]
            tokens += [GENERIC[g] for g in rng.integers(len(GENERIC), size=generic)]
            tokens = [tokens[i] for i in rng.permutation(len(tokens))]
            cited = []
            for _ in range(rng.poisson(3.0) if earlier else 0):
                pool = by_code[x] if by_code[x] and rng.random() < 0.7 else None
                cited.append(pool[rng.integers(len(pool))] if pool else int(rng.integers(earlier)))
            rows["id"].append(f"SP{year}{k:05d}")
            rows["year"].append(year)
            rows["assignee"].append(firm_names[rng.choice(firms + 1, p=firm_p[x])])
            rows["ipc"].append([names[c] for c in held])
            rows["cited"].append(sorted({rows["id"][c] for c in cited}))
            rows["text"].append(" ".join(tokens))
            rows["inventors"].append(1 + int(rng.poisson(2.0)))
            rows["applicants"].append(1 + int(rng.binomial(2, 0.15)))
            rows["claims"].append(1 + int(rng.poisson(9.0)))
            rows["family"].append(1 + int(rng.poisson(1.5)))
            rows["nonpatent_refs"].append(int(rng.poisson(1.0)))
        for k, x in enumerate(primary):
            by_code[x].append(earlier + k)
    return SyntheticPatents(**{**synth.__dict__, "records": Records(rows)})


def _sq_dist(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    b = a if b is None else b
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
