"""Step 3 of the TC forecast: topic-level opportunities for a firm from a predicted IPC pair.

A predicted pair of IPC codes is too coarse to act on, so the paper refines it into pairs of
topics. The patents of the firm's code and of the target code are clustered into topics
(K-means on text embeddings). Each target topic gets eight indicators in four dimensions (the
paper's Table 6), and each (firm topic, target topic) pair gets a score (Eq. 10-12):

    Score = Fusion x Develop,  Fusion = (cos(q, i) + 1) / 2,  Develop in [0, 10].

Fusion says how close the firm's topic q is to the target topic i; Develop says how promising
the target topic is. A judge (`judges.py`) then reviews the ranked list. Only patents filed
before the forecast year are read, so nothing from the future leaks into the ranking.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from yw_core.interfaces import Records

DIMENSIONS = {
    "novelty": ("uniqueness", "maturity"),
    "growth": ("patent_growth", "inventor_growth"),
    "influence": ("citation_impact", "family_size"),
    "versatility": ("field_diversity", "functional_diversity"),
}
SCALE = 10.0  # alpha: Develop spans [0, 10], each of the four dimensions [0, 2.5]
PATENT_COLUMNS = ("id", "year", "assignee", "ipc", "cited", "text")
# words of every patent's title and claims, which say nothing of a topic
BOILERPLATE = frozenset(
    ("method", "methods", "system", "systems", "device", "devices", "apparatus", "unit", "units")
    + ("module", "modules", "assembly", "means", "thereof", "wherein", "comprising", "said")
)
ALL_CODES = "*"  # firm_code of a type-I pair: the firm's whole portfolio


def pair_type(pair: tuple[str, str], firm_codes: set[str]) -> str:
    """ "I", "II" or "III": how many of the pair's two codes the firm holds (0, 1 or 2)."""
    return ("I", "II", "III")[sum(code in firm_codes for code in pair)]


