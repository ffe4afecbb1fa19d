"""The click logs of `yw-core bench rec`: impressions grouped into requests, seeded, offline.

A recommendation request is one user against many candidate items; a click model scores each
(user, item) pair. A `ClickLog` keeps the two sides apart, as `RecSchema` does: `users` holds
one row per request (features shared by all its candidates), `items` one row per impression
(everything that differs per candidate, user x item crosses included), and `request` maps each
impression to its user row. Training pairs rows up with `user_rows()` or `batches()`; ranking
metrics and `RecModel.serve` read one request at a time through `request_slices()`.

Two sources:

- `synthetic_click_log`: a known ground truth, so a benchmark can tell a model that learns the
  user x item interaction from one that only learns popularity. Users and items carry random
  categorical features; each has a latent vector in R^8 built from its categories (a fixed
  random matrix per side, plus noise), a bias, and a click is
  `Bernoulli(sigmoid(interaction * <p_u, q_i> + b_u + b_i - 1))`, whose probability is kept in
  `truth`. With `interaction=0` nothing but the biases matters.
- `movielens_100k`: MovieLens-100k as a click log (rating >= 4 is a click), read from the copy
  that ships in the `recbole` wheel (without importing recbole) or from a folder of your own.

Everything is deterministic given the seed: numpy Generators seeded from `(seed, stream)` and
torch Generators passed in, never the global seeds.
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from yw_core.interfaces.rec_model import FeatureField, RecSchema

Features = dict[str, torch.Tensor]


# ---- the click log ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ClickLog:
    """Impressions grouped into requests: one user (a row of `users`) against its candidates.

    `request` (N,) says which row of `users` each impression belongs to; it is non-decreasing
    and runs over 0..R-1 with no gaps, R the number of user rows, so every request has at least
    one impression and a request's impressions are contiguous. `labels` are 0/1 clicks;
    `truth` the true click probability when known (synthetic data), else None.
    """

    schema: RecSchema
    users: Features  # one row per request
    items: Features  # one row per impression
    request: torch.Tensor  # (N,) long, non-decreasing, 0..R-1
    labels: torch.Tensor  # (N,) float32 in {0, 1}
    truth: torch.Tensor | None = None  # (N,) float32 in [0, 1], or None
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.schema, RecSchema):
            raise TypeError(f"schema must be a RecSchema, not {type(self.schema).__name__}")
        n_requests = self.schema.check_features("user", self.users)
        n = self.schema.check_features("item", self.items)
        object.__setattr__(self, "users", dict(self.users))
        object.__setattr__(self, "items", dict(self.items))
        object.__setattr__(self, "request", _check_request(self.request, n, n_requests))
        object.__setattr__(self, "labels", _check_labels(self.labels, n))
        if self.truth is not None:
            object.__setattr__(self, "truth", _check_truth(self.truth, n))

    def __len__(self) -> int:
        """The number of impressions."""
        return len(self.request)

    @property
    def n_requests(self) -> int:
        return len(next(iter(self.users.values())))

    def user_rows(self) -> Features:
        """The user features gathered per impression: {name: users[name][request]}."""
        return {k: v[self.request] for k, v in self.users.items()}

    def request_slices(self) -> list[tuple[int, int]]:
        """[start, stop) of each request's impressions, in request order."""
        counts = torch.bincount(self.request, minlength=self.n_requests)
        stops = torch.cumsum(counts, 0)
        return list(zip((stops - counts).tolist(), stops.tolist(), strict=True))

    def subset(self, requests) -> ClickLog:
        """The log of the given request indices (taken in sorted order), re-indexed 0..k-1.

        ValueError when `requests` is empty, repeats an index or names one outside [0, R)."""
        keep = torch.as_tensor(requests)
        if keep.dim() != 1 or keep.dtype.is_floating_point or keep.dtype == torch.bool:
            raise ValueError(f"requests must be a 1-D tensor of indices, got {keep.dtype}")
        keep = keep.long().sort().values
        if len(keep) == 0:
            raise ValueError("subset needs at least one request")
        if keep[0] < 0 or keep[-1] >= self.n_requests:
            raise ValueError(f"request indices must lie in [0, {self.n_requests})")
        if (keep[1:] == keep[:-1]).any():
            raise ValueError("request indices must not repeat")
        rows = torch.isin(self.request, keep)
        return ClickLog(
            schema=self.schema,
            users={k: v[keep] for k, v in self.users.items()},
            items={k: v[rows] for k, v in self.items.items()},
            request=torch.searchsorted(keep, self.request[rows]),
            labels=self.labels[rows],
            truth=None if self.truth is None else self.truth[rows],
            name=self.name,
        )

    def split(self, test_fraction: float, seed: int) -> tuple[ClickLog, ClickLog]:
        """(train, test) by request: round(test_fraction * R) random requests go to test.

        ValueError unless 0 < test_fraction < 1 and both parts get at least one request."""
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
        n_test = round(test_fraction * self.n_requests)
        if not 0 < n_test < self.n_requests:
            raise ValueError(
                f"test_fraction {test_fraction} of {self.n_requests} request(s) leaves "
                f"{n_test} for test and {self.n_requests - n_test} for train; both need >= 1"
            )
        order = torch.randperm(self.n_requests, generator=torch.Generator().manual_seed(seed))
        train, test = self.subset(order[n_test:]), self.subset(order[:n_test])
        name = self.name or "click log"
        object.__setattr__(train, "name", f"{name} (train)")
        object.__setattr__(test, "name", f"{name} (test)")
        return train, test

    def batches(
        self, batch_size: int, generator: torch.Generator
    ) -> Iterator[tuple[Features, Features, torch.Tensor]]:
        """One pass over the impressions in a random order (from `generator`), `batch_size` at a
        time (the last batch may be smaller): (user features per row, item features per row,
        labels), row i of the user dict being the user of impression i."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        order = torch.randperm(len(self), generator=generator)
        for idx in order.split(batch_size):
            users = self.request[idx]
            yield (
                {k: v[users] for k, v in self.users.items()},
                {k: v[idx] for k, v in self.items.items()},
                self.labels[idx],
            )


def _check_request(request, n: int, n_requests: int) -> torch.Tensor:
    if not isinstance(request, torch.Tensor):
        raise ValueError(f"request must be a tensor, not {type(request).__name__}")
    if request.dim() != 1 or request.dtype.is_floating_point or request.dtype == torch.bool:
        raise ValueError(
            f"request must be an integer tensor (N,), got {request.dtype} {tuple(request.shape)}"
        )
    if len(request) != n:
        raise ValueError(f"request has {len(request)} entries for {n} impressions")
    request = request.long()
    steps = request[1:] - request[:-1]
    if (steps < 0).any():
        raise ValueError("request must be non-decreasing: sort the impressions by request")
    if request[0] != 0 or request[-1] != n_requests - 1 or (steps > 1).any():
        raise ValueError(
            f"request must run over 0..{n_requests - 1} (one per user row) with no gaps, so "
            f"every request has >= 1 impression; it spans {request[0]}..{request[-1]}"
            + (" with gaps" if (steps > 1).any() else "")
        )
    return request


def _check_labels(labels, n: int) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.dtype.is_complex:
        raise ValueError("labels must be a tensor (N,) of 0/1 clicks")
    if len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries for {n} impressions")
    labels = labels.float()
    if not ((labels == 0) | (labels == 1)).all():
        raise ValueError("labels must be 0 or 1 (a click or not)")
    return labels


def _check_truth(truth, n: int) -> torch.Tensor:
    if not isinstance(truth, torch.Tensor) or truth.dim() != 1 or truth.dtype.is_complex:
        raise ValueError("truth must be None or a tensor (N,) of click probabilities")
    if len(truth) != n:
        raise ValueError(f"truth has {len(truth)} entries for {n} impressions")
    truth = truth.float()
    if not ((truth >= 0) & (truth <= 1)).all():
        raise ValueError("truth must hold probabilities in [0, 1]")
    return truth


def hash_cross(a, b, buckets: int) -> torch.Tensor:
    """A fixed hash of id pairs (a, b), elementwise, into [0, buckets): a LongTensor.

    The same pair always lands in the same bucket, on every machine (no Python `hash` salt); the
    mixing is splitmix64's, on unsigned 64-bit integers."""
    a = np.asarray(a, dtype=np.int64).astype(np.uint64)
    b = np.asarray(b, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = a * np.uint64(0x9E3779B97F4A7C15) + b + np.uint64(0x632BE59BD9B4E5B)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return torch.from_numpy((x % np.uint64(buckets)).astype(np.int64))


# ---- synthetic ----------------------------------------------------------------------------------

LATENT = 8  # the latent dimension of users and items
CATS = 20  # the cardinality of every synthetic categorical feature
USER_CATS, ITEM_CATS = 3, 2
DENSE = 4  # user_dense: a random map of the first 4 of the 8 user latent dims
CROSS_BUCKETS = 64
ZIPF = 1.1
_WORLD, _REQUESTS, _CLICKS = 0, 1, 2  # the random streams, so each depends only on the seed


def synthetic_schema(n_users: int = 1000, n_items: int = 2000) -> RecSchema:
    """The fields of `synthetic_click_log` for these id counts."""
    user = [FeatureField("user_id", "user", cardinality=n_users)]
    user += [FeatureField(f"user_cat{j}", "user", cardinality=CATS) for j in range(USER_CATS)]
    user += [FeatureField("user_dense", "user", "dense", dim=DENSE)]
    item = [FeatureField("item_id", "item", cardinality=n_items)]
    item += [FeatureField(f"item_cat{j}", "item", cardinality=CATS) for j in range(ITEM_CATS)]
    item += [FeatureField("user_item_cross", "item", cardinality=CROSS_BUCKETS)]
    return RecSchema(tuple(user + item))


def _entities(rng: np.random.Generator, n: int, n_cats: int):
    """n entities' categories (n, n_cats) and latents (n, LATENT): a fixed random matrix applied
    to the one-hot categories, plus noise 0.3 * N(0, 1)."""
    cats = rng.integers(0, CATS, (n, n_cats))
    matrix = rng.normal(0.0, 0.35, (n_cats, CATS, LATENT))  # one block per categorical field
    latent = matrix[np.arange(n_cats), cats].sum(1) + 0.3 * rng.normal(size=(n, LATENT))
    return cats, latent


def _popularity(rng: np.random.Generator, n_items: int) -> np.ndarray:
    """Zipf(1.1)-like item probabilities: 1 / rank^1.1 over a random ranking of the ids."""
    weights = np.empty(n_items)
    weights[rng.permutation(n_items)] = 1.0 / np.arange(1, n_items + 1) ** ZIPF
    return weights / weights.sum()


def synthetic_click_log(
    n_requests: int = 2000,
    candidates: int = 100,
    *,
    n_users: int = 1000,
    n_items: int = 2000,
    interaction: float = 1.5,
    seed: int = 0,
) -> ClickLog:
    """`n_requests` requests of `candidates` impressions each, with a known click probability.

    Users have `user_cat0..2` and items `item_cat0..1` (20 values each, uniform). A user's
    latent is `p_u = sum_j A_j[cat_j] + 0.3 eps` in R^8 (A_j ~ N(0, 0.35^2), fixed by the seed),
    an item's `q_i` the same with its own matrices; `user_dense` is a fixed random 4x4 map of the
    first 4 dims of p_u plus N(0, 0.05^2) noise, so half of the user latent is visible densely.
    Biases b_u, b_i ~ N(0, 0.5^2). `user_item_cross` hashes (user_cat0, item_cat0) into 64
    buckets. A request draws its user uniformly and its candidates independently (repeats
    allowed) from a Zipf(1.1) popularity over a random ranking of the items; a click is
    `Bernoulli(sigmoid(interaction * <p_u, q_i> + b_u + b_i - 1))`, that probability `truth`.

    The world (users, items), the requests and the click draws come from separate streams of
    the seed: the same seed with another `interaction` keeps the users, items and requests, and
    another `n_requests` keeps the world.
    """
    for arg, value in (("n_requests", n_requests), ("candidates", candidates)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be an int >= 1, got {value!r}")
    for arg, value in (("n_users", n_users), ("n_items", n_items)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be an int >= 1, got {value!r}")
    if not np.isfinite(interaction):
        raise ValueError(f"interaction must be a finite number, got {interaction!r}")

    world = np.random.default_rng([seed, _WORLD])
    user_cats, p = _entities(world, n_users, USER_CATS)
    item_cats, q = _entities(world, n_items, ITEM_CATS)
    mix = world.normal(0.0, 0.5, (DENSE, DENSE))
    dense = p[:, :DENSE] @ mix + 0.05 * world.normal(size=(n_users, DENSE))
    b_user, b_item = world.normal(0.0, 0.5, n_users), world.normal(0.0, 0.5, n_items)
    popularity = _popularity(world, n_items)

    draws = np.random.default_rng([seed, _REQUESTS])
    user = draws.integers(0, n_users, n_requests)
    item = draws.choice(n_items, size=(n_requests, candidates), p=popularity).reshape(-1)
    u = np.repeat(user, candidates)

    logit = interaction * np.einsum("nd,nd->n", p[u], q[item]) + b_user[u] + b_item[item] - 1.0
    truth = 1.0 / (1.0 + np.exp(-logit))
    labels = np.random.default_rng([seed, _CLICKS]).random(len(truth)) < truth

    def long(x):
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64))

    users = {"user_id": long(user)}
    users |= {f"user_cat{j}": long(user_cats[user, j]) for j in range(USER_CATS)}
    users["user_dense"] = torch.from_numpy(dense[user].astype(np.float32))
    items = {"item_id": long(item)}
    items |= {f"item_cat{j}": long(item_cats[item, j]) for j in range(ITEM_CATS)}
    items["user_item_cross"] = hash_cross(user_cats[u, 0], item_cats[item, 0], CROSS_BUCKETS)
    return ClickLog(
        schema=synthetic_schema(n_users, n_items),
        users=users,
        items=items,
        request=torch.arange(n_requests).repeat_interleave(candidates),
        labels=torch.from_numpy(labels.astype(np.float32)),
        truth=torch.from_numpy(truth.astype(np.float32)),
        name=f"synthetic (interaction {interaction}, seed {seed})",
    )


# ---- MovieLens-100k -----------------------------------------------------------------------------

RECBOLE = "pip install --no-deps recbole==1.2.1"
AGE_EDGES = (18, 25, 35, 45, 50, 56)  # MovieLens-1M's age groups: <18, 18-24, ..., 56+
YEAR_EDGES = (1950, 1970, 1980, 1990, 1994, 1996, 1997)  # <1950, 1950-69, ..., 1996, 1997+
GENDER_GENRE_BUCKETS = 128
DAY = 86_400


def _default_root() -> Path:
    """recbole's `dataset_example/ml-100k`, found without importing recbole."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"MovieLens-100k: recbole is not installed; {RECBOLE} (it ships ml-100k) "
            "or pass root= a folder holding ml-100k.inter, ml-100k.user and ml-100k.item"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-100k"


def _read_table(path: Path, columns: tuple[str, ...]) -> dict[str, list[str]]:
    """The given columns of a RecBole atomic file (TSV, headers like `user_id:token`)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"MovieLens-100k: {path} not found; {RECBOLE} (it ships ml-100k) or pass root= "
            "a folder holding ml-100k.inter, ml-100k.user and ml-100k.item"
        )
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [h.split(":", 1)[0].strip() for h in next(rows, [])]
        if missing := [c for c in columns if c not in header]:
            raise ValueError(
                f"{path} misses column(s) {', '.join(missing)}; it has: {', '.join(header)}"
            )
        where = [header.index(c) for c in columns]
        out: dict[str, list[str]] = {c: [] for c in columns}
        for row in rows:
            if not row or row == [""]:
                continue
            if len(row) < len(header):
                row = row + [""] * (len(header) - len(row))
            for c, i in zip(columns, where, strict=True):
                out[c].append(row[i].strip())
    return out


