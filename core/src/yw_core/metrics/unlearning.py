"""Machine-unlearning metrics: membership-inference attacks on the forget set and Avg.Gap (§12).

- `mia_efficacy` is the SVC attack of Jia et al. 2023 (OPTML-Group/Unlearn-Sparse
  `evaluation/SVC_MIA.py`): an RBF SVC learns retain (member) against test (non-member) from one
  per-sample feature, and the efficacy is the fraction of the forget set it calls a non-member.
  Higher = better forgetting; compare with a model retrained without the forget set.
- `entropy_mia` is the SCRUB / bad-teacher / SSD attack: a balanced logistic regression on the
  softmax entropy, retain (1) against test (0); it reports the mean predicted membership of the
  forget set. Lower = better forgetting (a retrained model scores about 0 on a forgotten class).
- `avg_gap` is SalUn's Avg.Gap: the mean absolute difference from the retrained reference.

Every result is in [0, 1] (multiply by 100 for the papers' percentages), except the gaps, which are
in the caller's units. The attacks take softmax probabilities (N, C), torch tensors on any device or
numpy arrays, and fit scikit-learn models deterministically (no randomness is involved).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from ._arrays import labels as _labels
from ._arrays import scores_2d, to_numpy

MIA_FEATURES = ("correctness", "confidence", "entropy", "m_entropy", "prob")

_SUM_TOLERANCE = 1e-3  # float32 softmax rows sum to 1 within ~1e-6; logits essentially never do
_LOW_PRECISION_SUM_TOLERANCE = 1e-2  # bfloat16 softmax rows are off by up to ~3e-3
_LOW_PRECISION = {"torch.float16", "torch.bfloat16", "float16"}
_LOG_FLOOR = 1e-30  # log(0) is read as log(1e-30), as in Unlearn-Sparse


def mia_features(probs, labels) -> dict[str, np.ndarray]:
    """The five per-sample attack features of softmax probabilities `probs` (N, C) and `labels`.

    Returns float64 numpy arrays (per-sample values, not JSON summaries):
    - "correctness": 1.0 where the top class is the label, else 0.0 (N,);
    - "confidence": p_y, the probability of the label (N,);
    - "entropy": -sum_c p_c log p_c, with 0 log 0 = 0 (N,);
    - "m_entropy": the modified entropy of Song & Mittal 2021, row by row,
      -(1 - p_y) log p_y - sum_{c != y} p_c log(1 - p_c) (N,);
    - "prob": the probability vector itself (N, C).

    Logarithms of 0 are read as log(1e-30). Unlearn-Sparse's `m_entropy` differs from the
    per-row form used here: it indexes whole columns (`p[:, labels]`), so every class that is
    some sample's label in the batch gets the label treatment in every row, and it takes log p where
    log(1 - p) is due. Its values (and so its m_entropy efficacy) are not comparable with these.
    """
    p, y = _probs_and_labels(probs, labels, "probs", "labels")
    return _features(p, y)


def mia_efficacy(
    retain_probs,
    retain_labels,
    test_probs,
    test_labels,
    forget_probs,
    forget_labels,
    feature: str = "confidence",
) -> float:
    """MIA-Efficacy (Jia et al. 2023): the share of the forget set the SVC attack calls non-member.

    Shadow members are the first |test| retain samples (label 1), shadow non-members the test set
    (label 0); `SVC(C=3, gamma="auto", kernel="rbf")` is fitted on `feature` (one of
    `MIA_FEATURES`; "confidence" is the headline number) and predicts the forget set. Pass retain
    in a fixed order: "first" is the order given. When retain is smaller than test, all of retain
    is used and only its size's worth of test (the first samples), so that the two shadow classes
    stay balanced; Unlearn-Sparse keeps the whole test set there. Returns a float in [0, 1];
    higher = better forgetting, judged against a retrained model.
    """
    _check_feature(feature)
    sets = _three_sets(
        retain_probs, retain_labels, test_probs, test_labels, forget_probs, forget_labels
    )
    retain, test, forget = (_features(p, y)[feature] for p, y in sets)
    return _svc_efficacy(retain, test, forget)


def mia_efficacies(
    retain_probs, retain_labels, test_probs, test_labels, forget_probs, forget_labels
) -> dict[str, float]:
    """`mia_efficacy` for every feature at once: {feature: efficacy} in `MIA_FEATURES` order."""
    sets = _three_sets(
        retain_probs, retain_labels, test_probs, test_labels, forget_probs, forget_labels
    )
    retain, test, forget = (_features(p, y) for p, y in sets)
    return {f: _svc_efficacy(retain[f], test[f], forget[f]) for f in MIA_FEATURES}


def mia_efficacy_from_features(member_features, nonmember_features, forget_features) -> float:
    """The SVC attack of `mia_efficacy` on features the caller computed: (N,) or (N, D) each.

    Uses the first min(|members|, |non-members|) samples of each shadow set, fits
    `SVC(C=3, gamma="auto", kernel="rbf")` on members (1) against non-members (0) and returns the
    fraction of `forget_features` predicted non-member, a float in [0, 1].
    """
    members = _feature_matrix(member_features, "member_features")
    nonmembers = _feature_matrix(nonmember_features, "nonmember_features")
    forget = _feature_matrix(forget_features, "forget_features")
    dims = {members.shape[1], nonmembers.shape[1], forget.shape[1]}
    if len(dims) > 1:
        raise ValueError(
            "member_features, nonmember_features and forget_features must have the same number "
            f"of feature columns, got {members.shape[1]}, {nonmembers.shape[1]} and "
            f"{forget.shape[1]}"
        )
    return _svc_efficacy(members, nonmembers, forget)


def entropy_mia(retain_probs, test_probs, forget_probs) -> float:
    """The entropy attack of SCRUB / bad teacher / SSD: mean membership of the forget set.

    `LogisticRegression(class_weight="balanced")` is fitted on the softmax entropy of every retain
    sample (label 1) and every test sample (label 0); the result is the mean of its hard 0/1
    predictions on the forget set, a float in [0, 1] (the papers print it x 100). Lower = better
    forgetting. The entropy needs no labels. scikit-learn's default solver is used (the SSD code
    also asked for `multi_class="multinomial"`, which newer scikit-learn no longer accepts).
    """
    from sklearn.linear_model import LogisticRegression  # lazy: the package imports numpy only

    retain = _entropy(_probs(retain_probs, "retain_probs"))
    test = _entropy(_probs(test_probs, "test_probs"))
    forget = _entropy(_probs(forget_probs, "forget_probs"))
    x = np.concatenate([retain, test])[:, None]
    y = np.r_[np.ones(len(retain)), np.zeros(len(test))]
    clf = LogisticRegression(class_weight="balanced").fit(x, y)
    return float(np.mean(clf.predict(forget[:, None])))


def gaps(
    metrics: Mapping, reference: Mapping, keys: Iterable[str] = ("ra", "fa", "ta", "mia")
) -> dict[str, float]:
    """{key: |metrics[key] - reference[key]|} for each key, in the caller's units."""
    keys = _keys(keys)
    out = {}
    for k in keys:
        a, b = _value(metrics, "metrics", k), _value(reference, "reference", k)
        out[k] = abs(a - b)
    return out


