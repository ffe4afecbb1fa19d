"""The OOD baselines: each score is core's function (yw_core.ood) on the model's logits or
features, in eval mode; on a digits classifier of classes 0-4 each ranks the test digits 0-4
above uniform noise and above the digits 5-9; bad input is refused by name."""

import pytest
import torch
from pydantic import ValidationError
from torch import nn
from torch.utils.data import TensorDataset

from yw_core import ood
from yw_core.metrics import auroc
from yw_core.models import SplitClassifier, eval_mode
from yw_core.testing import tiny_dataset
from yw_plugin_baselines import KNN, MSP, ODIN, Energy, GradNorm, Mahalanobis, ReAct

SCORERS = (MSP, ODIN, Energy, Mahalanobis, KNN, GradNorm, ReAct)
ON_FEATURES = (Mahalanobis, KNN, GradNorm, ReAct)


def dropout_classifier(seed: int = 0) -> SplitClassifier:
    """A 1x8x8 -> 4-class SplitClassifier with dropout, so train mode would change its output."""
    torch.manual_seed(seed)
    features = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Dropout(0.5))
    return SplitClassifier(features, nn.Linear(16, 4))


def by_hand(name, model, fit_data, x):
    """The score from core's function on the model's own logits or features."""
    fit_x, fit_y = fit_data.tensors
    if name == "odin":
        return ood.odin(model, x, temperature=1000.0, eps=0.0014)
    with torch.no_grad():
        logits, z, fit_z = model(x), model.features(x), model.features(fit_x)
        if name == "msp":
            return ood.msp(logits)
        if name == "energy":
            return ood.energy(logits, 2.0)
        if name == "mahalanobis":
            return ood.Mahalanobis().fit(fit_z, fit_y).score(z)
        if name == "knn":
            return ood.KNN(5).fit(fit_z).score(z)
        if name == "gradnorm":
            return ood.gradnorm(z, model.head, 0.5)
        if name == "react":
            threshold = ood.react_threshold(fit_z, 90.0)
            return ood.energy(model.head(ood.react_clip(z, threshold)))
    raise AssertionError(name)


OVERRIDES = {"energy": {"temperature": 2.0}, "knn": {"k": 5}, "gradnorm": {"temperature": 0.5}}


@pytest.mark.parametrize("cls", SCORERS, ids=lambda c: c.name)
def test_score_is_core_function_on_the_models_outputs_in_eval_mode(cls, yw_runtime):
    model = dropout_classifier().train()
    fit_data, x = tiny_dataset(40, 4, seed=0), tiny_dataset(12, 4, seed=1).tensors[0]
    scorer = cls(**OVERRIDES.get(cls.name, {})).fit(model, fit_data, runtime=yw_runtime)
    scores = scorer.score(x)
    assert model.training
    with eval_mode(model):
        expected = by_hand(cls.name, model, fit_data, x)
    assert scores.dtype == torch.float32
    torch.testing.assert_close(scores, expected.float(), rtol=1e-5, atol=1e-6)


def test_react_threshold_is_the_percentile_of_the_fit_features(yw_runtime):
    model, fit_data = dropout_classifier(), tiny_dataset(40, 4)
    scorer = ReAct(percentile=75.0).fit(model, fit_data, runtime=yw_runtime)
    with eval_mode(model), torch.no_grad():
        z = model.features(fit_data.tensors[0])
    assert scorer.threshold == pytest.approx(float(torch.quantile(z.flatten().double(), 0.75)))


def sparse_classifier():
    """15 of the 16 ReLU features are always 0: the 90th percentile of the features is 0."""
    model = dropout_classifier()
    with torch.no_grad():
        model.features[1].bias[1:] = -100.0
    return model


def test_react_on_sparse_features_clips_at_the_percentile_above_the_minimum(yw_runtime):
    model, fit_data = sparse_classifier(), tiny_dataset(40)
    scorer = ReAct().fit(model, fit_data, runtime=yw_runtime)
    with eval_mode(model), torch.no_grad():
        z = model.features(fit_data.tensors[0])
    live = z[z > 0].double()
    assert scorer.threshold == pytest.approx(float(torch.quantile(live, 0.9)))
    scores = scorer.score(tiny_dataset(8, seed=1).tensors[0])
    assert not torch.all(scores == scores[0])


def test_react_as_written_warns_when_the_clip_value_makes_every_score_equal(yw_runtime):
    with pytest.warns(UserWarning, match="every input gets the same score"):
        scorer = ReAct(above_minimum=False).fit(
            sparse_classifier(), tiny_dataset(40), runtime=yw_runtime
        )
    scores = scorer.score(tiny_dataset(8, seed=1).tensors[0])
    assert scorer.threshold == 0.0 and torch.all(scores == scores[0])


