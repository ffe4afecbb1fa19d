"""Adversarial training baselines: Fast-AT (FGSM-RS, Wong et al. 2020) and PGD-AT (Madry et al.
2018), with the validation split and per-epoch PGD-20 curve that Sub-AT also uses.

Each update trains on the cross-entropy of an adversarial batch built from the clean one
(`yw_core.adversarial`), through `yw_core.train.fit`. The attack runs in whatever mode the model
is in during training (train mode: BN uses and updates batch statistics, as in the references).
Before training, `val_fraction` of the data is held out (the papers' 45k/5k CIFAR-10 split); after
every epoch the clean and PGD-20 accuracy on it go into the epoch's history row, and `select`
returns the last model or the one with the best validation PGD accuracy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn
from torch.utils.data import TensorDataset

from yw_core.adversarial import fgsm_rs, pgd, pgd_accuracy
from yw_core.interfaces import Capabilities, Defense, MethodConfig, Paper
from yw_core.runtime import Runtime
from yw_core.train import TrainConfig, evaluate, fit

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
VAL_SEED_OFFSET = 1  # the validation attack's generator is seeded with runtime.seed + this


def check_training_inputs(model: nn.Module, data: Any, name: str) -> None:
    """Clear ValueErrors for what a training-time defense cannot train on."""
    if data is None:
        raise ValueError(
            f"{name} trains the model: pass data=TensorDataset(x, y) with x in [0, 1] "
            "(the training split)"
        )
    if not isinstance(data, TensorDataset) or len(data.tensors) < 2:
        raise ValueError(
            f"{name} needs data as a torch.utils.data.TensorDataset of (x, y), got "
            f"{type(data).__name__}"
        )
    x, y = data.tensors[0], data.tensors[1]
    if len(x) < 2:
        raise ValueError(f"{name} needs at least 2 training samples, got {len(x)}")
    if not x.is_floating_point() or torch.isnan(x).any() or x.min() < 0 or x.max() > 1:
        raise ValueError(
            f"{name}: data's inputs must be floats in [0, 1] without NaN "
            "(normalisation belongs inside the model)"
        )
    if y.dim() != 1 or y.is_floating_point():
        raise ValueError(f"{name}: data's labels must be a 1-D integer tensor, got {y.dtype}")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"{name}: the model has no trainable parameters (requires_grad=True)")


def split_validation(
    data: TensorDataset, fraction: float, seed: int
) -> tuple[TensorDataset, TensorDataset | None]:
    """(train, val): a seeded random `fraction` of the samples held out (None when 0)."""
    if fraction == 0:
        return data, None
    n = len(data)
    n_val = max(1, round(fraction * n))
    if n_val >= n:
        raise ValueError(
            f"val_fraction {fraction} of {n} samples leaves no training data; use a smaller "
            "val_fraction or more data"
        )
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    return (
        TensorDataset(*(t[train] for t in data.tensors)),
        TensorDataset(*(t[val] for t in data.tensors)),
    )


class RobustValidator:
    """`fit`'s epoch callback: clean and PGD accuracy on the validation split into the epoch's
    row (`val_clean_acc`, `val_pgd_acc`), and a copy of the weights with the best PGD accuracy.

    The PGD random starts are the same every epoch (a fresh generator per call), so the curve
    moves only because the model does.
    """

    def __init__(
        self,
        model: nn.Module,
        val: TensorDataset,
        *,
        eps: float,
        step: float,
        steps: int,
        runtime: Runtime,
    ):
        self.model = model
        self.val = val
        self.x, self.y = runtime.to(val.tensors[0]), runtime.to(val.tensors[1])
        self.eps, self.step, self.steps = eps, step, steps
        self.runtime = runtime
        self.best_acc = -1.0
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def __call__(self, row: dict[str, Any]) -> None:
        """Add the validation accuracies to `row`; keep the weights if PGD accuracy improved."""
        generator = self.runtime.generator(self.runtime.seed + VAL_SEED_OFFSET)
        acc = pgd_accuracy(
            self.model,
            self.x,
            self.y,
            eps=self.eps,
            step=self.step,
            steps=self.steps,
            generator=generator,
        )
        row["val_pgd_acc"] = acc
        row["val_clean_acc"] = evaluate(self.model, self.val, runtime=self.runtime)["test_acc"]
        if acc > self.best_acc:  # strict: ties keep the earlier epoch
            self.best_acc, self.best_epoch = acc, row["epoch"]
            self.best_state = copy.deepcopy(self.model.state_dict())


def adversarial_loss(attack: Attack) -> Callable[[nn.Module, Any], torch.Tensor]:
    """A `fit` loss_fn: cross-entropy of the model on attack(model, x, y) instead of x."""

    def loss_fn(model: nn.Module, batch) -> torch.Tensor:
        x, y = batch[0], batch[1]
        return F.cross_entropy(model(attack(model, x, y)), y)

    return loss_fn


class ATConfig(MethodConfig):
    """What both baselines share: the radius, the SGD run and the validation."""

    eps: float = Field(
        8 / 255, gt=0, le=1, description="L-inf radius of training and validation (8/255: CIFAR)"
    )
    epochs: int = Field(
        65, ge=1, le=100_000, description="epochs (65: Sub-AT's Fast-AT sampling run)"
    )
    batch_size: int = Field(128, ge=1, le=1_000_000, description="mini-batch size (Sub-AT's)")
    lr: float = Field(
        0.1,
        gt=0,
        le=10,
        description="constant SGD lr (Sub-AT's sampling stage: its step schedule at epochs 100 "
        "and 150 never fires)",
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (Sub-AT's)")
    weight_decay: float = Field(
        5e-4, ge=0, le=1, description="SGD weight decay (Sub-AT's recommended value)"
    )
    val_fraction: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="fraction of data held out for validation each epoch (0.1: CIFAR-10's "
        "45k/5k split); 0: no validation",
    )
    val_steps: int = Field(
        20, ge=1, le=10_000, description="PGD steps of the validation attack (PGD-20)"
    )
    val_step_ratio: float = Field(
        0.25, gt=0, le=10, description="validation PGD step / eps (2/255 at 8/255)"
    )
    select: Literal["last", "best"] = Field(
        "last",
        description="return the last model, or the epoch's with the best validation PGD accuracy",
    )
    progress: bool = Field(True, description="show a progress bar while training")

    @model_validator(mode="after")
    def _best_needs_validation(self):
        if self.select == "best" and self.val_fraction == 0:
            raise ValueError("select='best' needs validation data: set val_fraction > 0")
        return self


class AdversarialTraining(Defense):
    """What Fast-AT and PGD-AT share: `protect` runs `fit` on the adversarial loss with
    validation; subclasses give the training attack."""

    status = "baseline"
    capabilities = Capabilities(training=True)
    Config = ATConfig

    def attack(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, generator: torch.Generator
    ) -> torch.Tensor:
        """The training batch's adversarial examples (in [0, 1], within eps of x)."""
        raise NotImplementedError

    def train_config(self) -> TrainConfig:
        """`fit`'s settings: this Config's SGD run at a constant lr."""
        c = self.config
        return TrainConfig(
            epochs=c.epochs,
            batch_size=c.batch_size,
            lr=c.lr,
            momentum=c.momentum,
            weight_decay=c.weight_decay,
            schedule="constant",
            progress=c.progress,
        )

    def protect(self, model: nn.Module, *, data: Any = None, runtime: Runtime) -> nn.Module:
        """Train a copy of `model` adversarially on `data` and return it in eval mode; the input
        model is left unchanged.

        Sets `self.history` (one row per epoch: epoch, train_loss, seconds, lr, and val_pgd_acc /
        val_clean_acc with validation), `self.selected_epoch` and `self.train_seconds`."""
        c = self.config
        check_training_inputs(model, data, self.name)
        train, val = split_validation(data, c.val_fraction, runtime.seed)
        model = runtime.to(copy.deepcopy(model))
        generator = runtime.generator()

        def attack(m, x, y):
            return self.attack(m, x, y, generator=generator)

        validator = None
        if val is not None:
            validator = RobustValidator(
                model,
                val,
                eps=c.eps,
                step=c.val_step_ratio * c.eps,
                steps=c.val_steps,
                runtime=runtime,
            )
        result = fit(
            model,
            train,
            runtime=runtime,
            config=self.train_config(),
            loss_fn=adversarial_loss(attack),
            on_epoch_end=validator,
        )
        self.selected_epoch = c.epochs
        if c.select == "best":
            model.load_state_dict(validator.best_state)
            self.selected_epoch = validator.best_epoch
        self.history = result.history
        self.train_seconds = result.train_seconds
        return model.eval()


