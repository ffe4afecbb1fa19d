"""Scorers on the gradient feature h: KNN, or output-based scores of a trained linear probe.

- `knn`: core's `yw_core.ood.KNN` on h: L2-normalise, score = −(distance to the K-th nearest
  fit feature). The official code ranks by −(squared distance) (faiss IndexFlatL2): the same
  order, since squaring is monotone on distances.
- the probe, BatchNorm1d(k) -> Linear(k, C), trained on the fit features with cross-entropy and
  SGD (official defaults: lr 0.1, momentum 0.9, weight decay 5e-4, 10 epochs, batch 16), its
  initial weights and batch order drawn from a seeded generator; then, on the probe in eval mode
  and with core's score functions (`yw_core.ood`):
  - `msp`, `energy` (T = 1) on the probe's logits;
  - `odin`: MSP at T after the ODIN step of size eps on h itself (T = 100, eps = 50: the
    official CIFAR values; the step is in h's units, not pixels);
  - `react`: energy of the probe's logits after clipping h's dimensions >= start_dim (10) at the
    percentile (90) of those dimensions of the **fit** features (the official code takes the
    percentile of the ID *test* features, which leaks test data into the detector);
  - `mahalanobis`: tied-covariance class Gaussians on the probe's BatchNorm output, score =
    −min distance (eval-mode BatchNorm is an invertible per-dimension affine map unless a weight
    is 0, and tied-covariance Mahalanobis distances are affine-invariant, so these are the
    official scores on the BN input too);
  - `gradnorm`: L1 norm of the probe head's weight gradient of CE to all-ones targets at T = 1,
    on the BatchNorm output (closed form, `yw_core.ood.gradnorm`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from yw_core import ood

PROBE_SCORERS = ("msp", "energy", "odin", "react", "mahalanobis", "gradnorm")


class Probe(nn.Module):
    """BatchNorm1d(k) -> Linear(k, C), the official `Linear_Probe`."""

    def __init__(self, k: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(k)
        self.fc = nn.Linear(k, num_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(h))


def train_probe(
    h: torch.Tensor,
    y: torch.Tensor,
    *,
    num_classes: int,
    epochs: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    batch_size: int,
    generator: torch.Generator,
) -> Probe:
    """A probe trained on (h, y) (on h's device), returned in eval mode. Weights start as
    nn.Linear's default (uniform in ±1/sqrt(k)) but from `generator` (a CPU generator), which
    also shuffles every epoch. A last batch of one input is skipped (BatchNorm cannot train on
    it)."""
    with torch.random.fork_rng(devices=[]):  # the default init would draw from the global RNG
        probe = Probe(h.shape[1], num_classes).to(h.device)
    bound = 1 / math.sqrt(h.shape[1])
    with torch.no_grad():
        for param in (probe.fc.weight, probe.fc.bias):
            param.copy_(torch.empty(param.shape).uniform_(-bound, bound, generator=generator))
    optimiser = torch.optim.SGD(
        probe.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    y = y.to(h.device).long()
    probe.train()
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(len(h), generator=generator).to(h.device)
            for batch in order.split(batch_size):
                if len(batch) < 2:
                    continue
                loss = nn.functional.cross_entropy(probe(h[batch]), y[batch])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
    return probe.eval()


class FeatureScorer:
    """One of the scorers above, fitted on the fit features (and labels, for the probe)."""

    def __init__(self, kind: str, config):
        self.kind, self.config = kind, config

    def fit(self, h: torch.Tensor, y: torch.Tensor | None, generator: torch.Generator):
        c = self.config
        if self.kind == "knn":
            self.knn = ood.KNN(c.knn_k).fit(h)
            return self
        if self.kind == "react" and not c.react_start_dim < h.shape[1]:
            raise ValueError(
                f"lowdim-grad: react_start_dim={c.react_start_dim} must be below the feature "
                f"dimension {h.shape[1]}"
            )
        self.probe = train_probe(
            h,
            y,
            num_classes=int(y.max()) + 1,
            epochs=c.probe_epochs,
            lr=c.probe_lr,
            momentum=c.probe_momentum,
            weight_decay=c.probe_weight_decay,
            batch_size=c.probe_batch_size,
            generator=generator,
        )
        with torch.no_grad():
            if self.kind == "react":
                # on the CPU: the percentile is taken in float64
                self.threshold = ood.react_threshold(
                    h.cpu(), c.react_percentile, start_dim=c.react_start_dim
                )
            if self.kind == "mahalanobis":
                self.gaussians = ood.Mahalanobis().fit(self.probe.bn(h), y)
        return self

    def score(self, h: torch.Tensor) -> torch.Tensor:
        c = self.config
        if self.kind == "knn":
            return self.knn.score(h)
        if self.kind == "odin":
            return ood.odin(self.probe, h, temperature=c.odin_temperature, eps=c.odin_eps)
        with torch.no_grad():
            if self.kind == "msp":
                return ood.msp(self.probe(h))
            if self.kind == "energy":
                return ood.energy(self.probe(h))
            if self.kind == "react":
                clipped = ood.react_clip(h, self.threshold, start_dim=c.react_start_dim)
                return ood.energy(self.probe(clipped))
            if self.kind == "mahalanobis":
                return self.gaussians.score(self.probe.bn(h))
            if self.kind == "gradnorm":
                return ood.gradnorm(self.probe.bn(h), self.probe.fc)
        raise ValueError(f"lowdim-grad: unknown scorer {self.kind!r}")
