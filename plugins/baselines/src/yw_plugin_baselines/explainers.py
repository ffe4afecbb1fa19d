"""The standard local-attribution baselines as Interpreters: gradient x input, Integrated
Gradients, DeepLIFT, KernelSHAP and LIME, each a thin wrapper around its `captum.attr` class.

AnomalyAID (and `yw-core bench interpret`) compares its explanations against these. Each one
explains the class the model predicts and gives no reliability score. `fit` keeps the model and
runtime and, for the methods that compare against a reference input (all but gradient x input),
the mean input of the reference data; `explain` runs the model in eval mode (each submodule's
mode restored afterwards) with autograd on, so it works under `torch.no_grad()`, and never
touches the weights. KernelSHAP and LIME sample perturbations with torch's global RNG: the call
runs inside `torch.random.fork_rng()` seeded from the Config, so the caller's RNG is untouched
and a seed gives the same explanation.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from yw_core.interfaces import (
    Capabilities,
    Explanation,
    Interpreter,
    MethodConfig,
    Paper,
    iter_batches,
)
from yw_core.interfaces.ood_scorer import check_inputs
from yw_core.models import eval_mode
from yw_core.runtime import Runtime

BASELINE_HELP = (
    "reference input the attribution is measured against: 'mean' (default [I]) = the mean input "
    "of the fit data, a neutral 'average sample' for tabular data such as network flows (the "
    "same as 'zeros' on data standardised by its own mean); 'zeros' = the all-zero input, the "
    "papers' black image"
)
SEED_HELP = (
    "seed of the perturbation sampling (drawn in a private fork of torch's RNG: the caller's "
    "RNG is left as it was)"
)

# captum's notices: DeepLIFT's temporary hooks, requires_grad set on our detached copy of x, and
# KernelSHAP / LIME fitting one surrogate per sample of a batch (what we want)
QUIET = (
    "Setting forward, backward hooks",
    "Input Tensor .* did not already require gradients",
    "You are providing multiple inputs",
)


def mean_input(data: Any, runtime: Runtime) -> torch.Tensor:
    """The mean input (1, ...) of the reference data, on the runtime's device."""
    total, count = None, 0
    for x, _ in iter_batches(data):
        batch = runtime.to(x).double().sum(0, keepdim=True)
        if total is not None and batch.shape != total.shape:
            raise ValueError(
                f"reference inputs change shape: {tuple(total.shape[1:])} then "
                f"{tuple(batch.shape[1:])}"
            )
        total = batch if total is None else total + batch
        count += len(x)
    return (total / count).float()


class CaptumInterpreter(Interpreter):
    """Shared by the explainers here: fit keeps the model, the runtime and (when the method has
    one) the baseline; explain checks and moves the inputs, picks the predicted class and calls
    `_attribute` in eval mode with autograd on."""

    status = "baseline"
    capabilities = Capabilities(post_hoc=True, deterministic=True)
    uses_baseline: ClassVar[bool] = True
    """True for the methods that compare x against a reference input (Config.baseline)."""

    _model: nn.Module | None = None
    _runtime: Runtime | None = None
    _baseline: torch.Tensor | float = 0.0

    def fit(self, model: nn.Module, data: Any, *, runtime: Runtime) -> CaptumInterpreter:
        """Keep `model` (already moved with the runtime) and, for `baseline='mean'`, the mean
        input of `data` (a Dataset of (x, y), a DataLoader or a tensor of inputs); returns self."""
        self._model = None  # a failed refit leaves the explainer unfitted, not half-fitted
        baseline: torch.Tensor | float = 0.0
        if self.uses_baseline and self.config.baseline == "mean":
            baseline = mean_input(data, runtime)
        self._model, self._runtime, self._baseline = model, runtime, baseline
        return self

    def explain(self, x: torch.Tensor) -> Explanation:
        """Attributions shaped like x for the model's predicted class; reliability None."""
        if self._model is None:
            raise RuntimeError(f"{self.name}: call fit() before explain()")
        check_inputs(self.name, x)
        inputs = self._runtime.to(x).detach()
        baseline = self._baseline
        if isinstance(baseline, torch.Tensor):
            if baseline.shape[1:] != inputs.shape[1:]:
                raise ValueError(
                    f"{self.name}: inputs have shape {tuple(inputs.shape[1:])} per sample, the "
                    f"reference data of fit {tuple(baseline.shape[1:])}"
                )
            baseline = baseline.expand_as(inputs).to(inputs.dtype)
        with eval_mode(self._model), torch.enable_grad(), warnings.catch_warnings():
            for message in QUIET:
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
            with torch.no_grad():
                target = self._model(inputs).argmax(1)
            attributions = self._attribute(self._model, inputs, baseline, target)
        return Explanation(
            attributions=attributions.detach().float().to(x.device),
            reliability=None,
            target=target.detach().to(x.device),
        )

    @abstractmethod
    def _attribute(
        self, model: nn.Module, x: torch.Tensor, baseline: Any, target: torch.Tensor
    ) -> torch.Tensor:
        """Attributions of x (on the runtime's device) for `target`, with the model in eval
        mode; `baseline` is a tensor shaped like x or the number 0."""


class InputXGradient(CaptumInterpreter):
    """x * d logit_target / dx: the gradient of the predicted logit times the input."""

    name = "grad-x-input"
    summary = "Gradient x input: the input times the gradient of the predicted logit"
    paper = Paper(
        title="Not Just a Black Box: Learning Important Features Through Propagating Activation "
        "Differences",
        authors=("Shrikumar", "Greenside", "Shcherbina", "Kundaje"),
        year=2016,
        venue="arXiv",
        arxiv_id="1605.01713",
    )
    uses_baseline = False

    class Config(MethodConfig):
        pass

    def _attribute(self, model, x, baseline, target):
        from captum.attr import InputXGradient as CaptumInputXGradient

        return CaptumInputXGradient(model).attribute(x, target=target)


