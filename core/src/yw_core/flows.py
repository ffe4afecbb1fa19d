"""Network flows: the table anomaly detectors and their explainers read, its checks and its files.

A `Flows` holds one row per network flow:

| field | value |
| --- | --- |
| `x` | (N, F) float32 features, all finite |
| `y` | (N,) int64 labels: 0 benign, 1 anomaly, -1 unlabelled (semi-supervised training) |
| `names` | the F feature names |
| `truth` | (N,) int64 true 0/1 labels when known (synthetic, fully labelled files), else None |
| `kind` | (N,) anomaly type per row ("benign" for benign rows, "unknown" for unlabelled), or None |
| `planted` | synthetic flows only: anomaly type -> the names of the features that make it |

`synthetic_flows` draws flows whose anomalies are known by construction: each anomaly type moves
its own three features and nothing else, so an explanation can be checked against `planted`.
`flows_from_columns` checks a table of named columns (every error names the column);
`read_flows` loads a plain labelled CSV or the public NSL-KDD, UNSW-NB15 and CIC-IDS2017 files
(with the csv module; pandas is not needed).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

BENIGN = ("normal", "benign")  # label names meaning 0 (compared in lower case)
FILE_KINDS = ("csv", "nsl-kdd", "unsw-nb15", "cic-ids2017")

# the 41 features of KDD'99 / NSL-KDD, in file order; each row then has the attack name and
# (NSL-KDD only) a difficulty level
KDD_FEATURES = (
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land",
    "wrong_fragment", "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised",
    "root_shell", "su_attempted", "num_root", "num_file_creations", "num_shells",
    "num_access_files", "num_outbound_cmds", "is_host_login", "is_guest_login", "count",
    "srv_count", "serror_rate", "srv_serror_rate", "rerror_rate", "srv_rerror_rate",
    "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate", "dst_host_count",
    "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
)  # fmt: skip
CATEGORICAL = {
    "nsl-kdd": ("protocol_type", "service", "flag"),
    "unsw-nb15": ("proto", "service", "state"),
}
# CIC-IDS2017 columns that identify a flow rather than describe it (dropped when present)
CIC_IDENTIFIERS = (
    "Flow ID", "Source IP", "Src IP", "Source Port", "Src Port", "Destination IP", "Dst IP",
    "Timestamp",
)  # fmt: skip

# synthetic features: name, transform of the latent Gaussian, location, scale, and loadings on
# three shared factors (traffic volume, timing, errors) that correlate benign features [I]
FEATURES = (
    ("duration", "log", 1.0, 1.0, (0.5, 0.5, 0.0)),
    ("src_bytes", "log", 7.0, 1.2, (0.8, 0.0, 0.0)),
    ("dst_bytes", "log", 8.0, 1.5, (0.7, 0.0, 0.0)),
    ("packets", "log", 3.0, 1.0, (0.8, 0.2, 0.0)),
    ("packet_len_mean", "gauss", 500.0, 120.0, (0.4, 0.0, 0.0)),
    ("packet_len_std", "gauss", 200.0, 50.0, (0.3, 0.0, 0.0)),
    ("flow_iat_mean", "log", -3.0, 1.0, (0.0, 0.7, 0.0)),
    ("flow_iat_std", "log", -3.5, 1.0, (0.0, 0.6, 0.0)),
    ("syn_rate", "rate", -2.0, 1.0, (0.0, 0.0, 0.4)),
    ("fin_rate", "rate", -1.0, 1.0, (0.0, 0.0, -0.4)),
    ("rst_rate", "rate", -3.0, 1.0, (0.0, 0.0, 0.6)),
    ("dst_port_count", "log", 1.0, 0.7, (0.2, 0.0, 0.3)),
    ("distinct_dst_hosts", "log", 0.5, 0.7, (0.2, 0.0, 0.3)),
    ("src_port_count", "log", 1.5, 0.8, (0.3, 0.0, 0.0)),
    ("conn_same_host", "rate", 0.5, 1.0, (0.0, 0.0, 0.2)),
    ("failed_logins", "log", -1.0, 0.8, (0.0, 0.0, 0.5)),
    ("error_rate", "rate", -3.0, 1.0, (0.0, 0.0, 0.7)),
    ("upload_ratio", "rate", -1.0, 1.0, (0.3, 0.0, 0.0)),
    ("ttl_mean", "gauss", 64.0, 8.0, (0.0, 0.0, 0.0)),
    ("window_size", "gauss", 30000.0, 6000.0, (0.2, 0.0, 0.0)),
)
SYNTHETIC_FEATURES = tuple(f[0] for f in FEATURES)
# anomaly type -> its planted features and the direction each is pushed [I]; other types get
# three features no other type uses
PLANTED = {
    "dos": {"packets": 1, "syn_rate": 1, "flow_iat_mean": -1},
    "scan": {"dst_port_count": 1, "distinct_dst_hosts": 1, "rst_rate": 1},
    "exfiltration": {"src_bytes": 1, "upload_ratio": 1, "duration": 1},
    "brute_force": {"failed_logins": 1, "conn_same_host": 1, "error_rate": 1},
}


@dataclass(frozen=True, eq=False)
class Flows:
    """Flow features x (N, F), labels y (0 benign, 1 anomaly, -1 unlabelled) and what is known."""

    x: torch.Tensor
    y: torch.Tensor
    names: tuple[str, ...]
    truth: torch.Tensor | None = None
    kind: tuple[str, ...] | None = None
    planted: dict[str, tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        x = torch.as_tensor(self.x, dtype=torch.float32)
        y = torch.as_tensor(self.y, dtype=torch.int64)
        names = tuple(self.names)
        if x.ndim != 2:
            raise ValueError(f"flows: x must be (N, F), got shape {tuple(x.shape)}")
        if len(names) != x.shape[1] or len(set(names)) != len(names):
            raise ValueError(f"flows: need {x.shape[1]} distinct feature names, got {names!r}")
        if not torch.isfinite(x).all():
            bad = (~torch.isfinite(x)).any(0).nonzero().flatten().tolist()
            raise ValueError(f"flows: x holds NaN or inf in {', '.join(names[j] for j in bad)}")
        _check_labels(y, len(x), "y", allowed=(-1, 0, 1))
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "names", names)
        if self.truth is not None:
            truth = torch.as_tensor(self.truth, dtype=torch.int64)
            _check_labels(truth, len(x), "truth", allowed=(0, 1))
            object.__setattr__(self, "truth", truth)
        if self.kind is not None:
            kind = tuple(str(k) for k in self.kind)
            if len(kind) != len(x):
                raise ValueError(f"flows: kind has {len(kind)} entries for {len(x)} rows")
            object.__setattr__(self, "kind", kind)
        if self.planted is not None:
            planted = {str(k): tuple(v) for k, v in self.planted.items()}
            for k, features in planted.items():
                if unknown := [f for f in features if f not in names]:
                    raise ValueError(f"flows: planted[{k!r}] names unknown features {unknown}")
            object.__setattr__(self, "planted", planted)

    def __len__(self) -> int:
        return len(self.x)

    def dataset(self) -> TensorDataset:
        """The (x, y) pairs as a TensorDataset."""
        return TensorDataset(self.x, self.y)

    def subset(self, index: Any) -> Flows:
        """The rows at `index` (indices, a boolean mask or a slice), with everything known."""
        if isinstance(index, slice):
            index = torch.arange(len(self))[index]
        index = torch.as_tensor(index)
        if index.dtype == torch.bool:
            if index.shape != (len(self),):
                raise ValueError(f"a row mask needs shape ({len(self)},), got {tuple(index.shape)}")
            index = index.nonzero().flatten()
        index = index.long().flatten()
        rows = index.tolist()
        return dataclasses.replace(
            self,
            x=self.x[index],
            y=self.y[index],
            truth=None if self.truth is None else self.truth[index],
            kind=None if self.kind is None else tuple(self.kind[i] for i in rows),
        )

    def labelled(self) -> Flows:
        """The rows with a label (y >= 0)."""
        return self.subset(self.y >= 0)

    def hide_labels(self, fraction: float, seed: int) -> Flows:
        """Keeps the labels of a random `fraction` of the labelled rows, per class (at least one
        each); the others become -1. `truth` is kept."""
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        y = self.y.numpy()
        if not (y >= 0).any():
            raise ValueError("flows have no labelled rows to keep")
        rng = np.random.default_rng(seed)
        keep = np.zeros(len(y), dtype=bool)
        for c in (0, 1):
            rows = np.flatnonzero(y == c)
            if len(rows):
                keep[rng.choice(rows, max(1, round(fraction * len(rows))), replace=False)] = True
        return dataclasses.replace(self, y=torch.from_numpy(np.where(keep, y, -1)))

    def split(self, test_fraction: float, seed: int) -> tuple[Flows, Flows]:
        """(train, test): disjoint, stratified by `truth` (else by y, -1 being its own class)."""
        if not 0 < test_fraction < 1:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        strata = (self.truth if self.truth is not None else self.y).numpy()
        rng = np.random.default_rng(seed)
        test = np.zeros(len(self), dtype=bool)
        for c in np.unique(strata):
            rows = np.flatnonzero(strata == c)
            k = min(max(round(test_fraction * len(rows)), 1), len(rows) - 1)
            test[rng.choice(rows, k, replace=False)] = True
        if test.all() or not test.any():
            raise ValueError(f"{len(self)} flows are too few to split at {test_fraction}")
        return self.subset(~torch.from_numpy(test)), self.subset(torch.from_numpy(test))

    def standardise(self, reference: Flows | None = None) -> Flows:
        """Features z-scored by the reference's (default: own) mean and std (std 0 counts as 1)."""
        ref = self if reference is None else reference
        if tuple(ref.names) != self.names:
            raise ValueError(
                f"the reference has features {list(ref.names)}, these flows {list(self.names)}"
            )
        x = ref.x.double()
        mean, std = x.mean(0), x.std(0, correction=0)
        std = torch.where(std > 0, std, torch.ones_like(std))
        return dataclasses.replace(self, x=((self.x.double() - mean) / std).float())


