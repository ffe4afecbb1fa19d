"""The click logs of `yw-core bench rec`: the synthetic ground truth (seeded, a real user x item
interaction), the ClickLog container (split, subset, batches, validation), and MovieLens-100k
from a fake folder in RecBole's format and, when recbole ships it, the real one."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from yw_bench.rec_data import (
    CROSS_BUCKETS,
    ClickLog,
    hash_cross,
    movielens_100k,
    synthetic_click_log,
)
from yw_core.interfaces.rec_model import FeatureField, RecSchema


def auc(labels: torch.Tensor, scores: torch.Tensor) -> float:
    """Rank-based ROC AUC (Mann-Whitney U), ties at their average rank."""
    scores, labels = scores.double().numpy(), labels.numpy().astype(bool)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based average rank per value
    ranks = average_rank[inverse]
    pos, neg = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def test_auc_helper():
    labels = torch.tensor([0, 0, 1, 1, 0, 1.0])
    assert auc(labels, torch.tensor([0.1, 0.2, 0.8, 0.9, 0.3, 0.7])) == 1.0
    assert auc(labels, torch.tensor([0.5] * 6)) == 0.5
    assert auc(labels, torch.tensor([0.1, 0.4, 0.35, 0.8, 0.7, 0.9])) == pytest.approx(7 / 9)
    tied = auc(torch.tensor([0, 1, 0, 1.0]), torch.tensor([0.2, 0.2, 0.1, 0.3]))
    assert tied == pytest.approx(3.5 / 4)  # a tie counts one half


@pytest.fixture(scope="module")
def log():
    return synthetic_click_log(300, 20, n_users=100, n_items=200, seed=0)


# ---- synthetic --------------------------------------------------------------------------------


def test_synthetic_shapes_and_schema(log):
    assert len(log) == 300 * 20 and log.n_requests == 300
    fields = {f.name: f for f in log.schema.fields}
    assert [f.name for f in log.schema.user_fields] == [
        "user_id",
        "user_cat0",
        "user_cat1",
        "user_cat2",
        "user_dense",
    ]
    assert [f.name for f in log.schema.item_fields] == [
        "item_id",
        "item_cat0",
        "item_cat1",
        "user_item_cross",
    ]
    assert fields["user_id"].cardinality == 100 and fields["item_id"].cardinality == 200
    assert fields["user_dense"].kind == "dense" and fields["user_dense"].dim == 4
    assert fields["user_item_cross"].cardinality == CROSS_BUCKETS == 64
    assert log.schema.check_features("user", log.users) == 300
    assert log.schema.check_features("item", log.items) == 6000
    assert log.schema.check_features("user", log.user_rows()) == 6000
    assert log.request.dtype == torch.long and log.labels.dtype == torch.float32
    assert torch.equal(log.request, torch.arange(300).repeat_interleave(20))
    assert log.truth.shape == (6000,) and ((log.truth > 0) & (log.truth < 1)).all()
    assert [b - a for a, b in log.request_slices()] == [20] * 300


def test_synthetic_is_seeded():
    a, b = (synthetic_click_log(50, 10, n_users=30, n_items=40, seed=3) for _ in range(2))
    c = synthetic_click_log(50, 10, n_users=30, n_items=40, seed=4)
    for side in ("users", "items"):
        for k, v in getattr(a, side).items():
            assert torch.equal(v, getattr(b, side)[k]), k
    assert torch.equal(a.labels, b.labels) and torch.equal(a.truth, b.truth)
    assert not torch.equal(a.items["item_id"], c.items["item_id"])
    assert not torch.equal(a.users["user_dense"], c.users["user_dense"])
    assert not torch.equal(a.truth, c.truth)


def test_synthetic_default_size_click_rate_and_interaction():
    strong = synthetic_click_log(seed=1)  # the defaults: 2000 requests x 100 candidates
    none = synthetic_click_log(seed=1, interaction=0.0)
    assert len(strong) == 200_000
    assert 0.1 < strong.labels.mean() < 0.9 and 0.1 < none.labels.mean() < 0.9
    # same seed, other interaction: the same users, items and requests
    assert torch.equal(strong.items["item_id"], none.items["item_id"])
    assert torch.equal(strong.users["user_id"], none.users["user_id"])
    auc_strong, auc_none = auc(strong.labels, strong.truth), auc(none.labels, none.truth)
    assert auc_strong > 0.75  # measured 0.84
    assert 0.55 < auc_none < auc_strong - 0.1  # biases alone: measured 0.68


def logit_table(log, n_users, n_items) -> torch.Tensor:
    """logit(truth) as a (user, item) table, NaN where the pair was never shown."""
    table = torch.full((n_users, n_items), float("nan"), dtype=torch.float64)
    table[log.user_rows()["user_id"], log.items["item_id"]] = torch.logit(log.truth.double())
    return table


@pytest.mark.parametrize("interaction", [0.0, 1.5])
def test_synthetic_truth_is_additive_only_without_interaction(interaction):
    """logit(truth) = interaction * <p_u, q_i> + b_u + b_i - 1: with interaction 0 the (user,
    item) table is a sum of a row and a column term, so its double-centred residual vanishes."""
    log = synthetic_click_log(400, 30, n_users=6, n_items=8, interaction=interaction, seed=5)
    table = logit_table(log, 6, 8)
    assert not table.isnan().any()  # every pair shown
    residual = table - table.mean(1, keepdim=True) - table.mean(0, keepdim=True) + table.mean()
    if interaction == 0:
        assert residual.abs().max() < 1e-4
    else:
        assert residual.abs().mean() > 0.3


def test_synthetic_popularity_is_skewed(log):
    counts = torch.bincount(log.items["item_id"], minlength=200).sort(descending=True).values
    assert counts[:20].sum() > 0.3 * len(log)  # the top 10% of items take well over 10%


def test_user_features_constant_within_a_request(log):
    rows = log.user_rows()
    for start, stop in log.request_slices()[:50]:
        r = int(log.request[start])
        for k, v in rows.items():
            assert (v[start:stop] == log.users[k][r]).all(), k


def test_user_dense_reflects_the_user(log):
    # the same user id always has the same dense row; different users differ
    ids, dense = log.users["user_id"], log.users["user_dense"]
    for u in ids.unique()[:10]:
        rows = dense[ids == u]
        assert torch.equal(rows, rows[:1].expand_as(rows))
    assert len(torch.unique(dense, dim=0)) == len(ids.unique())


def test_user_item_cross_depends_on_both_cats(log):
    user_cat = log.user_rows()["user_cat0"]
    item_cat = log.items["item_cat0"]
    cross = log.items["user_item_cross"]
    assert torch.equal(cross, hash_cross(user_cat, item_cat, CROSS_BUCKETS))
    # a function of the pair ...
    pair = user_cat * 20 + item_cat
    for p in pair.unique()[:30]:
        assert len(cross[pair == p].unique()) == 1
    # ... that moves with either side
    for c in range(5):
        assert len(cross[item_cat == c].unique()) > 10  # varies with the user's cat
        assert len(cross[user_cat == c].unique()) > 10  # varies with the item's cat
    assert len(cross.unique()) > 50


def test_hash_cross_is_fixed():
    a, b = torch.tensor([0, 1, 2, 3]), torch.tensor([5, 5, 5, 5])
    out = hash_cross(a, b, 64)
    assert out.dtype == torch.long and ((out >= 0) & (out < 64)).all()
    assert torch.equal(out, hash_cross(a.numpy(), b.numpy(), 64))
    assert not torch.equal(hash_cross(a, b, 1 << 20), hash_cross(b, a, 1 << 20))  # ordered pair


def test_synthetic_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_requests"):
        synthetic_click_log(0)
    with pytest.raises(ValueError, match="n_items"):
        synthetic_click_log(10, 5, n_items=0)
    with pytest.raises(ValueError, match="interaction"):
        synthetic_click_log(10, 5, interaction=float("nan"))


# ---- ClickLog ---------------------------------------------------------------------------------


def tagged(log: ClickLog) -> ClickLog:
    """The log with user_id replaced by the request index, to follow requests through a split."""
    fields = tuple(
        FeatureField("user_id", "user", cardinality=log.n_requests) if f.name == "user_id" else f
        for f in log.schema.fields
    )
    users = log.users | {"user_id": torch.arange(log.n_requests)}
    return ClickLog(RecSchema(fields), users, log.items, log.request, log.labels, log.truth)


def test_split_is_disjoint_by_request_and_covers_all(log):
    log = tagged(log)
    train, test = log.split(0.25, seed=0)
    assert (train.n_requests, test.n_requests) == (225, 75)
    assert len(train) + len(test) == len(log)
    train_ids, test_ids = train.users["user_id"], test.users["user_id"]
    assert not set(train_ids.tolist()) & set(test_ids.tolist())
    assert torch.equal(torch.cat([train_ids, test_ids]).sort().values, torch.arange(300))
    slices = log.request_slices()
    for part in (train, test):  # each request keeps its impressions, in order
        assert (part.users["user_id"].diff() > 0).all()  # kept in request order
        for new, (a, b) in enumerate(part.request_slices()):
            start, stop = slices[int(part.users["user_id"][new])]
            assert torch.equal(part.items["item_id"][a:b], log.items["item_id"][start:stop])
            assert torch.equal(part.labels[a:b], log.labels[start:stop])
    assert "train" in train.name and "test" in test.name
    again, _ = log.split(0.25, seed=0)
    other, _ = log.split(0.25, seed=1)
    assert torch.equal(again.users["user_id"], train_ids)
    assert not torch.equal(other.users["user_id"], train_ids)


def test_split_rejects_empty_parts(log):
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="test_fraction must lie in"):
            log.split(bad, seed=0)
    with pytest.raises(ValueError, match="both need >= 1"):
        log.split(0.001, seed=0)
    with pytest.raises(ValueError, match="both need >= 1"):
        log.split(0.999, seed=0)


def test_subset_reindexes(log):
    sub = log.subset(torch.tensor([7, 2, 250]))
    assert sub.n_requests == 3 and len(sub) == 60
    assert torch.equal(sub.request, torch.arange(3).repeat_interleave(20))
    slices = log.request_slices()
    for new, old in enumerate([2, 7, 250]):  # sorted
        a, b = slices[old]
        assert torch.equal(
            sub.items["item_id"][new * 20 : new * 20 + 20], log.items["item_id"][a:b]
        )
        assert torch.equal(sub.labels[new * 20 : new * 20 + 20], log.labels[a:b])
        for k, v in log.users.items():
            assert torch.equal(sub.users[k][new], v[old])
    with pytest.raises(ValueError, match="outside|lie in"):
        log.subset(torch.tensor([0, 300]))
    with pytest.raises(ValueError, match="repeat"):
        log.subset(torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="at least one"):
        log.subset(torch.tensor([], dtype=torch.long))


def numbered(log: ClickLog) -> ClickLog:
    """The log with item_id replaced by the impression's position, to follow it through batches."""
    fields = tuple(
        FeatureField("item_id", "item", cardinality=len(log)) if f.name == "item_id" else f
        for f in log.schema.fields
    )
    items = log.items | {"item_id": torch.arange(len(log))}
    return ClickLog(RecSchema(fields), log.users, items, log.request, log.labels, log.truth)


