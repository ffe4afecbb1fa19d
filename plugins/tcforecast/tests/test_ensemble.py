"""Step 2: imbalance handling (rebalance) and the two-stage ensemble on small synthetic problems."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification

from yw_core.metrics import average_precision, cost
from yw_plugin_tcforecast.ensemble import (
    BASE_MODELS,
    STRATEGIES,
    SingleModel,
    TwoStageEnsemble,
    rebalance,
)


def _problem(n=1500, features=20, positives=0.1, seed=0):
    """An imbalanced binary problem (about `positives` of the rows are 1)."""
    return make_classification(
        n,
        features,
        n_informative=min(8, features - 2),
        weights=[1 - positives],
        flip_y=0.01,
        random_state=seed,
    )


@pytest.fixture(scope="module")
def split():
    X, y = _problem()
    return X[:1000], y[:1000], X[1000:], y[1000:]


@pytest.fixture(scope="module")
def ensemble(split):
    X, y, _, _ = split
    return TwoStageEnsemble(seed=0).fit(X, y)


# --- rebalance ---------------------------------------------------------------------------------


def test_smote_reaches_the_ratio():
    X, y = _problem(800)
    Xr, yr, w = rebalance(X, y, "smote", ratio=0.25, seed=0)
    n_pos, n_neg = yr.sum(), (yr == 0).sum()
    assert w is None and n_neg == (y == 0).sum()
    assert abs(n_pos - 0.25 * n_neg) < 1
    assert np.array_equal(Xr[: len(X)], X)  # SMOTE appends synthetic positives


def test_smotetomek_is_close_to_the_ratio():
    X, y = _problem(800)
    _, yr, w = rebalance(X, y, "smotetomek", ratio=0.25, seed=0)
    assert w is None
    assert yr.sum() / (yr == 0).sum() == pytest.approx(0.25, abs=0.02)
    assert (yr == 0).sum() <= (y == 0).sum()  # Tomek links only remove rows


def test_class_weight_equalises_the_classes():
    X, y = _problem(800)
    Xr, yr, w = rebalance(X, y, "class_weight")
    assert np.array_equal(Xr, X) and np.array_equal(yr, y)
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())


def test_none_leaves_the_data_alone():
    X, y = _problem(300)
    Xr, yr, w = rebalance(X, y, "none")
    assert w is None and np.array_equal(Xr, X) and np.array_equal(yr, y)


@pytest.mark.parametrize("strategy", ["smote", "smotetomek"])
@pytest.mark.parametrize("n_pos", [2, 3])
def test_few_positives_shrink_the_neighbourhood(strategy, n_pos):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 4)), np.r_[np.ones(n_pos), np.zeros(100 - n_pos)].astype(int)
    _, yr, _ = rebalance(X, y, strategy, ratio=0.25, seed=0)
    assert yr.sum() > n_pos


@pytest.mark.parametrize("strategy", ["smote", "smotetomek"])
def test_one_positive_is_refused(strategy):
    X, y = np.random.default_rng(0).normal(size=(50, 3)), np.r_[1, np.zeros(49)].astype(int)
    with pytest.raises(ValueError, match="at least 2 positives"):
        rebalance(X, y, strategy)


def test_already_balanced_data_is_not_oversampled():
    X, y = _problem(400, positives=0.4)
    Xr, yr, _ = rebalance(X, y, "smote", ratio=0.25)
    assert np.array_equal(Xr, X) and np.array_equal(yr, y)
    _, yr, _ = rebalance(X, y, "smotetomek", ratio=0.25)
    assert yr.sum() <= y.sum() and len(yr) <= len(y)  # Tomek links still removed


def test_rebalance_is_seeded():
    X, y = _problem(400)
    a, b = rebalance(X, y, "smotetomek", seed=3), rebalance(X, y, "smotetomek", seed=3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_rebalance_errors():
    X, y = _problem(200)
    with pytest.raises(ValueError, match="known: " + ", ".join(STRATEGIES)):
        rebalance(X, y, "adasyn")
    with pytest.raises(ValueError, match="0/1"):
        rebalance(X, y * 2, "none")
    with pytest.raises(ValueError, match="ratio"):
        rebalance(X, y, "smote", ratio=1.5)
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[3, 1] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            rebalance(Xb, y, "class_weight")
    with pytest.raises(ValueError, match="labels"):
        rebalance(X, y[:-1], "none")


# --- base models and the ensemble ---------------------------------------------------------------


def test_base_models_give_probabilities():
    X, y = _problem(300, features=6)
    for name, make in BASE_MODELS.items():
        proba = make(0).fit(X, y).predict_proba(X[:5])
        assert proba.shape == (5, 2), name


def test_lightgbm_bins_like_lightgbm():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 4, 1000), rng.normal(size=1000)])
    binned = BASE_MODELS["lightgbm"](0).named_steps["bins"].fit_transform(X)
    assert np.array_equal(np.unique(binned[:, 0]), [0, 1, 2, 3])  # few values: one bin each
    assert len(np.unique(binned[:, 1])) == 255  # many values: 255 quantile bins


def test_stacking_beats_the_mean_of_its_base_models(ensemble, split):
    _, _, X_test, y_test = split
    base = [
        average_precision(ensemble.models_[n].predict_proba(X_test)[:, 1], y_test)
        for n in ensemble.kept_
    ]
    stacked = average_precision(ensemble.decision_function(X_test), y_test)
    assert stacked >= np.mean(base)


def test_kept_are_the_best_by_cv_ks(ensemble):
    assert set(ensemble.cv_ks_) == set(BASE_MODELS) and len(ensemble.kept_) == 3
    ranked = sorted(ensemble.cv_ks_.values(), reverse=True)
    assert sorted((ensemble.cv_ks_[n] for n in ensemble.kept_), reverse=True) == ranked[:3]
    assert set(ensemble.models_) == set(ensemble.kept_)


def test_threshold_minimises_the_oof_cost(ensemble, split):
    _, y, _, _ = split
    scores = ensemble.oof_scores_
    costs = {t: cost(scores >= t, y, ensemble.theta) for t in np.unique(scores)}
    assert costs[ensemble.threshold_] == pytest.approx(min(costs.values()))


def test_predict_thresholds_the_decision(ensemble, split):
    _, _, X_test, _ = split
    decision = ensemble.decision_function(X_test)
    assert np.array_equal(ensemble.predict(X_test), (decision >= ensemble.threshold_).astype(int))


def test_theta_moves_the_threshold(split):
    X, y, _, _ = split
    fits = [TwoStageEnsemble(("rf", "knn"), keep=2, cv=3, theta=t).fit(X, y) for t in (0.2, 5.0)]
    assert fits[0].threshold_ > fits[1].threshold_  # costly misses: flag more pairs


def test_same_seed_same_model(split):
    X, y, X_test, _ = split
    a, b = (TwoStageEnsemble(("rf", "mlp", "xgboost"), keep=2, seed=1).fit(X, y) for _ in "ab")
    assert a.cv_ks_ == b.cv_ks_ and a.threshold_ == b.threshold_
    assert np.array_equal(a.decision_function(X_test), b.decision_function(X_test))


def test_keep_one_is_a_single_thresholded_model(split):
    X, y, X_test, _ = split
    one = TwoStageEnsemble(("rf", "knn"), keep=1, cv=3).fit(X, y)
    model = one.models_[one.kept_[0]]
    assert np.array_equal(one.decision_function(X_test), model.predict_proba(X_test)[:, 1])


def test_single_model(split):
    X, y, X_test, y_test = split
    single = SingleModel("lightgbm", theta=1.0, seed=0).fit(X, y)
    assert single.kept_ == ("lightgbm",) and 0 < single.threshold_ < 1
    assert average_precision(single.decision_function(X_test), y_test) > 0.5
    assert set(np.unique(single.predict(X_test))) <= {0, 1}


def test_sample_weight_reaches_pipelines():
    X, y = _problem(400, features=6)
    _, _, w = rebalance(X, y, "class_weight")
    plain, weighted = (SingleModel("mlp", cv=3).fit(X, y, sample_weight=sw) for sw in (None, w))
    assert not np.allclose(plain.decision_function(X), weighted.decision_function(X))


def test_ensemble_errors(split):
    X, y, _, _ = split
    with pytest.raises(ValueError, match="keep"):
        TwoStageEnsemble(("rf", "knn"), keep=3)
    with pytest.raises(ValueError, match="known: svm"):
        TwoStageEnsemble(("rf", "catboost"))
    with pytest.raises(ValueError, match="cv"):
        TwoStageEnsemble(cv=1)
    with pytest.raises(ValueError, match="theta"):
        SingleModel(theta=0)
    with pytest.raises(ValueError, match="at least cv"):
        SingleModel("rf").fit(X[:40], np.r_[np.ones(3), np.zeros(37)].astype(int))
    with pytest.raises(RuntimeError, match="fit"):
        SingleModel().predict(X)
    with pytest.raises(ValueError, match="sample_weight"):
        SingleModel("rf").fit(X, y, sample_weight=-np.ones(len(y)))
