"""LowDimGrad's bad input fails at Config (ValidationError naming the field), in fit (ValueError
naming the problem) or in score (RuntimeError before fit, ValueError for NaN)."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn
from torch.utils.data import TensorDataset

from yw_core.runtime import Runtime
from yw_core.testing import tiny_classifier, tiny_dataset
from yw_plugin_lowdim_grad import LowDimGrad


def fit(model=None, data=None, **overrides):
    runtime = Runtime(device="cpu", seed=0, distributed=False)
    model = tiny_classifier() if model is None else model
    data = tiny_dataset(32) if data is None else data
    return LowDimGrad(**{"k": 4, **overrides}).fit(model, data, runtime=runtime)


@pytest.mark.parametrize(
    "overrides",
    [
        {"k": 0},
        {"block_size": 0},
        {"power_iterations": -1},
        {"n_fit": 0},
        {"chunk_size": 0},
        {"mode": "fisher"},
        {"basis": "svd"},
        {"scorer": "bats"},
        {"basis_dtype": "float64"},
        {"params": "head"},
        {"params": ()},
        {"params": ("head", "")},
        {"params": 3},
        {"probe_batch_size": 1},
        {"probe_momentum": 1.0},
        {"react_percentile": 0.0},
        {"forward_weight": -1.0},
        {"holdout_fraction": 1.0},
    ],
    ids=str,
)
def test_bad_config_is_rejected_by_name(overrides):
    with pytest.raises(ValidationError, match=next(iter(overrides))):
        LowDimGrad(**overrides)


def test_a_list_of_prefixes_becomes_a_tuple():
    assert LowDimGrad(params=["head", "features.1"]).config.params == ("head", "features.1")


def test_score_and_transform_before_fit_raise():
    x = tiny_dataset(4).tensors[0]
    with pytest.raises(RuntimeError, match=r"call fit\(\) before"):
        LowDimGrad().score(x)
    with pytest.raises(RuntimeError, match=r"call fit\(\) before"):
        LowDimGrad().transform(x)


def test_a_failed_refit_leaves_the_scorer_unfitted():
    scorer = fit()
    with pytest.raises(ValueError, match="k=4"):
        scorer.fit(tiny_classifier(), tiny_dataset(3), runtime=scorer._runtime)
    with pytest.raises(RuntimeError):
        scorer.score(tiny_dataset(4).tensors[0])


def test_no_parameter_in_the_chosen_set_names_prefixes_and_the_models_names():
    with pytest.raises(ValueError, match=r"params=\('backbone',\).*names are features, head"):
        fit(params=("backbone",))
    with pytest.raises(ValueError, match=r"no parameters"):
        fit(model=nn.Flatten(), params="all")


def test_nan_inputs_are_refused_at_fit_and_at_score():
    x, y = tiny_dataset(32).tensors
    x[3, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fit(data=TensorDataset(x, y))
    with pytest.raises(ValueError, match="NaN"):
        fit().score(x[:8])


def test_inputs_that_are_not_batches_are_named():
    scorer = fit()
    with pytest.raises(TypeError, match="tensor"):
        scorer.score([[0.0] * 64])
    with pytest.raises(ValueError, match=r"shape \(N, \.\.\.\)"):
        scorer.score(torch.rand(64))


def test_k_larger_than_the_fitting_samples_names_both_numbers():
    with pytest.raises(ValueError, match=r"k=40 .*at least 40 fitting samples.*got 32"):
        fit(k=40)
    with pytest.raises(ValueError, match=r"k=10 .*got 9"):
        fit(k=10, n_fit=9)


def test_k_larger_than_the_parameter_count_is_named():
    with pytest.raises(ValueError, match=r"k=5 .*exceed the 4 parameters"):
        fit(k=5, params=("head.bias",))


@pytest.mark.parametrize(
    "overrides,what",
    [
        ({"scorer": "msp"}, "scorer='msp'"),
        ({"scorer": "mahalanobis"}, "scorer='mahalanobis'"),
        ({"basis": "avg_grad"}, "basis='avg_grad'"),
    ],
)
def test_label_needing_settings_refuse_a_bare_tensor(overrides, what):
    with pytest.raises(ValueError, match=f"{what}.*needs labels"):
        fit(data=tiny_dataset(32).tensors[0], **overrides)


def test_a_bare_tensor_is_enough_for_pca_and_knn():
    scorer = fit(data=tiny_dataset(32).tensors[0])
    assert scorer.score(tiny_dataset(4).tensors[0]).shape == (4,)


def test_bad_labels_are_named():
    x, y = tiny_dataset(32).tensors
    with pytest.raises(ValueError, match=">= 0"):
        fit(data=TensorDataset(x, y - 1), scorer="msp")
    with pytest.raises(ValueError, match="integer class indices"):
        fit(data=TensorDataset(x, y + 0.5), scorer="msp")


def test_react_start_dim_beyond_k_is_named():
    with pytest.raises(
        ValueError, match="react_start_dim=10 must be below the feature dimension 4"
    ):
        fit(scorer="react")


def test_the_forward_ensemble_needs_features_and_head_for_feature_scorers():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    with pytest.raises(ValueError, match=r"`\.features`.*`\.head`"):
        fit(model=model, forward_weight=1.0)
    assert fit(model=model, forward_weight=1.0, scorer="energy").score(
        tiny_dataset(4).tensors[0]
    ).shape == (4,)


def test_the_ensemble_needs_data_left_after_the_holdout():
    with pytest.raises(ValueError, match="holds out 2 of the 3 fit inputs"):
        fit(data=tiny_dataset(3), k=1, knn_k=1, forward_weight=1.0)


def test_a_model_without_2d_logits_is_named():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 1), nn.Flatten(0))
    with pytest.raises(ValueError, match=r"logits of shape \(N, C\)"):
        fit(model=model)