def avg_gap(
    metrics: Mapping, reference: Mapping, keys: Iterable[str] = ("ra", "fa", "ta", "mia")
) -> float:
    """Avg.Gap (SalUn, Fan et al. 2024): the mean over `keys` of |metrics[k] - reference[k]|.

    `reference` is the model retrained on the retain set (same seed and forget set), so
    avg_gap(retrain, retrain) = 0. The units are the caller's (the papers use percentage points).
    SalUn averages UA = 100 - FA, RA, TA and MIA-Efficacy; |ΔUA| = |ΔFA|, so FA serves as well.
    MU-Mis averages RA, FA and TA only: pass keys=("ra", "fa", "ta").
    """
    per_key = gaps(metrics, reference, keys)
    return float(sum(per_key.values()) / len(per_key))


# ---- helpers ----------------------------------------------------------------------------------


def _probs(x, name: str) -> np.ndarray:
    """`x` as validated softmax probabilities (N, C), float64, clipped to [0, 1]."""
    tolerance = (
        _LOW_PRECISION_SUM_TOLERANCE
        if str(getattr(x, "dtype", "")) in _LOW_PRECISION
        else _SUM_TOLERANCE
    )
    arr = to_numpy(x, name)
    if arr.ndim == 2 and arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(arr.shape)}): the set needs samples")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D softmax probabilities (N, C), got shape {tuple(arr.shape)}"
        )
    p = scores_2d(arr, name)
    if np.isnan(p).any():
        raise ValueError(f"{name} contains NaN")
    if p.min() < -tolerance or p.max() > 1.0 + tolerance:
        raise ValueError(
            f"{name} must lie in [0, 1], got values in [{p.min():.4g}, {p.max():.4g}]: pass "
            "softmax probabilities (e.g. logits.softmax(dim=1)), not logits"
        )
    off = np.abs(p.sum(axis=1) - 1.0)
    worst = int(off.argmax())
    if off[worst] > tolerance:
        raise ValueError(
            f"{name} rows must sum to 1 (row {worst} sums to {p[worst].sum():.4g}): pass softmax "
            "probabilities (e.g. logits.softmax(dim=1)), not logits"
        )
    return np.clip(p, 0.0, 1.0)