def topics(embeddings: np.ndarray, *, k_max: int = 6, seed: int = 0) -> np.ndarray:
    """Topic labels 0..M-1 of the rows: K-means with the k of the best silhouette.

    [I] The paper picks k from an elbow plot together with silhouette scores, by eye. Here
    k runs over 2..min(k_max, n - 1) and the highest silhouette wins (a tie goes to the smaller
    k). When the clusters are well separated, the inertia curve has its elbow at that same k,
    and the silhouette needs no threshold to read a knee. Fewer than 3 rows, or fewer than 2
    distinct rows, give one topic.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    x = np.asarray(embeddings, dtype=float)
    n = len(x)
    distinct = len(np.unique(x, axis=0)) if n else 0
    best, best_score = np.zeros(n, dtype=int), -np.inf
    for k in range(2, min(k_max, n - 1, distinct) + 1):
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(x)
        score = silhouette_score(x, labels)
        if score > best_score + 1e-12:
            best, best_score = labels, score
    return best


def topic_indicators(
    records: Records,
    labels: np.ndarray,
    embeddings: np.ndarray,
    year: int,
    *,
    growth_years: int = 5,
    forward: Sequence[int] | None = None,
) -> dict[str, np.ndarray]:
    """The paper's Table 6 for the M topics of `records` (labels 0..M-1): one value per topic.

    `records` are the patents that were clustered, all filed before `year`. Optional columns
    that are missing drop their indicators (inventor_growth, family_size, functional_diversity).
    `forward` gives each patent's forward citations. By default they are counted within
    `records`; `topic_opportunities` counts them over all earlier patents.

    - uniqueness = 1 - mean_{j != i} (cos(c_i, c_j) + 1) / 2 over the topic centroids c. [I] The
      normaliser is M - 1 (the other topics). With a single topic it is 0.5, the value for
      orthogonal centroids.
    - maturity = mean age of all the patents - mean age of topic i's (age = year - filing year).
    - patent_growth = (N_t - N_{t-5}) / N_{t-5}. N are cumulative counts of the topic's patents
      filed before `year` and before `year - growth_years`. [I] A topic with no patents at
      t - 5 (younger than five years) is measured from inception: N_{t-5} becomes the count
      in its first year. A zero base gives 0.
    - inventor_growth: the same on the summed `inventors` column. [I] Only per-patent counts
      are given, so inventors are summed, not de-duplicated.
    - citation_impact = mean forward citations / mean age, with age at least one year.
    - family_size, field_diversity, functional_diversity = mean `family`, mean number of IPC
      codes, mean number of TRIZ `functions` per patent.
    """
    records.require(("id", "year", "ipc", "cited"), "topic_indicators records")
    labels = np.asarray(labels, dtype=int)
    x = np.asarray(embeddings, dtype=float)
    years = np.array([int(v) for v in records["year"]])
    if not len(years) == len(labels) == len(x):
        raise ValueError(
            f"records ({len(years)}), labels ({len(labels)}) and embeddings ({len(x)}) differ"
        )
    if (years >= year).any():
        raise ValueError(f"topic_indicators reads patents filed before {year}, got later ones")
    m = int(labels.max()) + 1
    if set(labels.tolist()) != set(range(m)):
        raise ValueError(f"labels must be 0..M-1 with every topic used, got {sorted(set(labels))}")
    if forward is None:
        forward = _forward_citations(records)
    members = [labels == t for t in range(m)]
    age = year - years

    def per_topic(values) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        return np.array([values[mask].mean() for mask in members])

    out = {"uniqueness": _uniqueness(np.stack([x[mask].mean(0) for mask in members]))}
    out["maturity"] = age.mean() - per_topic(age)
    ones = np.ones(len(years))
    out["patent_growth"] = _growths(years, ones, members, year, growth_years)
    if "inventors" in records:
        inventors = np.array([float(v) for v in records["inventors"]])
        out["inventor_growth"] = _growths(years, inventors, members, year, growth_years)
    out["citation_impact"] = per_topic(forward) / np.maximum(per_topic(age), 1.0)
    if "family" in records:
        out["family_size"] = per_topic([float(v) for v in records["family"]])
    out["field_diversity"] = per_topic([len(codes) for codes in records["ipc"]])
    if "functions" in records:
        out["functional_diversity"] = per_topic([len(f) for f in records["functions"]])
    return out


def dimension_scores(indicators: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each dimension's part of Develop, in [0, 2.5] per topic: w_k * alpha * minmax(I_k) summed.

    With both indicators of a dimension present, w_k * alpha = 1/8 * 10 = 1.25 each, as in the
    paper. [I] A dimension that lacks one indicator (its optional column is missing) gives
    its 2.5 to the indicator it has. A dimension with no indicator at all is a ValueError.
    Min-max runs over the given topics; a constant indicator contributes 0.
    """
    out = {}
    for dim, names in DIMENSIONS.items():
        present = [name for name in names if name in indicators]
        if not present:
            raise ValueError(f"indicators lack the {dim} dimension: need one of {names}")
        weight = SCALE / len(DIMENSIONS) / len(present)
        out[dim] = sum(weight * _minmax(indicators[name]) for name in present)
    return out


def develop(indicators: dict[str, np.ndarray]) -> np.ndarray:
    """Develop = sum_K sum_k w_k * alpha * minmax(I_k), in [0, 10] per topic."""
    return sum(dimension_scores(indicators).values())


def fusion(q: np.ndarray, i: np.ndarray) -> float | np.ndarray:
    """(cos(q, i) + 1) / 2 along the last axis, in [0, 1]; a zero vector counts as orthogonal."""
    q, i = np.asarray(q, dtype=float), np.asarray(i, dtype=float)
    norms = np.linalg.norm(q, axis=-1) * np.linalg.norm(i, axis=-1)
    dots = (q * i).sum(-1)
    cos = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    out = (np.clip(cos, -1.0, 1.0) + 1.0) / 2.0
    return float(out) if out.ndim == 0 else out


