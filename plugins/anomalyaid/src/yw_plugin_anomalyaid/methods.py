"""AnomalyAID (Yuan, Huang, Wu, Wang; arXiv 2411.11293) as a yw Interpreter.

`fit` reads a trained split classifier and reference data: one centroid per class in embedding
space and each class's global importance (permutation importance of embed -> nearest centroid).
`explain` gives each input's local attribution (DeepLIFT) for the predicted class and, as its
reliability, the KAM overlap of the local and the global top-n features. `train_detector` runs
the paper's two-stage semi-supervised training (ToS) on a copy of a detector and leaves the
interpreter fitted on the result. Rows labelled -1 are unlabelled.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from yw_core.interfaces import (
    Capabilities,
    Explanation,
    Interpreter,
    MethodConfig,
    Paper,
    Variant,
    iter_batches,
)
from yw_core.interfaces.ood_scorer import check_inputs
from yw_core.models import eval_mode, split_parts
from yw_core.runtime import Runtime
from yw_plugin_anomalyaid.interpret import (
    class_centroids,
    embed,
    global_importance,
    kam_overlap,
    local_attributions,
)
from yw_plugin_anomalyaid.model import FCN
from yw_plugin_anomalyaid.tos import two_stage

EXPLAIN_BATCH = 256
"""Inputs explained per DeepLIFT call."""


class AnomalyAIDConfig(MethodConfig):
    """AnomalyAID's settings. The official YAML is not published: top_n, the PFI, DBSCAN, the
    FCN's dropout and the training loop's epochs, patience and retrain batch come from the code;
    threshold, the FCN's sizes and the learning rate are inferences [I]."""

    top_n: int = Field(
        10, ge=1, le=1_000_000, description="features compared by KAM (10: the code's default)"
    )
    threshold: float = Field(
        0.6,
        ge=0,
        le=1,
        description="KAM accepts a pseudo label when the local/global top-n overlap is >= this "
        "(the code has no default; 0.6 [I])",
    )
    local: Literal["deeplift", "grad_x_input"] = Field(
        "deeplift",
        description="local attribution: 'deeplift' (captum, zero baseline; the paper's) or "
        "'grad_x_input'",
    )
    training: Literal["anomalyaid", "supervised", "self-training"] = Field(
        "anomalyaid",
        description="train_detector's scheme: 'anomalyaid' stage 1 + KAM-accepted DBSCAN cluster "
        "labels, 'supervised' stage 1 only, 'self-training' stage 1 + softmax-confidence pseudo "
        "labels (no KAM)",
    )
    require_fcn_agree: bool = Field(
        False,
        description="also require the detector's prediction to equal the cluster label before "
        "accepting a pseudo label (one reading of the paper's alignment of both stages [I])",
    )
    refresh_centroids: bool = Field(
        True,
        description="embed the stored rows anew with the retrained detector before taking class "
        "centroids [I: the code keeps their first embeddings (False), and its training then "
        "collapsed on some seeds at 20,000 flows]",
    )
    confidence: float = Field(
        0.9,
        ge=0,
        le=1,
        description="self-training accepts the predicted class when its softmax probability is "
        ">= this [I]",
    )
    eps: float = Field(0.5, gt=0, le=1e6, description="DBSCAN eps (0.5: the code)")
    min_samples: int = Field(
        1, ge=1, le=1_000_000, description="DBSCAN min_samples (1: the code; no noise then)"
    )
    pfi_samples: int = Field(
        1000,
        ge=1,
        le=10_000_000,
        description="stored rows per class the permutation importance reads (1000: the code)",
    )
    pfi_repeats: int = Field(
        10,
        ge=1,
        le=10_000,
        description="shuffles per feature in the permutation importance (the code: 100; 10 [I] "
        "keeps CPU runs short: on synthetic flows the top-10 sets of 10 and of 100 shuffles "
        "share 8-10 features, as two runs of 100 do)",
    )
    hidden: int = Field(64, ge=1, le=1_000_000, description="FCN hidden width [I]")
    layers: int = Field(2, ge=0, le=1_000, description="FCN hidden layers [I]")
    embedding: int = Field(32, ge=1, le=1_000_000, description="FCN embedding width [I]")
    dropout: float = Field(0.5, ge=0, lt=1, description="FCN dropout (0.5: the code)")
    lr: float = Field(1e-3, gt=0, le=10, description="Adam learning rate [I]")
    epochs: int = Field(
        200,
        ge=1,
        le=100_000,
        description="stage-1 epochs, with early stopping [I: the code's 10 epochs left the "
        "detector below chance with 1-10% labels of 2,100 flows; 200 reach AUC 0.6-0.95]",
    )
    patience: int = Field(
        20,
        ge=1,
        le=100_000,
        description="stage-1 early-stopping patience in epochs [I: the code: 5]",
    )
    retrain_epochs: int = Field(
        10, ge=1, le=100_000, description="epochs of each stage-2 retrain (10: the code)"
    )
    retrain_patience: int = Field(
        5, ge=1, le=100_000, description="stage-2 early-stopping patience (5: the code)"
    )
    batch_size: int = Field(64, ge=1, le=10_000_000, description="stage-1 batch [I]")
    retrain_batch_size: int = Field(
        32, ge=1, le=10_000_000, description="stage-2 retrain batch, not shuffled (32: the code)"
    )
    unlabelled_batch_size: int = Field(
        256, ge=1, le=10_000_000, description="unlabelled rows per stage-2 round [I]"
    )
    holdout_fraction: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="share of each class's labelled rows held out for early stopping; at least "
        "one row per class stays for training [I]",
    )