class FastAT(AdversarialTraining):
    """Fast-AT: adversarial training on FGSM from a random start (FGSM-RS), one step per batch."""

    name = "fast-at"
    summary = "Fast-AT: adversarial training on single-step FGSM from a random start (FGSM-RS)"
    paper = Paper(
        title="Fast is better than free: Revisiting adversarial training",
        authors=("Wong", "Rice", "Kolter"),
        year=2020,
        venue="ICLR",
        arxiv_id="2001.03994",
        code_url="https://github.com/locuslab/fast_adversarial",
    )

    class Config(ATConfig):
        step_ratio: float = Field(
            1.25, gt=0, le=10, description="FGSM step / eps (1.25: 10/255 at 8/255, Wong et al.)"
        )

    def attack(self, model, x, y, *, generator):
        """FGSM-RS: uniform start in the eps-ball, one signed step of step_ratio * eps."""
        c = self.config
        return fgsm_rs(model, x, y, eps=c.eps, step=c.step_ratio * c.eps, generator=generator)


class PGDAT(AdversarialTraining):
    """PGD-AT: adversarial training on multi-step PGD from a random start (Madry et al.)."""

    name = "pgd-at"
    summary = "PGD-AT: adversarial training on PGD-10 from a random start (Madry et al.)"
    paper = Paper(
        title="Towards Deep Learning Models Resistant to Adversarial Attacks",
        authors=("Madry", "Makelov", "Schmidt", "Tsipras", "Vladu"),
        year=2018,
        venue="ICLR",
        arxiv_id="1706.06083",
        code_url="https://github.com/MadryLab/cifar10_challenge",
    )

    class Config(ATConfig):
        epochs: int = Field(
            100, ge=1, le=100_000, description="epochs (100: Sub-AT's PGD-AT sampling run)"
        )
        steps: int = Field(10, ge=1, le=10_000, description="PGD steps per batch (PGD-10)")
        step_ratio: float = Field(
            0.25, gt=0, le=10, description="PGD step / eps (0.25: 2/255 at 8/255)"
        )

    def attack(self, model, x, y, *, generator):
        """PGD: uniform start in the eps-ball, `steps` signed steps of step_ratio * eps."""
        c = self.config
        step = c.step_ratio * c.eps
        return pgd(model, x, y, eps=c.eps, step=step, steps=c.steps, generator=generator)