def test_batches_cover_every_impression_once_per_pass(log):
    log = numbered(log)
    rows = log.user_rows()
    seen, sizes = [], []
    for users, items, labels in log.batches(512, torch.Generator().manual_seed(0)):
        assert log.schema.check_features("user", users) == len(labels)
        assert log.schema.check_features("item", items) == len(labels)
        at = items["item_id"]
        for k, v in users.items():  # row j is the user of impression j
            assert torch.equal(v, rows[k][at]), k
        assert torch.equal(labels, log.labels[at])
        assert torch.equal(items["user_item_cross"], log.items["user_item_cross"][at])
        sizes.append(len(labels))
        seen.append(at)
    assert sizes == [512] * 11 + [6000 - 11 * 512]
    seen = torch.cat(seen)
    assert torch.equal(seen.sort().values, torch.arange(6000))  # each impression exactly once
    assert not torch.equal(seen, torch.arange(6000))  # shuffled
    # the order follows the generator: same seed, same order; the next pass another order
    gen = torch.Generator().manual_seed(5)
    first = next(log.batches(6000, gen))[1]["item_id"]
    second = next(log.batches(6000, gen))[1]["item_id"]
    again = next(log.batches(6000, torch.Generator().manual_seed(5)))[1]["item_id"]
    assert torch.equal(first, again) and not torch.equal(first, second)
    with pytest.raises(ValueError, match="batch_size"):
        next(log.batches(0, gen))