class AnomalyAID(Interpreter):
    """Local attributions with a reliability from their agreement with the class's global
    attribution (KAM), and the two-stage semi-supervised detector training it enables (ToS)."""

    name = "anomalyaid"
    summary = (
        "AnomalyAID: DeepLIFT explanations whose reliability is their top-n agreement with the "
        "class's global permutation importance (KAM), and two-stage semi-supervised training "
        "that keeps only pseudo labels whose explanations agree (ToS)"
    )
    paper = Paper(
        title="AnomalyAID: Reliable Interpretation for Semi-supervised Network Anomaly Detection",
        authors=("Yuan", "Huang", "Wu", "Wang"),
        year=2024,
        venue="arXiv",
        arxiv_id="2411.11293",
        code_url="https://github.com/M-Code-Space/AnomalyAID",
    )
    status = "experimental"
    capabilities = Capabilities(post_hoc=True, training=True, deterministic=True)
    variants = {
        "anomalyaid-supervised": Variant(
            label="stage 1 only: the detector trained on the labelled rows",
            overrides={"training": "supervised"},
        ),
        "anomalyaid-self-training": Variant(
            label="stage 1 + softmax-confidence pseudo labels (>= 0.9), no KAM",
            overrides={"training": "self-training"},
        ),
    }
    Config = AnomalyAIDConfig

    _model: nn.Module | None = None

    # ---- fit and explain --------------------------------------------------------------------

    def fit(self, model: nn.Module, data: Any, *, runtime: Runtime) -> AnomalyAID:
        """Centroids and global importance of each class from reference data (labels; the
        model's predictions where y = -1 or where the data has no labels); returns self."""
        self._model = None
        features, head = split_parts(model, self.name)
        x, y = _read(data, model, runtime)
        classes = head.out_features
        with eval_mode(model):
            emb = embed(features, x)
            with torch.no_grad():
                predicted = head(emb).argmax(1).cpu()
            y = predicted if y is None else torch.where(y < 0, predicted, _check_labels(y, classes))
            missing = [c for c in range(classes) if not (y == c).any()]
            if missing:
                raise ValueError(
                    f"anomalyaid: class(es) {missing} have no rows in the reference data (by "
                    "label, or by the model's prediction where a row has no label); every "
                    "class needs some for its centroid and global importance"
                )
            centroids = class_centroids(emb, y.to(emb.device), classes)
            samples = [x[(y == c).to(x.device)][: self.config.pfi_samples] for c in range(classes)]
            importance = global_importance(
                features,
                centroids,
                samples,
                repeats=self.config.pfi_repeats,
                generator=runtime.generator(device="cpu"),
            )
        self._set(model, runtime, x.shape[1:], centroids, importance)
        return self

    def explain(self, x: torch.Tensor) -> Explanation:
        """DeepLIFT attributions for the predicted class, the KAM overlap as reliability."""
        if self._model is None:
            raise RuntimeError(f"{self.name}: call fit() or train_detector() before explain()")
        check_inputs(self.name, x)
        if tuple(x.shape[1:]) != self._shape:
            raise ValueError(
                f"{self.name}: inputs have shape {tuple(x.shape[1:])} per row, the data it "
                f"was fitted on {self._shape}"
            )
        inputs = self._runtime.to(x).to(self._dtype)
        attributions = torch.zeros_like(inputs)  # kept for an empty batch
        target = torch.zeros(0, dtype=torch.long, device=inputs.device)
        with eval_mode(self._model):
            parts = [self._attribute(part) for part in inputs.split(EXPLAIN_BATCH) if len(part)]
        if parts:
            attributions, target = (torch.cat(p) for p in zip(*parts))
        target = target.to(self._importance.device)
        reliability = kam_overlap(attributions, self._importance[target], self.config.top_n)
        return Explanation(
            attributions=attributions.detach().to(x.device),
            reliability=reliability.detach().float().to(x.device),
            target=target.to(x.device),
        )

    def _attribute(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(local attributions, predicted class) of a batch; the model is in eval mode."""
        with torch.no_grad():
            target = self._model(x).argmax(1)
        return local_attributions(self._model, x, target, self.config.local), target

    @property
    def centroids(self) -> torch.Tensor:
        """(classes, E): the class centroids in embedding space."""
        self._check_fitted()
        return self._centroids

    @property
    def global_importance(self) -> torch.Tensor:
        """(classes, *input shape): each class's permutation importance per input feature."""
        self._check_fitted()
        return self._importance.view(len(self._importance), *self._shape)

    # ---- training ---------------------------------------------------------------------------

    def build_model(self, in_features: int, classes: int = 2, seed: int | None = None) -> FCN:
        """A fresh FCN with this Config's sizes; its initial weights come from the global RNG,
        or from `seed` (without touching the global RNG) when given."""
        c = self.config
        sizes = {"hidden": c.hidden, "layers": c.layers, "embedding": c.embedding}
        if seed is None:
            return FCN(in_features, classes=classes, dropout=c.dropout, **sizes)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return FCN(in_features, classes=classes, dropout=c.dropout, **sizes)

    def train_detector(
        self, model: nn.Module, data: Any, *, runtime: Runtime
    ) -> tuple[nn.Module, dict[str, Any]]:
        """Two-stage training per `Config.training` on a copy of `model` (the caller's is left
        alone). `data` holds (x, y) with y = -1 for unlabelled rows. Returns (the trained model
        in eval mode, history); the interpreter is then fitted on the trained model, its final
        centroids and global importance. history: labelled, held_out, unlabelled (row indices of
        `data` in its order), cluster_labels and overlap (per unlabelled row, anomalyaid mode;
        -1 and NaN for DBSCAN noise), confidence (self-training), accepted (row indices),
        pseudo_labels, agreement_before and agreement_after (share of unlabelled rows where the
        detector's prediction equals the cluster label, after stage 1 and at the end; NaN
        without unlabelled rows), stage1_epochs, rounds."""
        self._model = None
        _, head = split_parts(model, f"{self.name}'s train_detector")
        x, y = _read(data, model, runtime)
        if y is None:
            raise ValueError(
                f"{self.name}: train_detector needs labels: pass a Dataset or DataLoader of "
                "(x, y) with y = -1 for unlabelled rows, not a bare tensor of inputs"
            )
        classes = head.out_features
        y = _check_labels(y, classes)
        labelled = y[y >= 0]
        if len(labelled) == 0:
            raise ValueError(
                f"{self.name}: no labelled rows (every y is -1); stage 1 needs labelled rows of "
                "every class"
            )
        missing = [c for c in range(classes) if not (labelled == c).any()]
        if missing:
            raise ValueError(
                f"{self.name}: class(es) {missing} missing from the labelled rows; stage 1 "
                f"needs at least one labelled row of each of the {classes} classes"
            )
        trained = runtime.to(copy.deepcopy(model))
        history, centroids, importance = two_stage(trained, x, y, self.config, runtime)
        self._set(trained, runtime, x.shape[1:], centroids, importance)
        return trained.eval(), history

    # ---- helpers ----------------------------------------------------------------------------

    def _set(self, model, runtime, shape, centroids, importance) -> None:
        self._shape = tuple(shape)
        self._dtype = _dtype(model)
        self._centroids, self._importance = centroids.detach(), importance.detach()
        self._runtime, self._model = runtime, model

    def _check_fitted(self) -> None:
        if self._model is None:
            raise RuntimeError(f"{self.name}: call fit() or train_detector() first")


def _dtype(model: nn.Module) -> torch.dtype:
    param = next(model.parameters(), None)
    return param.dtype if param is not None and param.is_floating_point() else torch.float32


def _read(
    data: Any, model: nn.Module, runtime: Runtime
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """All inputs (on the runtime's device, in the model's dtype) and labels (int64 on the CPU,
    None when the data has none)."""
    xs, ys = [], []
    for x, y in iter_batches(data):
        xs.append(x)
        ys.append(y)
    x = runtime.to(torch.cat(xs)).to(_dtype(model))
    if any(y is None for y in ys):
        return x, None
    y = torch.cat([torch.as_tensor(v).reshape(-1) for v in ys]).cpu()
    if len(y) != len(x):
        raise ValueError(f"anomalyaid: {len(y)} labels for {len(x)} inputs")
    if y.is_floating_point() and not torch.equal(y, y.round()):
        raise ValueError("anomalyaid: labels must be integer class indices, -1 for unlabelled")
    return x, y.long()


def _check_labels(y: torch.Tensor, classes: int) -> torch.Tensor:
    """y itself; a ValueError naming the labels outside -1 .. classes - 1."""
    bad = y[(y < -1) | (y >= classes)]
    if len(bad):
        raise ValueError(
            f"anomalyaid: labels must be -1 (unlabelled) or a class index 0..{classes - 1} of "
            f"the model's {classes} outputs, got {sorted(set(bad.tolist()))[:5]}"
        )
    return y
