"""Step 2 of the forecast: imbalance handling and the two-stage stacking ensemble (spec section 7).

The paper resamples the training pairs with SMOTETomek to 2:8 positive:negative, adds sample
weights and regularisation, screens seven base models by cross-validated KS (stage 1: it kept
LightGBM, AdaBoost and XGBoost), stacks the kept models' probabilities with a RidgeClassifier
(stage 2) and picks the threshold minimising Cost = FPR + theta * FNR. LightGBM and XGBoost are
replaced by scikit-learn's histogram GBDT (LightGBM's algorithm) and exact-split GBDT, and the
paper's Bayesian hyperparameter search by fixed, moderately regularised defaults [I], sized so
that a fit on 2,000 rows x 80 features takes about ten seconds on one core.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    AdaBoostClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import has_fit_parameter
from threadpoolctl import threadpool_limits

from yw_core.metrics import best_threshold, ks_statistic

STRATEGIES = ("smotetomek", "smote", "class_weight", "none")


def rebalance(X, y, strategy: str, *, ratio: float = 0.25, seed: int = 0):
    """(X, y, sample_weight or None) after the imbalance `strategy`; `ratio` is the positives
    per negative that SMOTE resamples to (0.25 = the paper's 2:8).

    "smotetomek": SMOTE to `ratio`, then Tomek links removed (both ends, so the ratio is only
    approximate); "smote": SMOTE alone; "class_weight": no resampling, weights giving both classes
    the same total; "none": unchanged. SMOTE uses min(5, positives - 1) neighbours and needs 2
    positives; when positives are already at least `ratio` of the negatives it resamples nothing
    (and "smotetomek" only removes Tomek links). [I] Neighbours are found on standardised
    features (counts of thousands would otherwise outweigh cosines); the new rows are mapped back.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGIES)}")
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must lie in (0, 1], got {ratio!r}")
    X, y = _check_xy(X, y)
    if strategy == "none":
        return X, y, None
    if strategy == "class_weight":
        return X, y, compute_sample_weight("balanced", y)
    from imblearn.over_sampling import SMOTE
    from imblearn.under_sampling import TomekLinks

    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if n_pos < 2:
        raise ValueError(f"{strategy} needs at least 2 positives to interpolate, got {n_pos}")
    scale = StandardScaler().fit(X)  # [I] neighbours by standardised distance, not raw units
    if n_pos < ratio * n_neg:
        smote = SMOTE(sampling_strategy=ratio, k_neighbors=min(5, n_pos - 1), random_state=seed)
        grown, y = smote.fit_resample(scale.transform(X), y)  # the new rows come after X's
        X = np.vstack([X, scale.inverse_transform(grown[len(X) :])])
    elif strategy == "smote":
        return X, y, None
    if strategy == "smotetomek":  # SMOTETomek: SMOTE, then both ends of every Tomek link go
        tomek = TomekLinks(sampling_strategy="all")
        tomek.fit_resample(scale.transform(X), y)
        X, y = X[tomek.sample_indices_], y[tomek.sample_indices_]
    return X, y.astype(int), None


def _svm(seed: int):
    """RBF SVM with Platt-scaled probabilities from a 3-fold calibration: what the deprecated
    SVC(probability=True) did with 5 internal folds, at 4 SVM fits instead of 6."""
    svc = SVC(C=1.0, cache_size=500, random_state=seed)
    return _scaled(CalibratedClassifierCV(svc, method="sigmoid", cv=3, ensemble=False))


def _knn(seed: int):
    return _scaled(KNeighborsClassifier(n_neighbors=10, n_jobs=1))


def _rf(seed: int):
    return RandomForestClassifier(n_estimators=50, min_samples_leaf=5, n_jobs=1, random_state=seed)


def _adaboost(seed: int):
    return AdaBoostClassifier(n_estimators=30, learning_rate=0.5, random_state=seed)


def _lightgbm(seed: int):
    """LightGBM stand-in: scikit-learn's histogram GBDT (LightGBM's algorithm), L2-regularised,
    15 leaves per tree, no early stopping, on unweighted bins (`_Bins`)."""
    hgb = HistGradientBoostingClassifier(
        max_iter=100,
        max_leaf_nodes=15,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )
    return Pipeline([("bins", _Bins()), ("model", hgb)])