def synthetic_flows(
    n: int = 3000,
    *,
    anomaly_share: float = 0.1,
    kinds: Sequence[str] = ("dos", "scan", "exfiltration"),
    label_fraction: float = 1.0,
    shift: float = 3.0,
    seed: int = 0,
) -> Flows:
    """`n` flows, a share of them anomalies split evenly over `kinds`; deterministic per seed.

    Benign flows are 20 correlated flow-like features (log-normal sizes and times, rates in
    (0, 1), Gaussian lengths). An anomaly is a benign draw whose 3 planted features are moved
    `shift` benign standard deviations (of the feature's latent Gaussian [I]) and nothing else.
    `label_fraction` < 1 hides labels as `Flows.hide_labels`; `truth` is always set."""
    kinds = tuple(kinds)
    if not kinds or len(set(kinds)) != len(kinds) or "benign" in kinds:
        raise ValueError(f"kinds must be distinct anomaly names other than 'benign', got {kinds}")
    if not 0 < anomaly_share < 1:
        raise ValueError(f"anomaly_share must be in (0, 1), got {anomaly_share}")
    n_anomalies = round(n * anomaly_share)
    if n_anomalies < len(kinds) or n_anomalies >= n:
        raise ValueError(
            f"n={n} at anomaly_share={anomaly_share} gives {n_anomalies} anomalies; need at "
            f"least one per kind ({len(kinds)}) and at least one benign flow"
        )
    rng = np.random.default_rng(seed)
    planted = _planted_directions(kinds, rng)
    loadings = np.array([f[4] for f in FEATURES])  # (F, 3)
    noise = np.sqrt(1 - (loadings**2).sum(1))
    z = rng.standard_normal((n, 3)) @ loadings.T + rng.standard_normal((n, len(FEATURES))) * noise
    counts = [n_anomalies // len(kinds) + (i < n_anomalies % len(kinds)) for i in range(len(kinds))]
    kind = np.array(
        ["benign"] * (n - n_anomalies) + [k for k, c in zip(kinds, counts) for _ in range(c)]
    )
    kind = kind[rng.permutation(n)]
    for k, directions in planted.items():
        for name, sign in directions.items():
            z[kind == k, SYNTHETIC_FEATURES.index(name)] += sign * shift
    x = np.empty_like(z)
    for j, (_, transform, loc, scale, _) in enumerate(FEATURES):
        if transform == "log":
            x[:, j] = np.exp(loc + scale * z[:, j])
        elif transform == "rate":
            x[:, j] = 1 / (1 + np.exp(-(loc + scale * z[:, j])))
        else:
            x[:, j] = loc + scale * z[:, j]
    truth = torch.from_numpy((kind != "benign").astype(np.int64))
    flows = Flows(
        x=torch.from_numpy(x).float(),
        y=truth.clone(),
        names=SYNTHETIC_FEATURES,
        truth=truth,
        kind=tuple(kind.tolist()),
        planted={k: tuple(d) for k, d in planted.items()},
    )
    return flows if label_fraction == 1 else flows.hide_labels(label_fraction, seed)


def flows_from_columns(
    columns: Mapping[str, Sequence],
    *,
    label: str | None = "label",
    kind: str | None = None,
    what: str = "flows",
) -> Flows:
    """Checked flows from named columns; every column but `label` (and `kind`) is a feature.

    Features must be numbers (or strings of numbers) and finite. Labels are 0/1, or names
    ("normal"/"benign" = 0, any other = 1); empty, None, NaN or -1 = unlabelled. `kind` names
    a column of anomaly types; without it, label names give the types. `label=None` gives
    unlabelled flows. `truth` is set when every row has a label."""
    if not isinstance(columns, Mapping) or not columns:
        raise ValueError(f"{what}: expected a non-empty mapping of column name -> values")
    lengths = {str(name): len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"{what}: columns have unequal lengths ({listed})")
    for name in (label, kind):
        if name is not None and name not in columns:
            raise ValueError(f"{what}: no column {name!r} (have: {', '.join(map(str, columns))})")
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError(f"{what} have no rows")
    features = [name for name in columns if name not in (label, kind)]
    if not features:
        raise ValueError(f"{what}: no feature columns besides {label!r}")
    x = np.stack([_numeric(columns[name], str(name), what) for name in features], axis=1)
    if label is None:
        y, names = np.full(n, -1), [None] * n
    else:
        parsed = [_label(v, i, label, what) for i, v in enumerate(columns[label])]
        y = np.array([p[0] for p in parsed])
        names = [p[1] for p in parsed]
        if (y < 0).all():
            raise ValueError(f"{what}: every value of the label column {label!r} is missing")
    if kind is not None:
        names = [None if v is None else str(v).strip() or None for v in columns[kind]]
    kinds = None
    if kind is not None or any(v is not None for v in names):
        kinds = tuple(
            "benign" if c == 0 else "unknown" if c < 0 else (k or "anomaly")
            for c, k in zip(y.tolist(), names)
        )
    y = torch.from_numpy(y.astype(np.int64))
    return Flows(
        x=torch.from_numpy(x).float(),
        y=y,
        names=tuple(str(f) for f in features),
        truth=y.clone() if (y >= 0).all() else None,
        kind=kinds,
    )


def read_flows(
    path: str | Path, *, kind: str = "csv", dropna: bool = False, like: Flows | None = None
) -> Flows:
    """Flows from a file of the given `kind`:

    - "csv": a CSV with a header, a `label` column and numeric features (an optional `kind`
      column holds anomaly types);
    - "nsl-kdd": KDDTrain+/KDDTest+ text files (no header: the 41 KDD features, the attack
      name, a difficulty level that is dropped); protocol_type, service and flag one-hot;
    - "unsw-nb15": the training/testing-set CSVs (`label` 0/1, `attack_cat` as kind, `id`
      dropped); proto, service and state one-hot;
    - "cic-ids2017": the CICIDS2017 CSVs (header names stripped, label "Label", identifier
      columns such as Flow ID, IPs and Timestamp dropped).

    NaN, inf or empty features are errors naming the column; `dropna=True` drops those rows
    instead, with a warning. One-hot columns are named "column=value" from the values in the
    file; `like` (flows read from the matching training file) gives the result its feature
    columns in its order, one-hot values it lacks being zero and unseen ones dropped [I]."""
    path = Path(path)
    if kind not in FILE_KINDS:
        raise ValueError(f"unknown flow file kind {kind!r}; use one of {', '.join(FILE_KINDS)}")
    if not path.is_file():
        raise FileNotFoundError(f"no flow file at {path}")
    label, kind_column, drop = "label", None, ()
    if kind == "nsl-kdd":
        columns = _read_kdd(path)
    else:
        columns = _read_csv(path)
    if kind == "csv":
        required, kind_column = ("label",), "kind" if "kind" in columns else None
    elif kind == "nsl-kdd":
        required = ()
    elif kind == "unsw-nb15":
        required, kind_column, drop = (
            ("label", "attack_cat", *CATEGORICAL[kind]),
            "attack_cat",
            ("id",),
        )
    else:
        required, label, drop = ("Label",), "Label", CIC_IDENTIFIERS
    if missing := [c for c in required if c not in columns]:
        raise ValueError(
            f"{path} misses column(s) {', '.join(missing)} for a {kind} file "
            f"(have: {', '.join(columns)})"
        )
    columns = {k: v for k, v in columns.items() if k not in drop}
    for name in CATEGORICAL.get(kind, ()):
        columns = _one_hot(columns, name)
    if dropna:
        columns = _drop_missing(columns, (label, kind_column), path)
    flows = flows_from_columns(columns, label=label, kind=kind_column, what=str(path))
    return flows if like is None else _align(flows, like, kind, path)


def _planted_directions(kinds: tuple[str, ...], rng: np.random.Generator) -> dict[str, dict]:
    """Each kind's planted features and signs: the table's, else 3 unused features (sign +)."""
    used = {f for k in kinds if k in PLANTED for f in PLANTED[k]}
    free = [f for f in SYNTHETIC_FEATURES if f not in used]
    planted = {}
    for k in kinds:
        if k in PLANTED:
            planted[k] = PLANTED[k]
            continue
        if len(free) < 3:
            raise ValueError(f"too many anomaly kinds: no 3 unused features left for {k!r}")
        chosen = [free[i] for i in sorted(rng.choice(len(free), 3, replace=False))]
        free = [f for f in free if f not in chosen]
        planted[k] = dict.fromkeys(chosen, 1)
    return planted


def _check_labels(t: torch.Tensor, n: int, name: str, allowed: tuple[int, ...]) -> None:
    if tuple(t.shape) != (n,):
        raise ValueError(f"flows: {name} must have shape ({n},), got {tuple(t.shape)}")
    if bad := sorted(set(t.unique().tolist()) - set(allowed)):
        raise ValueError(f"flows: {name} holds {bad}; allowed values are {list(allowed)}")


def _numeric(values: Sequence, name: str, what: str, finite: bool = True) -> np.ndarray:
    """A column as float64; ValueError naming it (and a row) when a value is not a finite
    number. With finite=False, NaN, inf and empty values are kept as NaN/inf."""
    try:
        column = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        column = None
    if column is None or column.ndim != 1:
        column = np.empty(len(values))
        for i, value in enumerate(values):
            column[i] = _number(value, i, name, what, finite)
    if finite and not np.isfinite(column).all():
        i = int(np.flatnonzero(~np.isfinite(column))[0])
        value = values[i]
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"{what}: column {name!r} has no value at row {i}")
        raise ValueError(f"{what}: column {name!r} has {value!r} (NaN or inf) at row {i}")
    return column


