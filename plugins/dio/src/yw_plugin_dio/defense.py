"""The DIO defense: train a shared backbone with L orthogonal paths; answer through a random one."""

from __future__ import annotations

import copy
from typing import Any

import torch
from pydantic import Field, field_validator
from torch import nn
from torch.utils.data import TensorDataset

from yw_core.adversarial import pgd_accuracy
from yw_core.interfaces import Capabilities, Defense, MethodConfig, Paper, Variant
from yw_core.models import eval_mode
from yw_core.train import TrainConfig, fit
from yw_plugin_dio.heads import OrthoHeads
from yw_plugin_dio.losses import Base, DIOLoss
from yw_plugin_dio.model import DIONet


class DIO(Defense):
    """Diversity via Orthogonality: L mutually orthogonal linear paths on one backbone, trained
    with L_c + alpha L_o + beta L_d, and a random path per query at inference."""

    name = "dio"
    summary = (
        "Trains L orthogonal linear heads (paths) with a margin loss on a shared backbone, "
        "with AT or TRADES; each query goes through a random path"
    )
    paper = Paper(
        title="Towards Robust Neural Networks via Orthogonal Diversity",
        authors=("Fang", "Tao", "Wu", "Li", "Cai", "Cai", "Huang", "Yang"),
        year=2024,
        venue="Pattern Recognition",
        arxiv_id="2010.12190",
        code_url="https://github.com/fanghenshaometeor/DIversity-via-Orthogonality",
    )
    status = "experimental"
    capabilities = Capabilities(training=True, post_hoc=False, deterministic=True, randomized=True)
    variants = {
        "dio-single": Variant(
            label="DIO's recipe with one head and alpha = beta = 0 (the single-head model DIO "
            "is compared to)",
            overrides={"num_paths": 1, "alpha": 0.0, "beta": 0.0},
        )
    }

    class Config(MethodConfig):
        base: Base = Field(
            "at",
            description="what DIO is added to: 'ce' (clean training), 'at' (PGD-AT against "
            "the random-path model) or 'trades' (TRADES averaged over paths); 'at' is the "
            "robust setting the bench evaluates",
        )
        num_paths: int = Field(
            10,
            ge=1,
            le=1000,
            description="L, the number of paths (10; the code uses 40 for vanilla CIFAR-100); "
            "1 with alpha = beta = 0 is the single-head model trained the same way",
        )
        alpha: float = Field(
            0.1,
            ge=0,
            le=100,
            description="weight of the orthogonality loss L_o (0.1, every reference run)",
        )
        beta: float = Field(
            0.1,
            ge=0,
            le=100,
            description="weight of the margin loss L_d (0.1, every reference run)",
        )
        tau: float = Field(
            0.2,
            ge=0,
            le=100,
            description="margin bound of L_d (0.2 for PreActResNet-18 on CIFAR-10; the code "
            "uses 0.5 for WRN-34-10 AT and 0.01-0.2 elsewhere)",
        )
        eps: float = Field(
            8 / 255,
            gt=0,
            le=1,
            description="L-inf radius of the training attack (8/255, the reference scripts)",
        )
        step_ratio: float = Field(
            0.25,
            gt=0,
            le=10,
            description="step of the training (and validation) PGD as a multiple of eps "
            "(0.25: 2/255 at 8/255, the reference scripts)",
        )
        pgd_steps: int = Field(
            10, ge=1, le=1000, description="steps of the training attack (PGD-10)"
        )
        trades_beta: float = Field(
            6.0,
            ge=0,
            le=100,
            description="TRADES' KL weight, base 'trades' only (6, the TRADES+DIO script)",
        )
        epochs: int = Field(
            100,
            ge=1,
            le=100_000,
            description="training epochs (100: the TRADES+DIO and WRN-34-10 AT runs)",
        )
        batch_size: int = Field(128, ge=1, le=1_000_000, description="mini-batch size (128)")
        lr: float = Field(0.1, gt=0, le=10, description="SGD learning rate (0.1, step schedule)")
        momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (0.9)")
        weight_decay: float = Field(5e-4, ge=0, le=1, description="SGD weight decay (5e-4)")
        milestones: tuple[float, ...] = Field(
            (0.75, 0.9),
            description="fractions of training where lr is multiplied by 0.1 (epochs 75 and 90 "
            "of 100)",
        )
        val_fraction: float = Field(
            0.0,
            ge=0,
            lt=1,
            description="held-out fraction of `data` for per-epoch validation (clean and "
            "PGD-val_pgd_steps accuracy); 0 trains on all of it",
        )
        val_pgd_steps: int = Field(
            20, ge=1, le=1000, description="steps of the validation PGD (eps, step_ratio)"
        )
        progress: bool = Field(True, description="show a progress bar while training")

        @field_validator("milestones")
        @classmethod
        def _fractions(cls, value):
            if any(not 0 < m < 1 for m in value) or list(value) != sorted(value):
                raise ValueError(f"milestones must be increasing fractions in (0, 1), got {value}")
            return value

    def protect(self, model: nn.Module, *, data: Any = None, runtime) -> nn.Module:
        """Train a copy of `model.features` with L new orthogonal paths in place of `model.head`
        on `data`; return the DIONet (eval mode, random path per call). `model` is untouched.
        Sets `self.history`, one row per epoch."""
        c = self.config
        head = _check_model(model)
        train, val = _split(_check_data(data, head.out_features), c.val_fraction, runtime.seed)
        init = runtime.generator(device="cpu")
        heads = OrthoHeads(head.in_features, head.out_features, c.num_paths, generator=init)
        net = runtime.to(DIONet(copy.deepcopy(model.features), heads, seed=runtime.seed))
        _check_embedding(net, train, head.in_features, runtime)

        attack_generator = runtime.generator()
        loss_fn = DIOLoss(
            base=c.base,
            alpha=c.alpha,
            beta=c.beta,
            tau=c.tau,
            eps=c.eps,
            step=c.step_ratio * c.eps,
            steps=c.pgd_steps,
            trades_beta=c.trades_beta,
            generator=attack_generator,
        )

        def on_epoch_end(row: dict) -> None:
            row.update(loss_fn.epoch_means())
            if net.heads.num_paths > 1:
                cos = net.heads.pairwise_cosine()
                pairs = cos[torch.triu_indices(*cos.shape, 1).unbind()]
                row["mean_abs_cos"] = float(pairs.mean())
            if val is not None:
                row.update(self._validate(net, val, runtime, attack_generator))

        config = TrainConfig(
            epochs=c.epochs,
            batch_size=c.batch_size,
            lr=c.lr,
            momentum=c.momentum,
            weight_decay=c.weight_decay,
            schedule="step",
            milestones=c.milestones,
            gamma=0.1,
            progress=c.progress,
        )
        result = fit(
            net, train, runtime=runtime, config=config, loss_fn=loss_fn, on_epoch_end=on_epoch_end
        )
        self.history = result.history
        net.generator.manual_seed(runtime.seed)  # inference draws start afresh, whatever val used
        net.last_path = None
        return net.eval()

    def _validate(self, net, val, runtime, generator) -> dict[str, float]:
        """Clean and PGD accuracy of the random-path model on the held-out split."""
        x, y = runtime.to(val.tensors[0]), runtime.to(val.tensors[1])
        with torch.no_grad(), eval_mode(net):
            clean = float((net(x).argmax(1) == y).float().mean())
        robust = pgd_accuracy(
            net,
            x,
            y,
            eps=self.config.eps,
            step=self.config.step_ratio * self.config.eps,
            steps=self.config.val_pgd_steps,
            generator=generator,
        )
        return {"val_clean_acc": clean, "val_pgd_acc": robust}