def _numbers(path: Path, name: str, values: list[str]) -> np.ndarray:
    try:
        return np.array([float(v) for v in values])
    except ValueError:
        bad = next(v for v in values if not _is_number(v))
        raise ValueError(f"{path}: column {name} holds a non-number: {bad!r}") from None


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _id_order(*id_lists: list[str]) -> list[str]:
    """The distinct raw ids of all lists, numeric ones in numeric order, then the others."""
    ids = set().union(*id_lists)
    return sorted(ids, key=lambda s: (0, int(s), "") if s.isdigit() else (1, 0, s))


def _vocab(values: list[str]) -> tuple[np.ndarray, int]:
    """Categorical ids of string values: 1..k for the sorted distinct non-empty values, 0 for a
    missing one; and the cardinality k + 1."""
    known = sorted({v for v in values if v})
    index = {v: i + 1 for i, v in enumerate(known)}
    return np.array([index.get(v, 0) for v in values], dtype=np.int64), len(known) + 1


def _buckets(values: list[str], edges: tuple[int, ...]) -> np.ndarray:
    """1 + the bucket of each integer value between `edges`; 0 for a missing or non-integer."""
    out = np.zeros(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        if v.isdigit():
            out[i] = 1 + int(np.searchsorted(edges, int(v), side="right"))
    return out


def _rows(ids: list[str], order: dict[str, int], path: Path) -> np.ndarray:
    """The index of each feature-file row's id; ValueError on a repeated id."""
    rows = np.array([order[i] for i in ids], dtype=np.int64)
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"{path} lists id(s) more than once: {', '.join(twice)}")
    return rows


