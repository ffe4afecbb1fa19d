"""ToS, AnomalyAID's two-stage semi-supervised training, as the official code runs it.

Stage 1 trains the detector on the labelled rows (cross-entropy, Adam, early stopping on a
held-out part of them) and puts one centroid per class at the mean embedding of its labelled
rows. Stage 2 walks the unlabelled rows in batches: DBSCAN clusters the batch's embeddings, each
cluster takes the label of the centroid nearest its mean (DBSCAN noise keeps -1 and is never
pseudo-labelled), KAM accepts a row when the top-n overlap of its DeepLIFT attribution (for the
cluster label) with that class's global importance is >= threshold, and the detector is
retrained on the accepted rows with their cluster labels; their embeddings join the class stores
and the centroids move to the mean of everything stored. One Adam optimiser lives through all
rounds, as in the code.

DBSCAN's official eps=0.5 and min_samples=1 are absolute: a trained FCN's embeddings lie wider
apart than that (on synthetic flows about 170 clusters per 256 rows), so most rows form a
cluster of their own and the cluster label is just the row's nearest centroid; an untrained
FCN's lie closer, and DBSCAN chains most of a batch into a few clusters, each taking one label.
Both are the code's behaviour and are kept.

"self-training" replaces the cluster label and KAM by the usual rule (softmax confidence >=
`confidence` accepts the predicted class; the accepted rows join the class stores too [I]);
"supervised" stops after stage 1.

Inferences [I]: the held-out share (`holdout_fraction`, stratified, at least one row per class
stays for training) and its reuse for early stopping in stage 2 (the code uses a separate
validation loader); the best weights are restored after early stopping (the code saves them but
never reloads them); embeddings of accepted rows are taken in eval mode (the code leaves dropout
on); the training batches of stage 1 are shuffled; dropout draws from a fork of the global RNG
seeded by the runtime, so the caller's RNG state is left alone.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from yw_core.models import split_parts
from yw_plugin_anomalyaid.interpret import (
    embed,
    global_importance,
    kam_overlap,
    local_attributions,
    nearest_centroid,
)

TOLERANCE = 1e-6
"""Slack on `overlap >= threshold`, so 6/10 >= 0.6 holds whatever the float rounding."""


@contextmanager
def forked_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Run in a seeded fork of the global RNG (CPU, and the CUDA device in use): dropout draws
    from it, and the caller's RNG state must stay as it was."""
    cuda = device.type == "cuda"
    index = 0
    if cuda:
        index = device.index if device.index is not None else torch.cuda.current_device()
    with torch.random.fork_rng(devices=[index] if cuda else []):
        torch.random.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield


def holdout_split(
    y: torch.Tensor, fraction: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) positions into y, stratified: round(fraction * n_c) rows of each class
    are held out, but at least one row of every class stays for training [I]."""
    train, held = [], []
    for c in y.unique().tolist():
        rows = (y == c).nonzero().flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)]
        k = min(int(round(fraction * len(rows))), len(rows) - 1)
        held.append(rows[:k])
        train.append(rows[k:])
    return torch.cat(train).sort().values, torch.cat(held).sort().values


def train_epochs(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    optimiser: torch.optim.Optimizer,
    *,
    val: tuple[torch.Tensor, torch.Tensor] | None,
    epochs: int,
    patience: int,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator,
) -> int:
    """Cross-entropy training with early stopping on the validation loss (`patience` epochs
    without improvement); the best weights are restored [I]. Returns the epochs run; leaves the
    model in eval mode."""
    best, best_state, stale, epoch = math.inf, None, 0, 0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=generator) if shuffle else torch.arange(len(x))
        for batch in order.to(x.device).split(batch_size):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        if val is None or len(val[0]) == 0:
            continue
        model.eval()
        with torch.no_grad():
            val_loss = F.cross_entropy(model(val[0]), val[1]).item()
        if val_loss < best:
            best, stale = val_loss, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return epoch


def cluster_labels(
    emb: torch.Tensor, centroids: torch.Tensor, *, eps: float, min_samples: int
) -> torch.Tensor:
    """DBSCAN on the embeddings, each cluster labelled with the class centroid nearest its
    mean; DBSCAN noise stays -1. Returns (N,) int64 on the CPU."""
    from sklearn.cluster import DBSCAN

    points = emb.detach().cpu().double()
    found = torch.as_tensor(
        DBSCAN(eps=eps, min_samples=min_samples).fit_predict(points.numpy()), dtype=torch.long
    )
    labels = torch.full_like(found, -1)
    clustered = found >= 0
    if clustered.any():
        k = int(found.max()) + 1
        sums = torch.zeros(k, points.shape[1], dtype=points.dtype)
        sums.index_add_(0, found[clustered], points[clustered])
        means = sums / torch.bincount(found[clustered], minlength=k)[:, None]
        labels[clustered] = nearest_centroid(means, centroids.detach().cpu().double())[
            found[clustered]
        ]
    return labels


class ClassStore:
    """What the official DeepCluster keeps per class: every input and embedding it was given.
    A centroid is the mean of all stored embeddings: as stored (the code: old ones are not
    recomputed after retraining) or, given the current `features`, of the stored inputs embedded
    anew [I]; the global importance reads the first stored inputs."""

    def __init__(self, classes: int):
        self.inputs: list[list[torch.Tensor]] = [[] for _ in range(classes)]
        self.embeddings: list[list[torch.Tensor]] = [[] for _ in range(classes)]

    def add(self, x: torch.Tensor, emb: torch.Tensor, labels: torch.Tensor) -> None:
        """Store rows under their labels (labels on any device)."""
        labels = labels.to(x.device)
        for c in labels.unique().tolist():
            self.inputs[c].append(x[labels == c])
            self.embeddings[c].append(emb[labels == c])

    def centroids(self, features: nn.Module | None = None) -> torch.Tensor:
        """(classes, E): the mean stored embedding of each class (re-embedded by `features`)."""
        if features is not None:
            return torch.stack([embed(features, torch.cat(x)).mean(0) for x in self.inputs])
        return torch.stack([torch.cat(e).mean(0) for e in self.embeddings])

    def samples(self, limit: int) -> list[torch.Tensor]:
        """The first `limit` stored inputs of each class."""
        return [torch.cat(rows)[:limit] for rows in self.inputs]


def agreement(model: nn.Module, x: torch.Tensor, centroids: torch.Tensor, config: Any) -> float:
    """Share of rows whose detector prediction equals their cluster label (DBSCAN noise never
    does), clustering in batches of `config.unlabelled_batch_size` as stage 2 does [I]; NaN
    without rows."""
    features, head = split_parts(model, "anomalyaid")
    if len(x) == 0:
        return math.nan
    hits = 0
    for part in x.split(config.unlabelled_batch_size):
        emb = embed(features, part)
        found = cluster_labels(emb, centroids, eps=config.eps, min_samples=config.min_samples)
        with torch.no_grad():
            hits += int((head(emb).argmax(1).cpu() == found).sum())
    return hits / len(x)


def two_stage(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: Any, runtime: Any
) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
    """Train `model` in place (x on the runtime's device, y (N,) int64 on the CPU with -1 for
    unlabelled rows) per `config.training`. Returns (history, centroids, global importance of
    every class (classes, F)); the model ends in eval mode."""
    features, head = split_parts(model, "anomalyaid")
    generator = runtime.generator(device="cpu")
    labelled = (y >= 0).nonzero().flatten()
    unlabelled = (y < 0).nonzero().flatten()
    train, held = holdout_split(y[labelled], config.holdout_fraction, generator)
    train, held = labelled[train], labelled[held]
    device_y = y.to(x.device)
    val = (x[held.to(x.device)], device_y[held.to(x.device)]) if len(held) else None
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    history: dict[str, Any] = {
        "training": config.training,
        "labelled": labelled.tolist(),
        "held_out": held.tolist(),
        "unlabelled": unlabelled.tolist(),
        "cluster_labels": [],
        "overlap": [],
        "confidence": [],
        "accepted": [],
        "pseudo_labels": [],
        "rounds": [],
    }
    with forked_rng(runtime.device, runtime.seed):
        on = train.to(x.device)
        history["stage1_epochs"] = train_epochs(
            model,
            x[on],
            device_y[on],
            optimiser,
            val=val,
            epochs=config.epochs,
            patience=config.patience,
            batch_size=config.batch_size,
            shuffle=True,
            generator=generator,
        )
        store = ClassStore(head.out_features)
        at = labelled.to(x.device)
        store.add(x[at], embed(features, x[at]), y[labelled])
        x_unl = x[unlabelled.to(x.device)]
        fresh = features if config.refresh_centroids else None
        history["agreement_before"] = agreement(model, x_unl, store.centroids(fresh), config)
        if config.training != "supervised":
            for rows in unlabelled.split(config.unlabelled_batch_size):
                _round(model, x, rows, store, optimiser, val, config, generator, history)
        centroids = store.centroids(fresh)
    history["agreement_after"] = agreement(model, x_unl, centroids, config)
    importance = global_importance(
        features,
        centroids,
        store.samples(config.pfi_samples),
        repeats=config.pfi_repeats,
        generator=generator,
    )
    return history, centroids, importance


def _round(model, x, rows, store, optimiser, val, config, generator, history) -> None:
    """One stage-2 round on the unlabelled rows `rows` (CPU positions into x)."""
    features, head = split_parts(model, "anomalyaid")
    model.eval()
    xb = x[rows.to(x.device)]
    emb = embed(features, xb)
    if config.training == "self-training":
        with torch.no_grad():
            confidence, labels = head(emb).softmax(1).max(1)
        accept = (confidence >= config.confidence - TOLERANCE).cpu()
        labels = labels.cpu()
        history["confidence"] += confidence.tolist()
    else:
        centroids = store.centroids(features if config.refresh_centroids else None)
        labels = cluster_labels(emb, centroids, eps=config.eps, min_samples=config.min_samples)
        clustered = labels >= 0
        overlap = torch.full((len(rows),), math.nan)
        if clustered.any():
            importance = global_importance(
                features,
                centroids,
                store.samples(config.pfi_samples),
                repeats=config.pfi_repeats,
                generator=generator,
            )
            target, rows_in = labels[clustered].to(x.device), xb[clustered.to(x.device)]
            attributions = local_attributions(model, rows_in, target, config.local)
            overlap[clustered] = kam_overlap(attributions, importance[target], config.top_n).cpu()
        accept = clustered & (overlap >= config.threshold - TOLERANCE)
        if config.require_fcn_agree:
            with torch.no_grad():
                accept &= head(emb).argmax(1).cpu() == labels
        history["cluster_labels"] += labels.tolist()
        history["overlap"] += overlap.tolist()
    epochs = 0
    if accept.any():
        on = accept.to(x.device)
        epochs = train_epochs(
            model,
            xb[on],
            labels[accept].to(x.device),
            optimiser,
            val=val,
            epochs=config.retrain_epochs,
            patience=config.retrain_patience,
            batch_size=config.retrain_batch_size,
            shuffle=False,
            generator=generator,
        )
        store.add(xb[on], embed(features, xb[on]), labels[accept])
        history["accepted"] += rows[accept].tolist()
        history["pseudo_labels"] += labels[accept].tolist()
    history["rounds"].append(
        {"rows": len(rows), "accepted": int(accept.sum()), "retrain_epochs": epochs}
    )
