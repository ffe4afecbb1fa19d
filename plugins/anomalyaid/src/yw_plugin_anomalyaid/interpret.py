"""KAM, AnomalyAID's global-local knowledge association: how far a local explanation agrees with
its class's global explanation.

- Global: per class, the permutation importance of the "embed -> nearest class centroid"
  predictor on that class's stored samples, scored against the constant class label; importance
  = |mean accuracy drop| over the repeats (the official GlobalInterpreter with sklearn's
  permutation_importance). The official predictor refits DBSCAN on the permuted set before the
  centroid step; here each row goes to its nearest centroid directly [I] (the same thing when
  DBSCAN leaves every row in a cluster of its own, as it does on a trained FCN's embeddings, and
  F x repeats DBSCAN fits fewer). Shuffling one column among one class's rows keeps that
  column's values, so a feature scores only through its interplay with the others: one that
  decides the class on its own scores zero.
- Local: DeepLIFT (captum, zero baseline) on the logit of the explained class; gradient x input
  when captum is missing or asked for.
- Overlap: |top_n(|local|) ∩ top_n(global)| / top_n, in [0, 1]; top_n is capped at the number
  of features.

Features are the flattened input elements, so images (N, C, H, W) work like flows (N, F).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

VALUES_PER_PASS = 1 << 22
"""Input values pushed through the model at once by the permutation importance (16 MiB)."""


@torch.no_grad()
def embed(features: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """The embeddings features(x), (N, E), in batches; the caller sets the model's mode."""
    return torch.cat([features(part).flatten(1) for part in x.split(batch_size)])


def class_centroids(emb: torch.Tensor, labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Mean embedding of each class, (classes, E); ValueError naming a class without rows."""
    missing = [c for c in range(classes) if not (labels == c).any()]
    if missing:
        raise ValueError(f"anomalyaid: class(es) {missing} have no rows to build a centroid from")
    return torch.stack([emb[labels == c].mean(0) for c in range(classes)])


def nearest_centroid(emb: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid (Euclidean) for each embedding, (N,)."""
    return torch.cdist(emb, centroids.to(emb)).argmin(1)


@torch.no_grad()
def permutation_importance(
    features: nn.Module,
    centroids: torch.Tensor,
    x: torch.Tensor,
    label: int,
    *,
    repeats: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """|mean accuracy drop| of embed -> nearest centroid against the constant `label` when one
    flattened feature of x is shuffled among its rows, per feature: (F,) on x's device.
    `generator` (a CPU generator) draws the shuffles."""
    n, shape = len(x), x.shape[1:]
    flat = x.flatten(1)
    f = flat.shape[1]

    def accuracy(rows: torch.Tensor) -> torch.Tensor:
        hits = nearest_centroid(embed(features, rows.view(-1, *shape)), centroids) == label
        return hits.view(-1, n).float().mean(1)

    base = accuracy(flat)
    chunk = max(1, VALUES_PER_PASS // max(1, n * f))
    importance = torch.zeros(f, device=x.device)
    for j in range(f):
        order = torch.rand(repeats, n, generator=generator).argsort(1).to(x.device)
        drops = []
        for part in order.split(chunk):
            shuffled = flat.unsqueeze(0).repeat(len(part), 1, 1)
            shuffled[:, :, j] = flat[:, j][part]
            drops.append(base - accuracy(shuffled.view(-1, f)))
        importance[j] = torch.cat(drops).mean().abs()
    return importance


def global_importance(
    features: nn.Module,
    centroids: torch.Tensor,
    samples: Sequence[torch.Tensor],
    *,
    repeats: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """Permutation importance of each class c on its samples[c] against label c: (classes, F)."""
    return torch.stack(
        [
            permutation_importance(
                features, centroids, rows, c, repeats=repeats, generator=generator
            )
            for c, rows in enumerate(samples)
        ]
    )


def local_attributions(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    method: Literal["deeplift", "grad_x_input"] = "deeplift",
) -> torch.Tensor:
    """Attributions (shape of x, detached) of each row's `target` logit: captum's DeepLIFT with a
    zero baseline, or gradient x input. The caller puts the model in eval mode."""
    x = x.detach().clone().requires_grad_(True)
    target = target.to(x.device).long()
    with torch.enable_grad():
        if method == "deeplift":
            try:
                from captum.attr import DeepLift
            except ImportError:  # pragma: no cover - captum is a dependency
                warnings.warn(
                    "anomalyaid: captum is not installed; using gradient x input instead of "
                    "DeepLIFT",
                    stacklevel=2,
                )
            else:
                with warnings.catch_warnings():  # captum's notes on its own hooks
                    warnings.simplefilter("ignore", UserWarning)
                    return DeepLift(model).attribute(x, target=target).detach()
        picked = model(x).gather(1, target[:, None]).sum()
        (grad,) = torch.autograd.grad(picked, x)
    return (grad * x).detach()


def kam_overlap(local: torch.Tensor, global_rows: torch.Tensor, top_n: int) -> torch.Tensor:
    """|top_n(|local[i]|) ∩ top_n(global_rows[i])| / top_n for each row, (N,) in [0, 1];
    `global_rows[i]` is the global importance of the class row i is explained for."""
    flat = local.flatten(1).abs()
    n = min(top_n, flat.shape[1])
    if len(flat) == 0:
        return torch.zeros(0, device=local.device)
    mine = torch.zeros_like(flat).scatter_(1, flat.topk(n, dim=1).indices, 1.0)
    theirs = torch.zeros_like(flat).scatter_(1, global_rows.to(flat).topk(n, dim=1).indices, 1.0)
    return (mine * theirs).sum(1) / n
