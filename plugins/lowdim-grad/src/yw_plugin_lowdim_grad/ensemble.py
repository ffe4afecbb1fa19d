"""The forward + backward ensemble: score = z(s_grad) + a · z(s_fwd). **An inference**: the
paper ensembles forward and backward information, but its formula is not published, and the
official code declares the coefficient `--a` without ever reading it.

s_fwd is the same scorer on the model's own forward information:

- `knn`: KNN (same K) on the model's L2-normalised penultimate features `model.features(x)`;
- `msp`, `energy`: on the model's logits;
- `odin`: ODIN through the whole model on the input pixels, T = `odin_temperature`, step
  `forward_odin_eps` (0.0014, ODIN's CIFAR pixel step: the step of 50 used on h means nothing in
  pixel units);
- `react`: ReAct on the penultimate features, clipped at the percentile of every fit feature
  value (start_dim 0, as ReAct itself), energy of the head's logits;
- `mahalanobis`: tied-covariance class Gaussians on the penultimate features;
- `gradnorm`: GradNorm of the model's head on the penultimate features.

z() standardises a score by its mean and standard deviation on held-out in-distribution data
(a seeded `holdout_fraction` of the fit data, which the gradient side never sees: not in z̄, s,
V, the KNN bank or the probe's training set).
"""

from __future__ import annotations

import torch
from torch import nn

from yw_core import ood
from yw_core.models import split_parts

NEEDS_SPLIT = ("knn", "react", "mahalanobis", "gradnorm")


class ForwardScorer:
    """The scorer `kind` on the model's own logits or penultimate features."""

    def __init__(self, kind: str, config):
        self.kind, self.config = kind, config

    def _features(self, model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        features, _ = split_parts(model, "lowdim-grad's forward ensemble")
        with torch.no_grad():
            return torch.cat([features(b) for b in x.split(batch_size)])

    def fit(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, batch_size: int):
        """Learn the forward side's statistics from the fit inputs x (on the model's device)."""
        if self.kind in NEEDS_SPLIT:
            split_parts(model, "lowdim-grad's forward ensemble")
        if self.kind == "knn":
            self.knn = ood.KNN(self.config.knn_k).fit(self._features(model, x, batch_size))
        elif self.kind == "react":
            f = self._features(model, x, batch_size)
            self.threshold = ood.react_threshold(f.cpu(), self.config.react_percentile)
        elif self.kind == "mahalanobis":
            f = self._features(model, x, batch_size)
            self.gaussians = ood.Mahalanobis().fit(f, y)
        return self

    def score(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if self.kind == "odin":
            return ood.odin(model, x, temperature=c.odin_temperature, eps=c.forward_odin_eps)
        with torch.no_grad():
            if self.kind == "msp":
                return ood.msp(model(x))
            if self.kind == "energy":
                return ood.energy(model(x))
            f = model.features(x)
            if self.kind == "knn":
                return self.knn.score(f)
            if self.kind == "react":
                return ood.energy(model.head(ood.react_clip(f, self.threshold)))
            if self.kind == "mahalanobis":
                return self.gaussians.score(f)
            if self.kind == "gradnorm":
                return ood.gradnorm(f, model.head)
        raise ValueError(f"lowdim-grad: unknown scorer {self.kind!r}")


class Standardiser:
    """z(s) = (s − mean) / std with the mean and standard deviation of held-out ID scores (a
    standard deviation of 0 is taken as 1)."""

    def __init__(self, scores: torch.Tensor):
        scores = scores.double()
        self.mean = float(scores.mean())
        std = float(scores.std()) if len(scores) > 1 else 0.0
        self.std = std if std > 0 else 1.0

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        return (scores.double() - self.mean) / self.std


def holdout_split(
    n: int, fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(fit indices, held-out indices), each sorted: a seeded random max(2, round(fraction n))
    of the n inputs held out; ValueError when that leaves fewer than 2 inputs to fit on."""
    held = max(2, round(fraction * n))
    if n - held < 2:
        raise ValueError(
            f"lowdim-grad: forward_weight > 0 holds out {held} of the {n} fit inputs to "
            "standardise the scores, which leaves too few to fit on; give more data"
        )
    order = torch.randperm(n, generator=generator)
    return order[held:].sort().values, order[:held].sort().values
