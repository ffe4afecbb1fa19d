"""The explainer baselines: each passes the interpreter conformance suite; Integrated Gradients is
complete; gradient x input is x times the logit gradient; a feature the model ignores gets no
attribution; an input equal to the baseline gets none; KernelSHAP and LIME repeat for a seed
without touching the caller's RNG; bad input is refused by name."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from torch import nn
from torch.utils.data import TensorDataset

from yw_core.testing import conformance_suite, tiny_classifier, tiny_dataset
from yw_plugin_baselines import DeepLift, InputXGradient, IntegratedGradients, KernelShap, Lime

EXPLAINERS = (InputXGradient, IntegratedGradients, DeepLift, KernelShap, Lime)
GRADIENT = (InputXGradient, IntegratedGradients, DeepLift)
SAMPLING = (KernelShap, Lime)
WITH_BASELINE = (IntegratedGradients, DeepLift, KernelShap, Lime)

# On prototype_problem the gradient methods give the ignored half exactly 0, and so does LIME's
# Lasso; KernelSHAP's regression on 200 sampled coalitions of 64 pixels gave it 0.16% of the
# |attribution| (measured; the default bound 2% holds).
TestInputXGradientConformance = conformance_suite(InputXGradient)
TestIntegratedGradientsConformance = conformance_suite(IntegratedGradients)
TestDeepLiftConformance = conformance_suite(DeepLift)
TestKernelShapConformance = conformance_suite(KernelShap)
TestLimeConformance = conformance_suite(Lime)


def flow_model(
    features: int = 6, ignored: int | None = None, seed: int = 0, dropout: bool = False
) -> nn.Module:
    """A small random MLP on tabular inputs (3 classes); column `ignored` has zero weights;
    `dropout` adds a Dropout layer, so train mode would change the output."""
    g = torch.Generator().manual_seed(seed)
    drop = [nn.Dropout(0.5)] if dropout else []
    model = nn.Sequential(nn.Linear(features, 16), nn.ReLU(), *drop, nn.Linear(16, 3))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
        if ignored is not None:
            model[0].weight[:, ignored] = 0
    return model.eval()


def flows(n: int, seed: int, features: int = 6) -> torch.Tensor:
    """n rows of N(1, 1) features: a mean away from zero, so 'mean' and 'zeros' differ."""
    return torch.randn(n, features, generator=torch.Generator().manual_seed(seed)) + 1


@pytest.mark.parametrize("cls", EXPLAINERS, ids=lambda c: c.name)
def test_explains_the_predicted_class_without_reliability(cls, yw_runtime):
    model, x = flow_model(), flows(10, seed=1)
    explanation = cls().fit(model, flows(40, seed=0), runtime=yw_runtime).explain(x)
    assert explanation.reliability is None
    assert torch.equal(explanation.target, model(x).argmax(1))


def logit_change(model, x, reference, target) -> torch.Tensor:
    """logit_target(x) - logit_target(reference) per row."""
    with torch.no_grad():
        rows = torch.arange(len(x))
        return model(x)[rows, target] - model(reference)[0, target]


@pytest.mark.parametrize("baseline", ["mean", "zeros"])
def test_integrated_gradients_sum_to_the_logit_change_from_the_baseline(baseline, yw_runtime):
    model, data, x = flow_model(), flows(40, seed=0), flows(10, seed=1)
    reference = data.mean(0, keepdim=True) if baseline == "mean" else torch.zeros(1, 6)
    errors = {}
    for n_steps in (50, 200):
        ig = IntegratedGradients(baseline=baseline, n_steps=n_steps)
        explanation = ig.fit(model, data, runtime=yw_runtime).explain(x)
        change = logit_change(model, x, reference, explanation.target)
        scale = change.abs().max().item()
        errors[n_steps] = (explanation.attributions.sum(1) - change).abs().max().item() / scale
    # the path integral is approximated (ReLU kinks): measured 0.8% of the largest change at
    # 50 steps, 0.2% at 200
    assert errors[50] <= 0.02
    assert errors[200] <= 0.005


@pytest.mark.parametrize("baseline", ["mean", "zeros"])
def test_deeplift_sums_exactly_to_the_logit_change_from_the_baseline(baseline, yw_runtime):
    model, data, x = flow_model(), flows(40, seed=0), flows(10, seed=1)
    reference = data.mean(0, keepdim=True) if baseline == "mean" else torch.zeros(1, 6)
    explanation = DeepLift(baseline=baseline).fit(model, data, runtime=yw_runtime).explain(x)
    change = logit_change(model, x, reference, explanation.target)
    assert torch.allclose(explanation.attributions.sum(1), change, atol=1e-4)


def test_grad_x_input_is_the_input_times_the_predicted_logit_gradient(yw_runtime):
    model, x = flow_model(), flows(10, seed=1)
    leaf = x.clone().requires_grad_()
    logits = model(leaf)
    logits.gather(1, logits.argmax(1, keepdim=True)).sum().backward()
    explanation = InputXGradient().fit(model, flows(40, seed=0), runtime=yw_runtime).explain(x)
    assert torch.allclose(explanation.attributions, x * leaf.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", EXPLAINERS, ids=lambda c: c.name)
def test_a_feature_the_model_ignores_gets_no_attribution(cls, yw_runtime):
    data, x = flows(40, seed=0), flows(16, seed=1)
    for seed in range(2):
        model = flow_model(ignored=2, seed=seed)
        mass = cls().fit(model, data, runtime=yw_runtime).explain(x).attributions.abs()
        if cls in GRADIENT:
            assert torch.all(mass[:, 2] == 0)
        else:
            # a regression on 200 sampled perturbations leaves noise on it: 0.2% to 0.6% of the
            # |attribution| over three such models (measured), far below an even share (1/6)
            assert mass[:, 2].sum() <= 0.02 * mass.sum()


@pytest.mark.parametrize("cls", WITH_BASELINE, ids=lambda c: c.name)
def test_the_reference_mean_itself_gets_no_attribution(cls, yw_runtime):
    data = flows(40, seed=0)
    mean = data.mean(0, keepdim=True).expand(3, -1)
    explanation = cls().fit(flow_model(), data, runtime=yw_runtime).explain(mean)
    assert torch.allclose(explanation.attributions, torch.zeros(3, 6), atol=1e-4)
    with_zeros = cls(baseline="zeros").fit(flow_model(), data, runtime=yw_runtime).explain(mean)
    assert with_zeros.attributions.abs().sum() > 0.1


@pytest.mark.parametrize("cls", SAMPLING, ids=lambda c: c.name)
def test_a_seed_repeats_its_explanation_and_leaves_the_callers_rng_alone(cls, yw_runtime):
    model, data, x = flow_model(), flows(40, seed=0), flows(8, seed=1)

    def explain(seed: int, global_seed: int) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):  # this test's own use of the global RNG
            torch.random.default_generator.manual_seed(global_seed)
            state = torch.random.get_rng_state()
            explainer = cls(seed=seed).fit(model, data, runtime=yw_runtime)
            attributions = explainer.explain(x).attributions
            assert torch.equal(torch.random.get_rng_state(), state), "the global RNG moved"
        return attributions

    first = explain(seed=0, global_seed=1)
    assert torch.equal(first, explain(seed=0, global_seed=2))
    assert not torch.equal(first, explain(seed=1, global_seed=1))


@pytest.mark.parametrize("cls", EXPLAINERS, ids=lambda c: c.name)
def test_explains_in_eval_mode_whatever_the_models_mode(cls, yw_runtime):
    model, data, x = flow_model(dropout=True), flows(40, seed=0), flows(8, seed=1)
    train = cls().fit(model.train(), data, runtime=yw_runtime).explain(x)
    assert model.training
    evaluated = cls().fit(model.eval(), data, runtime=yw_runtime).explain(x)
    assert torch.allclose(train.attributions, evaluated.attributions, rtol=1e-5, atol=1e-6)


def test_the_mean_baseline_weighs_every_batch_of_the_reference_data(yw_runtime):
    data = TensorDataset(flows(300, seed=0), torch.zeros(300, dtype=torch.long))
    x, model = flows(5, seed=1), flow_model()
    # 300 rows come in two batches (256 + 44): the mean is over rows, not over batch means
    explanation = DeepLift().fit(model, data, runtime=yw_runtime).explain(x)
    reference = data.tensors[0].mean(0, keepdim=True)
    change = logit_change(model, x, reference, explanation.target)
    assert torch.allclose(explanation.attributions.sum(1), change, atol=1e-4)


@pytest.mark.parametrize("cls", WITH_BASELINE, ids=lambda c: c.name)
def test_inputs_shaped_unlike_the_reference_data_are_refused(cls, yw_runtime):
    explainer = cls().fit(tiny_classifier(), tiny_dataset(8), runtime=yw_runtime)
    with pytest.raises(ValueError, match="reference data"):
        explainer.explain(torch.rand(2, 1, 4, 16))


@pytest.mark.parametrize("cls", EXPLAINERS, ids=lambda c: c.name)
def test_bad_inputs_are_refused_by_name(cls, yw_runtime):
    explainer = cls().fit(flow_model(), flows(8, seed=0), runtime=yw_runtime)
    with pytest.raises(ValueError, match=cls.name):
        explainer.explain(torch.rand(6))
    with pytest.raises(ValueError, match="NaN"):
        explainer.explain(torch.full((2, 6), float("nan")))
    with pytest.raises(TypeError, match="tensor"):
        explainer.explain([[0.0] * 6])


def test_bad_config_values_are_refused_by_name():
    with pytest.raises(ValidationError, match="baseline"):
        IntegratedGradients(baseline="median")
    with pytest.raises(ValidationError, match="n_steps"):
        IntegratedGradients(n_steps=0)
    with pytest.raises(ValidationError, match="n_samples"):
        KernelShap(n_samples=1)
    with pytest.raises(ValidationError, match="seed"):
        Lime(seed=-1)