class _Bins(TransformerMixin, BaseEstimator):
    """Each feature as its bin index, with at most 255 bins from unweighted quantiles (as
    LightGBM bins). The histogram GBDT then keeps these bins as they are: given sample weights,
    scikit-learn 1.9 would find weighted percentiles one at a time, making fits ~10x slower."""

    def fit(self, X, y=None):
        self.edges_ = [_edges(column) for column in np.asarray(X, dtype=np.float64).T]
        return self

    def transform(self, X):
        columns = zip(self.edges_, np.asarray(X, dtype=np.float64).T)
        return np.column_stack([np.searchsorted(e, column) for e, column in columns]).astype(float)


def _edges(column: np.ndarray, bins: int = 255) -> np.ndarray:
    """Bin edges: midpoints between the distinct values, or quantiles when there are too many."""
    values = np.unique(column)
    if len(values) <= bins:
        return (values[:-1] + values[1:]) / 2
    return np.unique(np.quantile(column, np.linspace(0, 1, bins + 1)[1:-1]))


def _xgboost(seed: int):
    """XGBoost stand-in (XGBoost is not a dependency): scikit-learn's exact-split GBDT, with row
    and column subsampling as XGBoost's subsample and colsample regularise."""
    return GradientBoostingClassifier(
        n_estimators=50, subsample=0.8, max_features=0.3, random_state=seed
    )


def _mlp(seed: int):
    mlp = MLPClassifier((64,), alpha=1e-3, early_stopping=True, max_iter=300, random_state=seed)
    return _scaled(mlp)


def _scaled(model):
    return Pipeline([("scale", StandardScaler()), ("model", model)])


BASE_MODELS = {
    "svm": _svm,
    "knn": _knn,
    "rf": _rf,
    "adaboost": _adaboost,
    "lightgbm": _lightgbm,
    "xgboost": _xgboost,
    "mlp": _mlp,
}