def _check_model(model: nn.Module) -> nn.Linear:
    """The model's linear head; a ValueError naming `.features`/`.head` if it has no such split."""
    features, head = getattr(model, "features", None), getattr(model, "head", None)
    if not isinstance(features, nn.Module) or not isinstance(head, nn.Linear):
        raise ValueError(
            f"DIO needs a classifier split into `.features` (input -> flat embedding, an "
            f"nn.Module) and `.head` (an nn.Linear), as yw_core.models.SplitClassifier; "
            f"{type(model).__name__} has features={type(features).__name__}, "
            f"head={type(head).__name__}"
        )
    return head


def _check_data(data: Any, num_classes: int) -> TensorDataset:
    """`data` as DIO trains on it: a TensorDataset of x in [0, 1] and labels < num_classes."""
    if data is None:
        raise ValueError(
            "DIO is a training-time defense: protect() needs data=TensorDataset(x, y) with "
            "x in [0, 1] and integer labels"
        )
    if not isinstance(data, TensorDataset) or len(data.tensors) < 2:
        raise ValueError(f"data must be a TensorDataset of (x, y), got {type(data).__name__}")
    x, y = data.tensors[0], data.tensors[1]
    if len(x) < 2:
        raise ValueError(f"data must hold at least 2 samples, got {len(x)}")
    if not x.is_floating_point() or x.min() < 0 or x.max() > 1:
        raise ValueError("data's inputs must be floats in [0, 1] (normalise inside the model)")
    if y.dim() != 1 or y.is_floating_point() or y.min() < 0 or y.max() >= num_classes:
        raise ValueError(
            f"data's labels must be integers in [0, {num_classes}) (the head's out_features), "
            f"got shape {tuple(y.shape)} and range [{y.min().item()}, {y.max().item()}]"
        )
    return data


def _split(data: TensorDataset, fraction: float, seed: int):
    """A seeded (train, val) split; val is None when fraction is 0."""
    if fraction == 0:
        return data, None
    n = len(data)
    n_val = round(fraction * n)
    if not 0 < n_val < n:
        raise ValueError(f"val_fraction {fraction} of {n} samples leaves an empty split")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    return TensorDataset(*(t[train] for t in data.tensors)), TensorDataset(
        *(t[val] for t in data.tensors)
    )


def _check_embedding(net: DIONet, data: TensorDataset, width: int, runtime) -> None:
    """`features` must map a batch to (N, d), d the head's in_features."""
    x = runtime.to(data.tensors[0][:2])
    with torch.no_grad(), eval_mode(net):
        e = net.features(x)
    if e.shape != (len(x), width):
        raise ValueError(
            f"DIO needs model.features(x) to return flat embeddings (N, {width}), {width} being "
            f"the head's in_features; got {tuple(e.shape)} for input {tuple(x.shape)}"
        )