@dataclass
class Opportunity:
    """A (firm topic, target topic) pair of a predicted IPC pair, with its formula score.

    `indicators` are the target topic's raw Table-6 values, and `dimensions` are its four
    Develop parts (each in [0, 2.5]). `evidence` holds the ids of the firm's patents (under
    any code) closest by cosine to the topic pair; the judge's RAG context is made of these.
    [I] The pair's direction is the sum of the two unit centroids. `n_patents` counts the
    target topic's patents.
    """

    pair: tuple[str, str]
    pair_type: str
    firm_code: str
    target_code: str
    firm_topic: int
    target_topic: int
    firm_terms: list[str]
    target_terms: list[str]
    fusion: float
    develop: float
    score: float
    indicators: dict[str, float]
    dimensions: dict[str, float]
    evidence: list[str]
    n_patents: int


def topic_opportunities(
    records: Records,
    embed: Callable[[list[str]], np.ndarray],
    pair: tuple[str, str],
    firm: str,
    year: int,
    *,
    k_max: int = 6,
    evidence: int = 3,
    seed: int = 0,
) -> list[Opportunity]:
    """The firm's topic-pair opportunities within `pair`, best score first.

    Only patents filed before `year` are read. The firm code is the code of the pair the firm
    holds (type II), or the one it holds more patents under (type III; a tie goes to the first
    code of the pair). The target code is the other one.

    [I] The firm topics are clusters of the firm's own patents under the firm code. The paper
    clusters "the firm's IPC", and the firm's own patents keep the opportunity firm-specific
    (in the case study the firm holds 252 patents under F24F, which give 3 topics). The target
    topics are clusters of all assignees' patents under the target code. [I] For a type-I
    pair, where the firm holds neither code, the firm topics are clusters of all the firm's
    patents (firm_code "*"). Both codes are then targets, ranked together.

    `embed` maps texts to an (n, d) array. q and i are the mean embeddings of the firm topic
    and the target topic. Develop is min-maxed over the target code's topics.
    """
    records.require(PATENT_COLUMNS, "topic_opportunities records")
    x, y = pair
    if x == y:
        raise ValueError(f"a pair needs two different IPC codes, got ({x!r}, {y!r})")
    past = [i for i, v in enumerate(records["year"]) if int(v) < year]
    ipc, assignee = records["ipc"], records["assignee"]
    firm_rows = [i for i in past if assignee[i] == firm]
    if not firm_rows:
        raise ValueError(f"firm {firm!r} has no patents before {year}")
    held = Counter(code for i in firm_rows for code in set(ipc[i]))
    kind = pair_type(pair, set(held))
    code_rows = {code: [i for i in past if code in ipc[i]] for code in pair}
    for code, rows in code_rows.items():
        if not rows:
            raise ValueError(f"IPC code {code!r} has no patents before {year}")

    if kind == "I":
        firm_code, targets = ALL_CODES, [x, y]
        firm_side = firm_rows
    else:
        firm_code = x if held[x] >= held[y] else y
        targets = [y if firm_code == x else x]
        firm_side = [i for i in firm_rows if firm_code in ipc[i]]

    texts = records["text"]
    rows = sorted(set(firm_rows) | {i for t in targets for i in code_rows[t]})
    vectors = np.asarray(embed([texts[i] for i in rows]), dtype=float)
    if vectors.ndim != 2 or len(vectors) != len(rows):
        raise ValueError(f"embed must return an (n, d) array for n={len(rows)} texts")
    vec = dict(zip(rows, vectors))
    forward = _forward_citations(_subset(records, past))
    forward_of = dict(zip(past, forward))

    firm_x = np.stack([vec[i] for i in firm_side])
    firm_labels = topics(firm_x, k_max=k_max, seed=seed)
    firm_centroids = _centroids(firm_x, firm_labels)
    firm_terms = topic_terms([texts[i] for i in firm_side], firm_labels)
    firm_all = _units(np.stack([vec[i] for i in firm_rows]))
    ids = records["id"]

    out = []
    for target in targets:
        t_rows = code_rows[target]
        t_x = np.stack([vec[i] for i in t_rows])
        t_labels = topics(t_x, k_max=k_max, seed=seed)
        t_records = _subset(records, t_rows)
        ind = topic_indicators(
            t_records, t_labels, t_x, year, forward=[forward_of[i] for i in t_rows]
        )
        dims = dimension_scores(ind)
        dev = sum(dims.values())
        t_centroids = _centroids(t_x, t_labels)
        t_terms = topic_terms([texts[i] for i in t_rows], t_labels)
        for a, q in enumerate(firm_centroids):
            for b, c in enumerate(t_centroids):
                fus = fusion(q, c)
                query = _unit(q) + _unit(c)
                near = np.argsort(-(firm_all @ query), kind="stable")[:evidence]
                out.append(
                    Opportunity(
                        pair=(x, y),
                        pair_type=kind,
                        firm_code=firm_code,
                        target_code=target,
                        firm_topic=a,
                        target_topic=b,
                        firm_terms=firm_terms[a],
                        target_terms=t_terms[b],
                        fusion=fus,
                        develop=float(dev[b]),
                        score=fus * float(dev[b]),
                        indicators={k: float(v[b]) for k, v in ind.items()},
                        dimensions={k: float(v[b]) for k, v in dims.items()},
                        evidence=[str(ids[firm_rows[j]]) for j in near],
                        n_patents=int((t_labels == b).sum()),
                    )
                )
    return sorted(out, key=lambda o: -o.score)