class TwoStageEnsemble:
    """Stage 1 keeps the `keep` base models with the best stratified-CV KS; stage 2 stacks their
    out-of-fold probabilities with a RidgeClassifier and thresholds it at the least Cost.

    `sampler` (a `rebalance` strategy, to `ratio`) is applied to the training rows of every fold
    and to all rows for the final refit, never to the rows a fold scores: cross-validated KS,
    the stacking matrix and the threshold see the data's own class balance [I: the paper does
    not say where it resamples; resampling before the folds lets SMOTE's interpolated positives
    leak into the rows that score them, and inflated LightGBM's CV KS from 0.62 to 0.83].

    The out-of-fold (OOF) matrix is built here, on the same folds as stage 1's KS. The Ridge is
    fitted on it, `threshold_` minimises FPR + theta * FNR over the Ridge's decision values on it
    (`oof_scores_`), and the kept models are refitted on all rows (`models_`). With keep=1 there
    is no Ridge: the score is the kept model's probability. BLAS and OpenMP run on one thread
    during fit and predict: under CPU contention their thread pools made some models 10x slower.
    """

    def __init__(
        self,
        base=("svm", "knn", "rf", "adaboost", "lightgbm", "xgboost", "mlp"),
        keep: int = 3,
        cv: int = 5,
        theta: float = 1.0,
        seed: int = 0,
        sampler: str = "none",
        ratio: float = 0.25,
    ):
        if sampler not in STRATEGIES:
            raise ValueError(f"unknown sampler {sampler!r}; known: {', '.join(STRATEGIES)}")
        base = (base,) if isinstance(base, str) else tuple(base)
        if unknown := [b for b in base if b not in BASE_MODELS]:
            raise ValueError(f"unknown base model(s) {unknown}; known: {', '.join(BASE_MODELS)}")
        if not base or len(set(base)) != len(base):
            raise ValueError(f"base must name distinct models, got {base}")
        if not 1 <= keep <= len(base):
            raise ValueError(f"keep must lie in [1, {len(base)}] (the base models), got {keep}")
        if cv < 2:
            raise ValueError(f"cv must be at least 2, got {cv}")
        if not theta > 0:
            raise ValueError(f"theta must be positive, got {theta!r}")
        self.base, self.keep, self.cv, self.theta, self.seed = base, keep, cv, theta, seed
        self.sampler, self.ratio = sampler, ratio

    def fit(self, X, y, sample_weight=None):
        """Screen, stack and threshold on (X, y); `sample_weight` (only with sampler "none")
        reaches every model that accepts it (not KNN), the Ridge included."""
        X, y = _check_xy(X, y)
        if sample_weight is not None and self.sampler != "none":
            raise ValueError(f"sample_weight and sampler={self.sampler!r} are exclusive")
        if min(y.sum(), len(y) - y.sum()) < self.cv:
            raise ValueError(f"each class needs at least cv={self.cv} rows, got {np.bincount(y)}")
        w = None if sample_weight is None else _check_weight(sample_weight, len(y))
        folds = list(StratifiedKFold(self.cv, shuffle=True, random_state=self.seed).split(X, y))
        with threadpool_limits(limits=1):
            oof = {name: np.zeros(len(y)) for name in self.base}
            for name in self.base:
                for train, test in folds:
                    model = self._fit_balanced(name, X[train], y[train], _take(w, train))
                    oof[name][test] = model.predict_proba(X[test])[:, 1]
            self.cv_ks_ = {name: ks_statistic(oof[name], y) for name in self.base}
            ranked = sorted(self.base, key=lambda name: -self.cv_ks_[name])  # ties: base order
            self.kept_ = tuple(ranked[: self.keep])
            probs = np.column_stack([oof[name] for name in self.kept_])
            self.meta_ = None
            if self.keep > 1:
                self.meta_ = RidgeClassifier(alpha=1.0).fit(probs, y, sample_weight=w)
            self.oof_scores_ = self._stack(probs)
            self.threshold_ = best_threshold(self.oof_scores_, y, self.theta)
            self.models_ = {name: self._fit_balanced(name, X, y, w) for name in self.kept_}
        return self

    def _fit_balanced(self, name: str, X, y, w):
        """BASE_MODELS[name] fitted on the rows after the sampler."""
        if self.sampler != "none":
            X, y, w = rebalance(X, y, self.sampler, ratio=self.ratio, seed=self.seed)
        return _fit(name, self.seed, X, y, w)

    def decision_function(self, X) -> np.ndarray:
        """The stacked score of each row (higher = more likely positive)."""
        if not hasattr(self, "models_"):
            raise RuntimeError("call fit() before decision_function()")
        X = _check_x(X)
        with threadpool_limits(limits=1):
            probs = [self.models_[name].predict_proba(X)[:, 1] for name in self.kept_]
        return self._stack(np.column_stack(probs))

    def predict(self, X) -> np.ndarray:
        """1 where the score reaches `threshold_`, else 0."""
        return (self.decision_function(X) >= self.threshold_).astype(int)

    def _stack(self, probs: np.ndarray) -> np.ndarray:
        return probs[:, 0] if self.meta_ is None else self.meta_.decision_function(probs)


class SingleModel(TwoStageEnsemble):
    """One base model, thresholded at the least Cost on its CV out-of-fold probabilities: the
    paper's single-model baseline to the two-stage ensemble."""

    def __init__(
        self,
        name: str = "lightgbm",
        theta: float = 1.0,
        seed: int = 0,
        cv: int = 5,
        sampler: str = "none",
        ratio: float = 0.25,
    ):
        super().__init__(
            (name,), keep=1, cv=cv, theta=theta, seed=seed, sampler=sampler, ratio=ratio
        )
        self.name = name


def _fit(name: str, seed: int, X, y, w):
    """BASE_MODELS[name](seed) fitted, with the weights passed when the model accepts them."""
    model = BASE_MODELS[name](seed)
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    if w is None or not has_fit_parameter(final, "sample_weight"):
        return model.fit(X, y)
    key = "model__sample_weight" if isinstance(model, Pipeline) else "sample_weight"
    return model.fit(X, y, **{key: w})


def _take(w, rows):
    return None if w is None else w[rows]


def _check_x(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty 2-D array, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values")
    return X


def _check_xy(X, y) -> tuple[np.ndarray, np.ndarray]:
    X, y = _check_x(X), np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"y must be a 1-D array of {len(X)} labels, got shape {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"y must hold 0/1 labels, found {np.unique(y)[:5].tolist()}")
    return X, y.astype(int)


def _check_weight(w, n: int) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"sample_weight must be {n} finite non-negative numbers")
    return w