def _number(value: Any, i: int, name: str, what: str, finite: bool) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        if finite:
            raise ValueError(f"{what}: column {name!r} has no value at row {i}")
        return math.nan
    try:
        return float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{what}: column {name!r} is not numeric (row {i} has {value!r}); "
            "features must be numbers"
        ) from None


def _label(value: Any, i: int, name: str, what: str) -> tuple[int, str | None]:
    """(0, 1 or -1 for unlabelled; the label's name when it is a name)."""
    if value is None:
        return -1, None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return -1, None
        try:
            value = float(text)
        except ValueError:
            return (0 if text.lower().rstrip(".") in BENIGN else 1), text
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.inf
    if math.isnan(number):
        return -1, None
    if number not in (-1, 0, 1):
        raise ValueError(
            f"{what}: label column {name!r} has {value!r} at row {i}; labels are 0/1, "
            "-1 or empty for unlabelled, or names ('normal'/'benign' = 0, others = anomaly)"
        )
    return int(number), None


def _read_csv(path: Path) -> dict[str, list[str]]:
    """A header CSV as columns; names stripped, a repeated name gets ".1", ".2" (as pandas)."""
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        rows = [row for row in csv.reader(f) if row]
    if not rows:
        raise ValueError(f"{path} is empty")
    header, seen = [], {}
    for name in (h.strip() for h in rows[0]):
        header.append(name if name not in seen else f"{name}.{seen[name]}")
        seen[name] = seen.get(name, 0) + 1
    if len(rows) == 1:
        raise ValueError(f"{path} has a header but no flows")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(
                f"{path}, line {line}: {len(row)} fields, the header has {len(header)}"
            )
    return dict(zip(header, (list(c) for c in zip(*rows[1:]))))