def _probs_and_labels(probs, labels, p_name: str, y_name: str) -> tuple[np.ndarray, np.ndarray]:
    p = _probs(probs, p_name)
    return p, _labels(labels, len(p), p.shape[1], name=y_name)


def _three_sets(retain_p, retain_y, test_p, test_y, forget_p, forget_y):
    sets = [
        _probs_and_labels(retain_p, retain_y, "retain_probs", "retain_labels"),
        _probs_and_labels(test_p, test_y, "test_probs", "test_labels"),
        _probs_and_labels(forget_p, forget_y, "forget_probs", "forget_labels"),
    ]
    classes = [p.shape[1] for p, _ in sets]
    if len(set(classes)) > 1:
        raise ValueError(
            "retain_probs, test_probs and forget_probs must have the same number of classes, got "
            f"{classes[0]}, {classes[1]} and {classes[2]}"
        )
    return sets


def _entropy(p: np.ndarray) -> np.ndarray:
    # p = 0 contributes 0; `0.0 -` keeps a one-hot row's entropy at 0.0 rather than -0.0
    return 0.0 - np.sum(p * np.log(np.maximum(p, _LOG_FLOOR)), axis=1)


def _features(p: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    rows = np.arange(len(p))
    p_y = p[rows, y]
    others = p.copy()
    others[rows, y] = 0.0  # drops the label's term from the sum over c != y
    m_entropy = 0.0 - (
        (1.0 - p_y) * np.log(np.maximum(p_y, _LOG_FLOOR))
        + np.sum(others * np.log(np.maximum(1.0 - others, _LOG_FLOOR)), axis=1)
    )
    return {
        "correctness": (p.argmax(axis=1) == y).astype(np.float64),
        "confidence": p_y,
        "entropy": _entropy(p),
        "m_entropy": m_entropy,
        "prob": p,
    }


def _check_feature(feature) -> None:
    if feature not in MIA_FEATURES:
        raise ValueError(f"feature must be one of {', '.join(MIA_FEATURES)}, got {feature!r}")


def _feature_matrix(x, name: str) -> np.ndarray:
    arr = to_numpy(x, name)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (N,) or (N, D), got {tuple(arr.shape)}")
    if arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"{name} is empty (shape {tuple(arr.shape)}): the set needs samples")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.issubdtype(
        arr.dtype, np.complexfloating
    ):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64).reshape(len(arr), -1)
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains infinity")
    return arr


def _svc_efficacy(members: np.ndarray, nonmembers: np.ndarray, forget: np.ndarray) -> float:
    from sklearn.svm import SVC  # lazy: the package imports numpy only

    members, nonmembers, forget = (a.reshape(len(a), -1) for a in (members, nonmembers, forget))
    n = min(len(members), len(nonmembers))
    x = np.concatenate([members[:n], nonmembers[:n]])
    y = np.r_[np.ones(n), np.zeros(n)]
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
    return float(1.0 - np.mean(clf.predict(forget)))


def _keys(keys) -> tuple[str, ...]:
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    if not keys:
        raise ValueError("keys must name at least one metric")
    return keys


def _value(d, name: str, key) -> float:
    if not isinstance(d, Mapping):
        raise ValueError(f"{name} must be a mapping of metric names to numbers")
    if key not in d:
        raise ValueError(f"{name} is missing {key!r} (it has {', '.join(map(repr, d))})")
    try:
        value = float(d[key])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}[{key!r}] must be a number, got {d[key]!r}") from err
    if not math.isfinite(value):
        raise ValueError(f"{name}[{key!r}] is {value}: the gap needs finite numbers")
    return value