# ---- a digits classifier of classes 0-4 -----------------------------------------------------


@pytest.fixture(scope="module")
def digits_problem(one_thread):
    """(model, fit data, ID test inputs, digits 5-9, uniform noise): a 64-32-5 ReLU MLP trained
    on train digits 0-4 with SGD (lr 0.1, momentum 0.9, weight decay 5e-4, batch 64, 20 epochs;
    under a second); it reaches about 99% on test digits 0-4."""
    from yw_core.data import load_dataset

    x, y = load_dataset("digits", "train").tensors
    x, y = x[y < 5], y[y < 5]
    torch.manual_seed(0)
    model = SplitClassifier(
        nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU()), nn.Linear(32, 5)
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            batch = order[i : i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()
    model.eval()
    test_x, test_y = load_dataset("digits", "test").tensors
    id_x, near_x = test_x[test_y < 5], test_x[test_y >= 5]
    with torch.no_grad():
        assert (model(id_x).argmax(1) == test_y[test_y < 5]).float().mean() > 0.95
    noise = torch.rand(len(id_x), 1, 8, 8, generator=torch.Generator().manual_seed(1))
    return model, TensorDataset(x, y), id_x, near_x, noise


@pytest.mark.parametrize("cls", SCORERS, ids=lambda c: c.name)
def test_digits_0_4_score_above_noise_and_digits_5_9(cls, digits_problem, yw_runtime):
    model, fit_data, id_x, near_x, noise = digits_problem
    scorer = cls().fit(model, fit_data, runtime=yw_runtime)
    id_scores = scorer.score(id_x)
    assert auroc(id_scores, scorer.score(noise)) > 0.8  # measured 0.94-1.00 (seed 0)
    assert auroc(id_scores, scorer.score(near_x)) > 0.6  # measured 0.75-0.94 (seed 0)


# ---- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", SCORERS, ids=lambda c: c.name)
def test_score_before_fit_and_nan_inputs_are_refused(cls, yw_runtime):
    x = tiny_dataset(8).tensors[0]
    scorer = cls(**OVERRIDES.get(cls.name, {}))
    with pytest.raises(RuntimeError, match="fit"):
        scorer.score(x)
    scorer.fit(dropout_classifier(), tiny_dataset(32), runtime=yw_runtime)
    x[3, 0, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        scorer.score(x)
    with pytest.raises(ValueError, match=r"shape \(N, \.\.\.\)"):
        scorer.score(torch.zeros(5))


def test_mahalanobis_needs_labels(yw_runtime):
    with pytest.raises(ValueError, match="label"):
        Mahalanobis().fit(dropout_classifier(), tiny_dataset(32).tensors[0], runtime=yw_runtime)


@pytest.mark.parametrize("cls", SCORERS, ids=lambda c: c.name)
def test_a_model_without_features_and_head(cls, yw_runtime):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    scorer = cls(**OVERRIDES.get(cls.name, {}))
    if cls in ON_FEATURES:
        with pytest.raises(ValueError, match=r"`\.features`.*`\.head`"):
            scorer.fit(model, tiny_dataset(32), runtime=yw_runtime)
    else:  # the scorers on logits need only the forward
        assert scorer.fit(model, tiny_dataset(32), runtime=yw_runtime).score(
            tiny_dataset(4).tensors[0]
        ).shape == (4,)


def test_knn_k_larger_than_the_fit_set(yw_runtime):
    with pytest.raises(ValueError, match="k=50 needs at least 50 fit features, got 32"):
        KNN().fit(dropout_classifier(), tiny_dataset(32), runtime=yw_runtime)


def test_a_failed_refit_leaves_the_scorer_unfitted(yw_runtime):
    scorer = KNN(k=40).fit(dropout_classifier(), tiny_dataset(48), runtime=yw_runtime)
    with pytest.raises(ValueError, match="k=40"):
        scorer.fit(dropout_classifier(), tiny_dataset(32), runtime=yw_runtime)
    with pytest.raises(RuntimeError, match="fit"):
        scorer.score(tiny_dataset(4).tensors[0])


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [
        (Energy, "temperature", 0.0),
        (ODIN, "temperature", -1.0),
        (ODIN, "eps", -0.001),
        (KNN, "k", 0),
        (KNN, "k", 2.5),
        (GradNorm, "temperature", 0.0),
        (ReAct, "percentile", 0.0),
        (ReAct, "percentile", 100.5),
    ],
)
def test_bad_config_values_are_rejected_by_name(cls, field, value):
    with pytest.raises(ValidationError, match=field):
        cls(**{field: value})