def tiny_log(**changes):
    schema = RecSchema(
        (
            FeatureField("u", "user", cardinality=3),
            FeatureField("i", "item", cardinality=5),
            FeatureField("x", "item", "dense", dim=2),
        )
    )
    args = dict(
        schema=schema,
        users={"u": torch.tensor([0, 2])},
        items={"i": torch.tensor([1, 2, 3, 4]), "x": torch.zeros(4, 2)},
        request=torch.tensor([0, 0, 1, 1]),
        labels=torch.tensor([0.0, 1.0, 1.0, 0.0]),
    )
    return ClickLog(**(args | changes))


def test_clicklog_accepts_good_input_and_normalises_dtypes():
    good = tiny_log(labels=torch.tensor([0, 1, 1, 0]), request=torch.tensor([0, 0, 1, 1]).int())
    assert good.labels.dtype == torch.float32 and good.request.dtype == torch.long
    assert len(good) == 4 and good.n_requests == 2 and good.request_slices() == [(0, 2), (2, 4)]
    assert good.truth is None


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"labels": torch.tensor([0.0, 1.0, 0.5, 0.0])}, "labels must be 0 or 1"),
        ({"labels": torch.tensor([0.0, 1.0, 2.0, 0.0])}, "labels must be 0 or 1"),
        ({"labels": torch.tensor([0.0, 1.0, 1.0])}, "labels has 3 entries for 4 impressions"),
        ({"request": torch.tensor([0, 1, 0, 1])}, "non-decreasing"),
        ({"request": torch.tensor([0, 0, 1])}, "request has 3 entries for 4 impressions"),
        ({"request": torch.tensor([0.0, 0.0, 1.0, 1.0])}, "integer tensor"),
        ({"request": torch.tensor([0, 0, 0, 0])}, r"run over 0\.\.1"),
        ({"request": torch.tensor([1, 1, 1, 1])}, r"run over 0\.\.1"),
        ({"users": {"u": torch.tensor([0, 1, 2])}}, r"run over 0\.\.2"),
        ({"items": {"i": torch.tensor([1, 2, 3]), "x": torch.zeros(4, 2)}}, "differ in length"),
        ({"items": {"i": torch.tensor([1, 2, 3, 9]), "x": torch.zeros(4, 2)}}, "outside"),
        ({"users": {"v": torch.tensor([0, 1])}}, "miss"),
        ({"truth": torch.tensor([0.1, 0.2, 1.5, 0.0])}, r"probabilities in \[0, 1\]"),
        ({"truth": torch.tensor([0.1, 0.2])}, "truth has 2 entries for 4 impressions"),
    ],
)
def test_clicklog_rejects_bad_input(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_log(**changes)


def test_clicklog_rejects_gap_in_requests():
    with pytest.raises(ValueError, match="with gaps"):
        tiny_log(users={"u": torch.tensor([0, 1, 2])}, request=torch.tensor([0, 0, 2, 2]))


# ---- MovieLens --------------------------------------------------------------------------------

DAY = 86_400
FAKE_INTER = [  # user, item, rating, timestamp
    (10, 1, 5, 0 * DAY + 10),
    (10, 2, 3, 0 * DAY + 5),
    (10, 3, 4, 0 * DAY + 20),
    (10, 1, 2, 3 * DAY + 1),  # a lone rating on day 3: dropped
    (10, 2, 4, 5 * DAY + 1),
    (10, 4, 1, 5 * DAY + 2),
    (7, 3, 5, 1 * DAY + 1),
    (7, 4, 4, 1 * DAY + 3),
    (99, 1, 5, 2 * DAY),  # a user missing from .user, with one request of two
    (99, 2, 5, 2 * DAY + 9),
]
FAKE_USER = ["7\t24\tM\tstudent\t1", "10\t60\tF\twriter\t2"]
FAKE_ITEM = [
    "1\tToy Story\t1995\tAnimation Children's Comedy",
    "2\tGoldenEye\t1995\tAction Adventure Thriller",
    "3\tUnknown Film\tunkonwn\tunknown",
    "4\tCasablanca\t1942\tDrama Romance War",
]


def write_fake(root: Path, drop: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    inter_header = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
    files = {
        "inter": ["\t".join(inter_header)] + ["\t".join(map(str, r)) for r in FAKE_INTER],
        "user": ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"]
        + FAKE_USER,
        "item": ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
        + FAKE_ITEM,
    }
    if drop is not None:  # remove one column from whichever file has it
        for part, lines in files.items():
            header = lines[0].split("\t")
            names = [h.split(":")[0] for h in header]
            if drop in names:
                j = names.index(drop)
                files[part] = [
                    "\t".join(x for k, x in enumerate(ln.split("\t")) if k != j) for ln in lines
                ]
    for part, lines in files.items():
        (root / f"ml-100k.{part}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_movielens_fake_folder(tmp_path):
    ml = movielens_100k(write_fake(tmp_path / "ml"))
    fields = {f.name: f for f in ml.schema.fields}
    assert [f.name for f in ml.schema.user_fields] == ["user_id", "age", "gender", "occupation"]
    assert [f.name for f in ml.schema.item_fields] == [
        "item_id",
        "release_year",
        "genre",
        "genres",
        "gender_genre",
    ]
    # users 7, 10, 99 -> 0, 1, 2; requests (user, day) sorted: (7, 1), (10, 0), (10, 5), (99, 2)
    assert fields["user_id"].cardinality == 3 and fields["item_id"].cardinality == 4
    assert ml.n_requests == 4 and len(ml) == 9  # the lone day-3 rating dropped
    assert ml.users["user_id"].tolist() == [0, 1, 1, 2]
    assert ml.request.tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 3]
    # within a request by timestamp: user 10's day 0 is items 2 (t=5), 1 (t=10), 3 (t=20)
    assert ml.items["item_id"].tolist() == [2, 3, 1, 0, 2, 1, 3, 0, 1]
    ratings = [5, 4, 3, 5, 4, 4, 1, 5, 5]
    assert ml.labels.tolist() == [float(r >= 4) for r in ratings]
    assert movielens_100k(tmp_path / "ml", min_rating=5).labels.tolist() == [
        float(r >= 5) for r in ratings
    ]
    # user features: ages 24 -> 18-24 (bucket 2), 60 -> 56+ (7); user 99 unknown (0) everywhere
    assert ml.users["age"].tolist() == [2, 7, 7, 0]
    assert ml.users["gender"].tolist() == [2, 1, 1, 0]  # F=1, M=2, missing=0
    assert ml.users["occupation"].tolist() == [1, 2, 2, 0]  # student=1, writer=2
    # item features: item 3 has an unknown year and the genre 'unknown' -> 0
    year = dict(zip(ml.items["item_id"].tolist(), ml.items["release_year"].tolist(), strict=True))
    assert year[2] == 0 and year[0] == year[1] != 0 and year[3] == 1  # 1942: <1950
    genre = dict(zip(ml.items["item_id"].tolist(), ml.items["genre"].tolist(), strict=True))
    assert genre[2] == 0 and len({genre[0], genre[1], genre[3]}) == 3
    hot = ml.items["genres"]
    assert fields["genres"].dim == 9  # the 9 genres listed; "unknown" is no genre
    assert hot[ml.items["item_id"] == 2].sum() == 0
    assert hot[ml.items["item_id"] == 0][0].sum() == 3  # Animation Children's Comedy
    assert ml.schema.check_features("item", ml.items) == 9


def test_movielens_gender_genre_cross(tmp_path):
    ml = movielens_100k(write_fake(tmp_path / "ml"))
    gender = ml.user_rows()["gender"]
    assert torch.equal(ml.items["gender_genre"], hash_cross(gender, ml.items["genre"], 128))
    # Casablanca (index 3, Drama) is seen by user 7 (M) and user 10 (F): the cross differs
    casablanca = ml.items["item_id"] == 3
    assert set(gender[casablanca].tolist()) == {1, 2}
    assert len(ml.items["gender_genre"][casablanca].unique()) == 2


def test_movielens_missing_file(tmp_path):
    root = write_fake(tmp_path / "ml")
    (root / "ml-100k.user").unlink()
    with pytest.raises(FileNotFoundError) as err:
        movielens_100k(root)
    assert str(root / "ml-100k.user") in str(err.value)
    assert "pip install --no-deps recbole==1.2.1" in str(err.value) and "root" in str(err.value)
    with pytest.raises(FileNotFoundError, match="ml-100k.inter"):
        movielens_100k(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "column, part", [("rating", "inter"), ("gender", "user"), ("class", "item")]
)
def test_movielens_missing_column(tmp_path, column, part):
    root = write_fake(tmp_path / "ml", drop=column)
    with pytest.raises(ValueError, match=rf"ml-100k\.{part} misses column\(s\) {column}"):
        movielens_100k(root)


def test_movielens_bad_number(tmp_path):
    root = write_fake(tmp_path / "ml")
    path = root / "ml-100k.inter"
    path.write_text(path.read_text().replace("10\t1\t5\t10", "10\t1\tfive\t10"))
    with pytest.raises(ValueError, match="rating holds a non-number: 'five'"):
        movielens_100k(root)


def recbole_ml100k() -> Path:
    spec = importlib.util.find_spec("recbole")
    if spec is None:
        pytest.skip("recbole is not installed (pip install --no-deps recbole==1.2.1)")
    root = Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-100k"
    if not all((root / f"ml-100k.{p}").is_file() for p in ("inter", "user", "item")):
        pytest.skip(f"recbole's MovieLens-100k files are absent from {root}")
    return root


def test_movielens_real():
    recbole_ml100k()
    ml = movielens_100k()
    fields = {f.name: f for f in ml.schema.fields}
    assert fields["user_id"].cardinality == 943 and fields["item_id"].cardinality == 1682
    # 100,000 ratings; 424 are their user's only rating of a day and are dropped
    assert len(ml) == 99_576 and ml.n_requests == 2_091
    assert len(ml.users["user_id"].unique()) == 943
    assert 0.5 < ml.labels.mean() < 0.6  # 55,375 of 100,000 ratings are >= 4
    assert min(b - a for a, b in ml.request_slices()) >= 2
    assert fields["gender"].cardinality == 3 and fields["occupation"].cardinality == 22
    assert fields["genres"].dim == 18 and fields["genre"].cardinality == 19
    train, test = ml.split(0.2, seed=0)
    assert train.n_requests + test.n_requests == ml.n_requests


def test_movielens_without_recbole(monkeypatch):
    import yw_bench.rec_data as rec_data

    monkeypatch.setattr(rec_data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"recbole is not installed.*recbole==1\.2\.1"):
        movielens_100k()