def _read_kdd(path: Path) -> dict[str, list[str]]:
    """An NSL-KDD (43 fields) or KDD'99 (42 fields) headerless file as named columns."""
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        rows = [row for row in csv.reader(f) if row]
    if not rows:
        raise ValueError(f"{path} is empty")
    for line, row in enumerate(rows, start=1):
        if len(row) not in (42, 43):
            raise ValueError(
                f"{path}, line {line}: {len(row)} fields; an NSL-KDD row has 43 (41 features, "
                "the attack name, the difficulty level)"
            )
    columns = list(zip(*(row[:42] for row in rows)))
    return {name: list(c) for name, c in zip((*KDD_FEATURES, "label"), columns)}


def _one_hot(columns: dict[str, Sequence], name: str) -> dict[str, Sequence]:
    """The categorical column `name` replaced, in place, by 0/1 columns "name=value"."""
    values = np.array([str(v).strip() for v in columns[name]])
    out = {}
    for key, column in columns.items():
        if key != name:
            out[key] = column
            continue
        for value in np.unique(values):
            out[f"{name}={value}"] = (values == value).astype(np.float64)
    return out


def _drop_missing(columns: dict[str, Sequence], keep: tuple, path: Path) -> dict[str, Sequence]:
    """The rows whose features are all finite, with a warning saying how many were dropped."""
    parsed = {
        k: v if k in keep else _numeric(v, k, str(path), finite=False) for k, v in columns.items()
    }
    ok = np.ones(len(next(iter(parsed.values()))), dtype=bool)
    for k, v in parsed.items():
        if k not in keep:
            ok &= np.isfinite(v)
    if ok.all():
        return parsed
    if not ok.any():
        raise ValueError(f"{path}: every row has a NaN, inf or empty feature")
    warnings.warn(
        f"{path}: dropped {int((~ok).sum())} of {len(ok)} rows with NaN, inf or empty features",
        stacklevel=3,
    )
    rows = np.flatnonzero(ok)
    return {
        k: v[ok] if isinstance(v, np.ndarray) else [v[i] for i in rows] for k, v in parsed.items()
    }