def movielens_100k(root: str | Path | None = None, *, min_rating: int = 4) -> ClickLog:
    """MovieLens-100k as a click log: a click is a rating >= `min_rating`.

    Reads `ml-100k.inter` (user_id, item_id, rating, timestamp), `ml-100k.user` (user_id, age,
    gender, occupation) and `ml-100k.item` (item_id, release_year, class) in RecBole's format
    from `root`, by default the copy inside the recbole wheel (`pip install --no-deps
    recbole==1.2.1`; recbole itself is not imported). FileNotFoundError naming a missing file,
    ValueError naming missing columns.

    Requests: a user's ratings of one UTC day (timestamp // 86400) form one request, its
    impressions in timestamp order; requests with fewer than 2 ratings are dropped. Requests are
    sorted by user, then day.

    Fields (every categorical but the ids keeps id 0 for a missing or unknown value):
    - user side: `user_id` (raw ids re-indexed 0..n-1 in numeric order, users of the .inter and
      .user files together), `age` (7 buckets: <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+),
      `gender`, `occupation` (the file's distinct values, sorted);
    - item side: `item_id` (re-indexed likewise), `release_year` (8 buckets: <1950, 1950-69,
      1970-79, 1980-89, 1990-93, 1994-95, 1996, 1997+), `genre` (the first genre listed;
      MovieLens lists genres alphabetically, so this leans to Action and Adventure), `genres`
      (dense multi-hot of all genres listed, float32), and `gender_genre`, a hash of (user gender,
      first genre) into 128 buckets: a user x item cross, hence on the item side. The genre
      `unknown` counts as missing.
    """
    root = _default_root() if root is None else Path(root)
    paths = {part: root / f"ml-100k.{part}" for part in ("inter", "user", "item")}
    inter = _read_table(paths["inter"], ("user_id", "item_id", "rating", "timestamp"))
    user = _read_table(paths["user"], ("user_id", "age", "gender", "occupation"))
    item = _read_table(paths["item"], ("item_id", "release_year", "class"))

    user_ids = _id_order(inter["user_id"], user["user_id"])
    item_ids = _id_order(inter["item_id"], item["item_id"])
    user_index = {u: i for i, u in enumerate(user_ids)}
    item_index = {v: i for i, v in enumerate(item_ids)}

    # per-user and per-item feature tables (row = re-indexed id); absent rows stay 0 (unknown)
    rows = _rows(user["user_id"], user_index, paths["user"])
    age, gender, occupation = (np.zeros(len(user_ids), dtype=np.int64) for _ in range(3))
    age[rows] = _buckets(user["age"], AGE_EDGES)
    gender[rows], n_gender = _vocab(user["gender"])
    occupation[rows], n_occupation = _vocab(user["occupation"])

    rows = _rows(item["item_id"], item_index, paths["item"])
    year, genre = np.zeros(len(item_ids), dtype=np.int64), np.zeros(len(item_ids), dtype=np.int64)
    year[rows] = _buckets(item["release_year"], YEAR_EDGES)
    listed = [[g for g in c.split() if g != "unknown"] for c in item["class"]]
    genre[rows], n_genre = _vocab([g[0] if g else "" for g in listed])
    names = sorted({g for gs in listed for g in gs})
    multi_hot = np.zeros((len(item_ids), max(len(names), 1)), dtype=np.float32)
    column = {g: j for j, g in enumerate(names)}
    for r, gs in zip(rows, listed, strict=True):
        multi_hot[r, [column[g] for g in gs]] = 1.0

    # impressions, grouped into (user, day) requests
    u = np.array([user_index[x] for x in inter["user_id"]], dtype=np.int64)
    i = np.array([item_index[x] for x in inter["item_id"]], dtype=np.int64)
    rating = _numbers(paths["inter"], "rating", inter["rating"])
    time = _numbers(paths["inter"], "timestamp", inter["timestamp"]).astype(np.int64)
    day = time // DAY
    order = np.lexsort((i, time, day, u))
    u, i, rating, day = u[order], i[order], rating[order], day[order]
    new = np.ones(len(u), dtype=bool)
    new[1:] = (u[1:] != u[:-1]) | (day[1:] != day[:-1])
    group = np.cumsum(new) - 1
    sizes = np.bincount(group)
    keep = sizes[group] >= 2
    if not keep.any():
        raise ValueError(f"{paths['inter']}: no user rates 2 or more items on one day")
    u, i, rating, group = u[keep], i[keep], rating[keep], group[keep]
    first = np.ones(len(group), dtype=bool)
    first[1:] = group[1:] != group[:-1]
    request = np.cumsum(first) - 1
    request_user = u[first]

    def long(x):
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64))

    schema = RecSchema(
        (
            FeatureField("user_id", "user", cardinality=len(user_ids)),
            FeatureField("age", "user", cardinality=len(AGE_EDGES) + 2),
            FeatureField("gender", "user", cardinality=n_gender),
            FeatureField("occupation", "user", cardinality=n_occupation),
            FeatureField("item_id", "item", cardinality=len(item_ids)),
            FeatureField("release_year", "item", cardinality=len(YEAR_EDGES) + 2),
            FeatureField("genre", "item", cardinality=n_genre),
            FeatureField("genres", "item", "dense", dim=multi_hot.shape[1]),
            FeatureField("gender_genre", "item", cardinality=GENDER_GENRE_BUCKETS),
        )
    )
    users = {
        "user_id": long(request_user),
        "age": long(age[request_user]),
        "gender": long(gender[request_user]),
        "occupation": long(occupation[request_user]),
    }
    items = {
        "item_id": long(i),
        "release_year": long(year[i]),
        "genre": long(genre[i]),
        "genres": torch.from_numpy(multi_hot[i]),
        "gender_genre": hash_cross(gender[u], genre[i], GENDER_GENRE_BUCKETS),
    }
    return ClickLog(
        schema=schema,
        users=users,
        items=items,
        request=long(request),
        labels=torch.from_numpy((rating >= min_rating).astype(np.float32)),
        name=f"movielens-100k (rating >= {min_rating})",
    )