def topic_terms(texts: Sequence[str], labels: np.ndarray, n: int = 5) -> list[list[str]]:
    """Each topic's top `n` words by c-TF-IDF (BERTopic's class-based TF-IDF).

    The topic's texts are joined into one document. A word t of topic c weighs
    tf_{t,c} * log(1 + A / f_t), where tf is L1-normalised per topic, A is the mean word
    count per topic and f_t is t's count over all topics. English stop words and patent
    boilerplate (`BOILERPLATE`: "method", "apparatus", "comprising", ...) are dropped, and a tie
    goes to the alphabetically first word.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    labels = np.asarray(labels, dtype=int)
    m = int(labels.max()) + 1 if len(labels) else 0
    docs = [" ".join(t for t, lab in zip(texts, labels) if lab == c) for c in range(m)]
    try:
        vectorizer = CountVectorizer(stop_words=sorted(ENGLISH_STOP_WORDS | BOILERPLATE))
        counts = vectorizer.fit_transform(docs).toarray().astype(float)
    except ValueError:  # no words left
        return [[] for _ in range(m)]
    words = vectorizer.get_feature_names_out()
    tf = counts / np.maximum(counts.sum(1, keepdims=True), 1.0)
    weight = tf * np.log1p(counts.sum() / m / counts.sum(0))
    return [
        [str(words[j]) for j in np.argsort(-row, kind="stable")[:n] if row[j] > 0] for row in weight
    ]


def _forward_citations(records: Records) -> list[int]:
    """How many of `records` cite each patent of `records`."""
    counts = Counter(c for cited in records["cited"] for c in set(cited))
    return [counts.get(str(i), 0) for i in records["id"]]


def _uniqueness(centroids: np.ndarray) -> np.ndarray:
    m = len(centroids)
    if m == 1:
        return np.array([0.5])
    unit = _units(centroids)
    scaled = (np.clip(unit @ unit.T, -1.0, 1.0) + 1.0) / 2.0
    np.fill_diagonal(scaled, 0.0)
    return 1.0 - scaled.sum(1) / (m - 1)


def _growths(years, amounts, members, year: int, span: int) -> np.ndarray:
    out = []
    for mask in members:
        ys, am = years[mask], amounts[mask]
        base = am[ys < year - span].sum()
        if base == 0:  # younger than `span` years: from inception
            base = am[ys == ys.min()].sum()
        out.append((am.sum() - base) / base if base > 0 else 0.0)
    return np.array(out)


def _minmax(values) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    span = v.max() - v.min()
    return (v - v.min()) / span if span > 0 else np.zeros_like(v)


def _centroids(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.stack([x[labels == t].mean(0) for t in range(int(labels.max()) + 1)])


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v)
    return v / norm if norm > 0 else v


def _units(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _subset(records: Records, rows: list[int]) -> Records:
    return Records({name: [records[name][i] for i in rows] for name in records.columns})
