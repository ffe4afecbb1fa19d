"""The standard post-hoc OOD-detection baselines as OOD scorers (higher = more in-distribution):
MSP, ODIN, Energy, Mahalanobis, KNN, GradNorm and ReAct, the methods OpenOOD and the
low-dimensional-gradient paper compare against.

The score math is core's (`yw_core.ood`); this module only runs the model. Every scorer keeps the
model and runtime at `fit`, moves inputs with the runtime at `score`, and runs the model in eval
mode (each submodule's mode restored afterwards) without touching its weights. The scorers that
learn from the in-distribution data (Mahalanobis, KNN, ReAct) read it with
`yw_core.interfaces.iter_batches`; the others only record the model. The ones that work on the
penultimate features (Mahalanobis, KNN, GradNorm, ReAct) need a classifier split into
`.features` and a linear `.head` (`yw_core.models.split_parts`).
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from yw_core import ood
from yw_core.interfaces import Capabilities, MethodConfig, OODScorer, Paper, iter_batches
from yw_core.interfaces.ood_scorer import check_inputs
from yw_core.models import eval_mode, split_parts
from yw_core.runtime import Runtime


class ModelScorer(OODScorer):
    """Shared by the scorers here: fit keeps the model and runtime (and calls `_fit` in eval
    mode under no_grad); score checks and moves the inputs, then calls `_score` in eval mode."""

    status = "baseline"
    capabilities = Capabilities(post_hoc=True, deterministic=True)
    split: ClassVar[bool] = False
    """True for scorers on the penultimate features: fit checks the model has them."""

    _model: nn.Module | None = None
    _runtime: Runtime | None = None

    def fit(self, model: nn.Module, id_data: Any, *, runtime: Runtime) -> ModelScorer:
        """Record `model` (already moved with the runtime) and learn what the scorer needs from
        `id_data` (a Dataset of (x, y), a DataLoader or a tensor of inputs); returns self."""
        self._model = None  # a failed refit leaves the scorer unfitted, not half-fitted
        if self.split:
            split_parts(model, self.name)
        with eval_mode(model), torch.no_grad():
            self._fit(model, id_data, runtime)
        self._model, self._runtime = model, runtime
        return self

    def _fit(self, model: nn.Module, id_data: Any, runtime: Runtime) -> None:
        """What the scorer learns from the data; by default nothing (the data is not read)."""

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of shape (N,) on x's device, higher = more in-distribution."""
        if self._model is None:
            raise RuntimeError(f"{self.name}: call fit() before score()")
        check_inputs(self.name, x)
        with eval_mode(self._model), torch.no_grad():
            scores = self._score(self._model, self._runtime.to(x))
        return scores.detach().float().to(x.device)

    @abstractmethod
    def _score(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Scores of x, already on the runtime's device, with the model in eval mode."""


def penultimate(
    model: nn.Module, data: Any, runtime: Runtime, *, method: str, labels: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(features, labels) of `data` on the runtime's device; labels None unless `labels`
    (then a ValueError naming them when the data has none)."""
    features, _ = split_parts(model, method)
    feats, ys = [], []
    for x, y in iter_batches(data, labels=labels):
        feats.append(features(runtime.to(x)))
        if labels:
            ys.append(y)
    return torch.cat(feats), (torch.cat(ys) if labels else None)


class MSP(ModelScorer):
    """Maximum softmax probability of the model's logits; nothing is learned from the data."""

    name = "msp"
    summary = "MSP: the maximum softmax probability (Hendrycks & Gimpel's baseline)"
    paper = Paper(
        title="A Baseline for Detecting Misclassified and Out-of-Distribution Examples in "
        "Neural Networks",
        authors=("Hendrycks", "Gimpel"),
        year=2017,
        venue="ICLR",
        arxiv_id="1610.02136",
        code_url="https://github.com/hendrycks/error-detection",
    )

    class Config(MethodConfig):
        pass

    def _score(self, model, x):
        return ood.msp(model(x))


class Energy(ModelScorer):
    """Negative free energy T * logsumexp(logits / T); nothing is learned from the data."""

    name = "energy"
    summary = "Energy: T * logsumexp(logits / T), the negative free energy of the logits"
    paper = Paper(
        title="Energy-based Out-of-distribution Detection",
        authors=("Liu", "Wang", "Owens", "Li"),
        year=2020,
        venue="NeurIPS",
        arxiv_id="2010.03759",
        code_url="https://github.com/wetliu/energy_ood",
    )

    class Config(MethodConfig):
        temperature: float = Field(
            1.0,
            gt=0,
            le=1e4,
            description="temperature T (1: the paper's inference-time value, and OpenOOD's)",
        )

    def _score(self, model, x):
        return ood.energy(model(x), self.config.temperature)


class ODIN(ModelScorer):
    """MSP at temperature T after one signed-gradient step of size eps on the input pixels,
    through the full model; nothing is learned from the data."""

    name = "odin"
    summary = "ODIN: MSP at temperature T after a small input step that raises it"
    paper = Paper(
        title="Enhancing The Reliability of Out-of-distribution Image Detection in Neural Networks",
        authors=("Liang", "Li", "Srikant"),
        year=2018,
        venue="ICLR",
        arxiv_id="1706.02690",
        code_url="https://github.com/facebookresearch/odin",
    )

    class Config(MethodConfig):
        temperature: float = Field(
            1000.0,
            gt=0,
            le=1e6,
            description="temperature T (1000: the paper's choice and OpenOOD's default)",
        )
        eps: float = Field(
            0.0014,
            ge=0,
            le=1,
            description="input step size in pixel units of [0, 1] inputs (0.0014: OpenOOD's "
            "default, ODIN's value for its CIFAR-10 DenseNet; the paper tunes it per OOD set)",
        )

    def _score(self, model, x):
        c = self.config
        return ood.odin(model, x, temperature=c.temperature, eps=c.eps)


class Mahalanobis(ModelScorer):
    """Class Gaussians with one tied covariance on the penultimate features; score = -the
    smallest squared Mahalanobis distance to a class mean (OpenOOD's MDS)."""

    name = "mahalanobis"
    summary = "Mahalanobis: -min class distance under tied-covariance Gaussians on the features"
    paper = Paper(
        title="A Simple Unified Framework for Detecting Out-of-Distribution Samples and "
        "Adversarial Attacks",
        authors=("Lee", "Lee", "Lee", "Shin"),
        year=2018,
        venue="NeurIPS",
        arxiv_id="1807.03888",
        code_url="https://github.com/pokaxpoka/deep_Mahalanobis_detector",
    )
    capabilities = Capabilities(post_hoc=True, deterministic=True)
    split = True

    class Config(MethodConfig):
        pass

    def _fit(self, model, id_data, runtime):
        features, labels = penultimate(model, id_data, runtime, method=self.name, labels=True)
        self._gaussians = ood.Mahalanobis().fit(features, labels)

    def _score(self, model, x):
        return self._gaussians.score(model.features(x))


class KNN(ModelScorer):
    """-distance from the L2-normalised penultimate feature to its k-th nearest L2-normalised
    feature of the fit data."""

    name = "knn"
    summary = "KNN: -distance to the k-th nearest normalised fit feature (deep nearest neighbours)"
    paper = Paper(
        title="Out-of-Distribution Detection with Deep Nearest Neighbors",
        authors=("Sun", "Ming", "Zhu", "Li"),
        year=2022,
        venue="ICML",
        arxiv_id="2204.06507",
        code_url="https://github.com/deeplearning-wisc/knn-ood",
    )
    split = True

    class Config(MethodConfig):
        k: int = Field(
            50,
            ge=1,
            le=1_000_000,
            description="the neighbour whose distance is the score (50: the paper's CIFAR-10 "
            "value and OpenOOD's); the fit data needs at least k inputs",
        )

    def _fit(self, model, id_data, runtime):
        features, _ = penultimate(model, id_data, runtime, method=self.name)
        self._knn = ood.KNN(self.config.k).fit(features)

    def _score(self, model, x):
        return self._knn.score(model.features(x))


class GradNorm(ModelScorer):
    """L1 norm of the head's weight gradient of the cross-entropy to the uniform label, per
    input (in closed form); nothing is learned from the data."""

    name = "gradnorm"
    summary = "GradNorm: L1 norm of the head's gradient of the loss to uniform labels"
    paper = Paper(
        title="On the Importance of Gradients for Detecting Distributional Shifts in the Wild",
        authors=("Huang", "Geng", "Li"),
        year=2021,
        venue="NeurIPS",
        arxiv_id="2110.00218",
        code_url="https://github.com/deeplearning-wisc/gradnorm_ood",
    )
    split = True

    class Config(MethodConfig):
        temperature: float = Field(
            1.0,
            gt=0,
            le=1e4,
            description="softmax temperature T (1: the paper's default, and OpenOOD's)",
        )

    def _score(self, model, x):
        return ood.gradnorm(model.features(x), model.head, self.config.temperature)


class ReAct(ModelScorer):
    """Energy of head(features clipped at a percentile of the fit data's features)."""

    name = "react"
    summary = "ReAct: energy score after clipping the features at a percentile of the ID ones"
    paper = Paper(
        title="ReAct: Out-of-distribution Detection With Rectified Activations",
        authors=("Sun", "Guo", "Li"),
        year=2021,
        venue="NeurIPS",
        arxiv_id="2111.12797",
        code_url="https://github.com/deeplearning-wisc/react",
    )
    split = True

    class Config(MethodConfig):
        percentile: float = Field(
            90.0,
            gt=0,
            le=100,
            description="clip the features at this percentile of every feature value of the fit "
            "data (90: the paper's default and OpenOOD's, which take it on ID validation data)",
        )

        above_minimum: bool = Field(
            True,
            description="when that percentile is the features' minimum (a sparse ReLU layer: "
            "clipping would give every input the same score), take the percentile of the values "
            "above the minimum instead; an inference: the paper's pooled ResNet features are "
            "dense, so its rule never meets this case. False: the rule as written, with a warning",
        )

    threshold: float | None = None
    """The clip value learned at fit."""

    def _fit(self, model, id_data, runtime):
        features, _ = penultimate(model, id_data, runtime, method=self.name)
        features = features.cpu()
        self.threshold = ood.react_threshold(features, self.config.percentile)
        lowest = float(features.min())
        if self.threshold > lowest:
            return
        share = float((features <= self.threshold).float().mean())
        if self.config.above_minimum and share < 1:
            above = features[features > lowest]
            self.threshold = ood.react_threshold(above[:, None], self.config.percentile)
            return
        warnings.warn(
            f"react: the clip value (the {self.config.percentile:g}th percentile of the fit "
            f"features) is {self.threshold:.4g}, their minimum: {share:.0%} of them are at "
            "it, as on a sparse ReLU layer. Clipping then makes every feature equal, so "
            "every input gets the same score; raise `percentile`",
            stacklevel=3,
        )

    def _score(self, model, x):
        clipped = ood.react_clip(model.features(x), self.threshold)
        return ood.energy(model.head(clipped))
