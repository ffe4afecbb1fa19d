"""OOD scores on logits, features and a linear head, shared by every OOD scorer plugin.

The baselines (yw-plugin-baselines) apply them to a classifier's penultimate features and head;
the low-dimensional-gradient scorer applies them to gradient features and a trained probe. All
follow the OODScorer convention: higher = more in-distribution. Functions take and return torch
tensors on the inputs' device; none changes a module's weights or mode.

- `msp`: maximum softmax probability (Hendrycks & Gimpel 2017), with a temperature;
- `energy`: T * logsumexp(logits / T), the negative free energy (Liu et al. 2020);
- `odin`: MSP at temperature T after a signed-gradient input step (Liang et al. 2018);
- `gradnorm`: L1 norm of the head's weight gradient of KL(uniform || softmax) (Huang et al. 2021);
- `react_threshold`, `react_clip`: feature clipping at a percentile (Sun et al. 2021);
- `Mahalanobis`: class Gaussians with one tied covariance, -min distance (Lee et al. 2018);
- `KNN`: -distance to the k-th nearest L2-normalised fit feature (Sun et al. 2022).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn


def msp(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Maximum softmax probability of logits / T, shape (N,)."""
    return torch.softmax(logits / temperature, dim=1).amax(dim=1)


def energy(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Negative free energy T * logsumexp(logits / T), shape (N,)."""
    return temperature * torch.logsumexp(logits / temperature, dim=1)


def odin(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    temperature: float,
    eps: float,
) -> torch.Tensor:
    """ODIN: x' = x - eps * sign(grad_x of -log max softmax(forward(x) / T)), then MSP of
    forward(x') at T. As in the ODIN code, a zero gradient counts as positive (`ge(grad, 0)`)
    and x' is not clipped. `forward` maps inputs (pixels or features) to logits. Autograd is
    enabled here, so callers may be under no_grad."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        loss = -torch.log_softmax(forward(x) / temperature, dim=1).amax(dim=1)
        (grad,) = torch.autograd.grad(loss.sum(), x)
    with torch.no_grad():
        step = torch.where(grad >= 0, 1.0, -1.0).to(x.dtype)
        return msp(forward(x.detach() - eps * step), temperature)


def gradnorm(features: torch.Tensor, head: nn.Linear, temperature: float = 1.0) -> torch.Tensor:
    """GradNorm: the L1 norm of d/dW of sum_c -log softmax(head(z) / T)_c, per sample.

    For a linear head that gradient is (C p - 1) z^T / T (p the softmax), so its L1 norm is
    ||C p - 1||_1 * ||z||_1 / T: computed in closed form, with no backward pass. This is the
    GradNorm code's all-ones target; the paper's KL to the uniform distribution is 1/C of it
    (the same ranking).
    """
    if not isinstance(head, nn.Linear):
        raise TypeError(f"gradnorm needs an nn.Linear head, not {type(head).__name__}")
    p = torch.softmax(head(features) / temperature, dim=1)
    num_classes = p.shape[1]
    return (num_classes * p - 1).abs().sum(1) * features.abs().sum(1) / temperature


def react_threshold(features: torch.Tensor, percentile: float = 90.0, start_dim: int = 0) -> float:
    """The ReAct clip value: the `percentile` of every entry in columns >= start_dim."""
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must lie in (0, 100], got {percentile}")
    if not 0 <= start_dim < features.shape[1]:
        raise ValueError(
            f"start_dim must lie in [0, {features.shape[1]}) for {features.shape[1]} features, "
            f"got {start_dim}"
        )
    values = features[:, start_dim:].detach().cpu().double().numpy()
    return float(np.percentile(values, percentile))  # torch.quantile stops at 2**24 values


def react_clip(features: torch.Tensor, threshold: float, start_dim: int = 0) -> torch.Tensor:
    """Features with columns >= start_dim clipped above at `threshold` (a new tensor)."""
    clipped = features.clone()
    clipped[:, start_dim:] = clipped[:, start_dim:].clamp(max=threshold)
    return clipped


class Mahalanobis:
    """Class-conditional Gaussians with one tied covariance, fitted on features and labels;
    score = -min over classes of the squared Mahalanobis distance (no input preprocessing)."""

    def fit(self, features: torch.Tensor, labels: torch.Tensor) -> Mahalanobis:
        features, labels = _exact(features), labels.to(features.device).long()
        classes = torch.unique(labels)
        if len(classes) < 2:
            raise ValueError(f"Mahalanobis needs at least 2 classes, got {len(classes)}")
        self.means = torch.stack([features[labels == c].mean(0) for c in classes])
        centred = features - self.means[torch.searchsorted(classes, labels)]
        covariance = centred.T @ centred / len(features)
        self.precision = torch.linalg.pinv(covariance, hermitian=True)
        return self

    def score(self, features: torch.Tensor) -> torch.Tensor:
        z = _exact(features)
        precision, means = self.precision.to(z), self.means.to(z)
        zp = z @ precision  # d_c(z) = z'Pz - 2 z'P mu_c + mu_c'P mu_c, without an (N, C, D) array
        distances = (
            (zp * z).sum(1, keepdim=True) - 2 * zp @ means.T + ((means @ precision) * means).sum(1)
        )
        return (-distances.amin(1)).to(features.dtype)


def _exact(features: torch.Tensor) -> torch.Tensor:
    """Features in float64 for the covariance algebra (float32 on MPS, which has no float64)."""
    return features.detach().to(torch.float32 if features.device.type == "mps" else torch.float64)


class KNN:
    """Deep nearest neighbours: score = -(distance from the L2-normalised feature to its k-th
    nearest L2-normalised fit feature), computed in chunks of queries to bound memory."""

    def __init__(self, k: int, chunk_size: int = 1024):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k, self.chunk_size = int(k), int(chunk_size)

    def fit(self, features: torch.Tensor) -> KNN:
        if len(features) < self.k:
            raise ValueError(
                f"KNN with k={self.k} needs at least {self.k} fit features, got {len(features)}"
            )
        self.bank = nn.functional.normalize(features.detach().float(), dim=1)
        return self

    def score(self, features: torch.Tensor) -> torch.Tensor:
        queries = nn.functional.normalize(features.detach().float(), dim=1)
        bank = self.bank.to(queries.device)
        scores = [
            -torch.cdist(chunk, bank).kthvalue(self.k, dim=1).values
            for chunk in queries.split(self.chunk_size)
        ]
        return torch.cat(scores).to(features.dtype)