def _align(flows: Flows, like: Flows, kind: str, path: Path) -> Flows:
    """`flows` with `like`'s feature columns: absent one-hot columns zero, unseen ones dropped."""
    groups = CATEGORICAL.get(kind, ())

    def one_hot(name: str) -> bool:
        return name.split("=", 1)[0] in groups and "=" in name

    index = {name: j for j, name in enumerate(flows.names)}
    wanted = set(like.names)
    missing = [n for n in like.names if n not in index and not one_hot(n)]
    extra = [n for n in flows.names if n not in wanted and not one_hot(n)]
    if missing or extra:
        raise ValueError(
            f"{path} does not match the reference flows: missing {missing}, extra {extra}"
        )
    unseen = [index[n] for n in flows.names if n not in wanted]
    if unseen and (rows := int((flows.x[:, unseen] != 0).any(1).sum())):
        dropped = [flows.names[j] for j in unseen]
        warnings.warn(
            f"{path}: {rows} rows have categories the reference lacks ({', '.join(dropped)}); "
            "they are encoded as all zero",
            stacklevel=3,
        )
    zero = torch.zeros(len(flows))
    x = torch.stack([flows.x[:, index[n]] if n in index else zero for n in like.names], 1)
    return dataclasses.replace(flows, x=x, names=like.names)