class IntegratedGradients(CaptumInterpreter):
    """(x - baseline) times the gradient of the predicted logit averaged along the straight path
    from the baseline to x; the attributions sum to logit(x) - logit(baseline) (completeness)."""

    name = "integrated-gradients"
    summary = "Integrated Gradients: path-averaged gradients from a baseline, times x - baseline"
    paper = Paper(
        title="Axiomatic Attribution for Deep Networks",
        authors=("Sundararajan", "Taly", "Yan"),
        year=2017,
        venue="ICML",
        arxiv_id="1703.01365",
        code_url="https://github.com/ankurtaly/Integrated-Gradients",
    )

    class Config(MethodConfig):
        n_steps: int = Field(
            50,
            ge=1,
            le=10_000,
            description="points on the path (50: captum's default; the paper uses 20 to 300; "
            "captum's Gauss-Legendre rule is more exact than the paper's Riemann sum)",
        )
        baseline: Literal["mean", "zeros"] = Field("mean", description=BASELINE_HELP)

    def _attribute(self, model, x, baseline, target):
        from captum.attr import IntegratedGradients as CaptumIG

        ig = CaptumIG(model)
        return ig.attribute(x, baselines=baseline, target=target, n_steps=self.config.n_steps)


class DeepLift(CaptumInterpreter):
    """DeepLIFT with captum's Rescale rule: each unit's difference from its baseline activation,
    propagated back with multipliers; needs the nonlinearities as nn.Module layers, each used
    once (captum's requirement)."""

    name = "deeplift"
    summary = "DeepLIFT (Rescale rule): activation differences from a baseline, backpropagated"
    paper = Paper(
        title="Learning Important Features Through Propagating Activation Differences",
        authors=("Shrikumar", "Greenside", "Kundaje"),
        year=2017,
        venue="ICML",
        arxiv_id="1704.02685",
        code_url="https://github.com/kundajelab/deeplift",
    )

    class Config(MethodConfig):
        baseline: Literal["mean", "zeros"] = Field("mean", description=BASELINE_HELP)

    def _attribute(self, model, x, baseline, target):
        from captum.attr import DeepLift as CaptumDeepLift

        return CaptumDeepLift(model).attribute(x, baselines=baseline, target=target)


class SamplingInterpreter(CaptumInterpreter):
    """Shared by KernelSHAP and LIME: one captum call per batch, inside a seeded fork of torch's
    RNG, with all of a sample's perturbations evaluated in one forward pass. The surrogate fits
    (scikit-learn, n_samples x features each) run on one BLAS thread: on problems this small,
    more threads only wait on each other (measured ~100x slower on a busy 2-core machine)."""

    class Config(MethodConfig):
        """The baseline and the sampling seed; each method adds its `n_samples`."""

        baseline: Literal["mean", "zeros"] = Field("mean", description=BASELINE_HELP)
        seed: int = Field(0, ge=0, lt=2**63, description=SEED_HELP)

    def _attribute(self, model, x, baseline, target):
        from threadpoolctl import threadpool_limits

        c = self.config
        explainer = self._explainer(model)
        # captum draws its coalitions with the global RNG, on the CPU
        with torch.random.fork_rng(devices=[]), threadpool_limits(1, user_api="blas"):
            torch.random.default_generator.manual_seed(c.seed)
            return explainer.attribute(
                x,
                baselines=baseline,
                target=target,
                n_samples=c.n_samples,
                perturbations_per_eval=c.n_samples,
            )

    @abstractmethod
    def _explainer(self, model: nn.Module) -> Any:
        """The captum attribution object for `model`."""


class KernelShap(SamplingInterpreter):
    """SHAP values by weighted linear regression on random feature coalitions: features left
    out take the baseline's value; every input element is one feature."""

    name = "kernel-shap"
    summary = "KernelSHAP: Shapley values from a kernel-weighted regression on coalitions"
    paper = Paper(
        title="A Unified Approach to Interpreting Model Predictions",
        authors=("Lundberg", "Lee"),
        year=2017,
        venue="NeurIPS",
        arxiv_id="1705.07874",
        code_url="https://github.com/shap/shap",
    )

    class Config(SamplingInterpreter.Config):
        n_samples: int = Field(
            200,
            ge=2,
            le=1_000_000,
            description="coalitions sampled per input [I] (200: small and fast on ~20-feature "
            "flows; the shap package's default is 2 * features + 2048)",
        )

    def _explainer(self, model):
        from captum.attr import KernelShap as CaptumKernelShap

        return CaptumKernelShap(model)


class Lime(SamplingInterpreter):
    """LIME with captum's defaults: random on/off masks (off = the baseline's value), weighted by
    an exponential kernel on the cosine distance to x, fitted by a Lasso (alpha 0.01); every
    input element is one feature."""

    name = "lime"
    summary = "LIME: a local sparse linear surrogate fitted on random perturbations"
    paper = Paper(
        title='"Why Should I Trust You?": Explaining the Predictions of Any Classifier',
        authors=("Ribeiro", "Singh", "Guestrin"),
        year=2016,
        venue="KDD",
        arxiv_id="1602.04938",
        code_url="https://github.com/marcotcr/lime",
    )

    class Config(SamplingInterpreter.Config):
        n_samples: int = Field(
            200,
            ge=2,
            le=1_000_000,
            description="perturbations sampled per input [I] (200: small and fast on "
            "~20-feature flows; the lime package's default is 5000)",
        )

    def _explainer(self, model):
        from captum.attr import Lime as CaptumLime

        return CaptumLime(model)
