"""m-RWP, ARWP and m-ARWP: the classes `yw-core` lists and `fit` attaches."""

from __future__ import annotations

from pydantic import Field

from yw_core.interfaces import Capabilities, MethodConfig, Paper, TrainStep, WeightOptimizer
from yw_plugin_marwp.adaptive import FisherScale
from yw_plugin_marwp.steps import ARWPStep
from yw_plugin_rwp.noise import FilterNoise
from yw_plugin_rwp.steps import TwoPassStep, parallel_recipe, rwp_step

PAPER = Paper(
    title="Revisiting Random Weight Perturbation for Efficiently Improving Generalization",
    authors=("Li", "Tao", "Yan", "Wu", "Lei", "Fang", "He", "Huang"),
    year=2024,
    venue="TMLR",
    arxiv_id="2404.00357",
    code_url="https://github.com/nblt/mARWP",
)
CAPABILITIES = Capabilities(training=True, distributed=True, deterministic=True)


def _sigma(default: float, source: str):
    return Field(
        default,
        ge=0,
        le=1,
        description=f"noise std relative to each filter's norm, sigma * ||W_i|| "
        f"({default}: {source})",
    )


def _lam():
    return Field(
        0.5,
        ge=0,
        le=1,
        description="weight of the perturbed gradient; 1 - lam weighs the clean one "
        "(0.5: run_mrwp.sh)",
    )


def _eta(source: str):
    return Field(
        0.1,
        ge=0,
        le=1e6,
        description="strength of the adaptive scaling: std / sqrt(1 + eta S_i), S_i the sum of F "
        f"over filter i (0.1: {source}; 0 turns it off)",
    )


def _beta(source: str):
    return Field(
        0.99,
        ge=0,
        le=1,
        description="decay of F <- beta F + g^2, the un-normalised EMA of squared perturbed "
        f"gradients (0.99: {source})",
    )


def _no_extra(cls, kwargs) -> None:
    if kwargs:
        raise TypeError(f"{cls.__name__}.attach takes no extra arguments, got {', '.join(kwargs)}")


class MRWP(WeightOptimizer):
    """m-RWP: RWP's mix lam g(w + eps) + (1 - lam) g(w), two passes on consecutive batches in one
    process, or even/odd ranks under torchrun."""

    name = "mrwp"
    summary = "m-RWP: mix the clean gradient with one under filter-wise random weight noise"
    paper = PAPER
    status = "stable"
    capabilities = CAPABILITIES

    class Config(MethodConfig):
        sigma: float = _sigma(0.015, "run_mrwp.sh and the DDP script")
        lam: float = _lam()

    def train_config(self, base, *, runtime):
        """yw-plugin-rwp's parallel recipe: twice the epochs under torchrun."""
        return parallel_recipe(base, runtime)

    def attach(self, model, base_optimizer, *, runtime, **kwargs) -> TrainStep:
        """yw-plugin-rwp's step with lam for alpha and sigma for gamma."""
        _no_extra(type(self), kwargs)
        c = self.config
        return rwp_step(model, base_optimizer, runtime, alpha=c.lam, gamma=c.sigma)


class ARWP(WeightOptimizer):
    """ARWP: one perturbed pass per update (SGD's cost), the noise of each filter shrunk by its
    history of squared gradients, sigma ramped up over training."""

    name = "arwp"
    summary = "ARWP: random weight perturbation scaled per filter by gradient history, 1x cost"
    paper = PAPER
    status = "stable"
    capabilities = CAPABILITIES

    class Config(MethodConfig):
        sigma: float = _sigma(0.001, "run_rwp.sh's std; the starting value of the ramp")
        inc: float = Field(
            10.0,
            ge=0,
            le=1000,
            description="sigma grows from sigma to sigma (1 + inc) on a half cosine over training "
            "(10: run_rwp.sh; 0 keeps it fixed)",
        )
        eta: float = _eta("run_rwp.sh")
        beta: float = _beta("run_rwp.sh")

    def attach(self, model, base_optimizer, *, runtime, **kwargs) -> TrainStep:
        """One perturbed pass per update; under torchrun every rank draws the same noise and DDP
        averages the perturbed gradients."""
        _no_extra(type(self), kwargs)
        c = self.config
        return ARWPStep(
            model, base_optimizer, runtime, sigma=c.sigma, inc=c.inc, eta=c.eta, beta=c.beta
        )


class MARWP(WeightOptimizer):
    """m-ARWP: m-RWP's clean/perturbed mix with ARWP's adaptive noise; two batches per update."""

    name = "marwp"
    summary = "m-ARWP: clean/perturbed gradient mix with noise scaled by gradient history"
    paper = PAPER
    status = "stable"
    capabilities = CAPABILITIES

    class Config(MethodConfig):
        sigma: float = _sigma(0.015, "run_mrwp.sh")
        lam: float = _lam()
        eta: float = _eta("run_mrwp.sh")
        beta: float = _beta("run_mrwp.sh")

    def attach(self, model, base_optimizer, *, runtime, **kwargs) -> TrainStep:
        """A clean pass, then a perturbed pass with BN statistics frozen, then one update; under
        torchrun every rank runs both passes (the reference has no parallel m-ARWP)."""
        _no_extra(type(self), kwargs)
        c = self.config
        noise = FilterNoise.for_optimizer(base_optimizer, runtime)
        fisher = FisherScale(noise.layout, eta=c.eta, beta=c.beta)
        return TwoPassStep(
            model,
            base_optimizer,
            runtime,
            alpha=c.lam,
            gamma=c.sigma,
            noise=noise,
            fisher=fisher,
        )
