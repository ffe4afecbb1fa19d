"""The SOME defense: its paper, Config (the reference's CIFAR-10 runs) and `protect`, which
builds the multi-head network and trains it with `yw_core.train.fit`."""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from yw_core.interfaces import Capabilities, Defense, MethodConfig, Paper
from yw_core.models import eval_mode
from yw_core.runtime import Runtime
from yw_core.train import TrainConfig, fit, unwrap
from yw_plugin_some.heads import MultiHeadClassifier, build_multihead, check_split
from yw_plugin_some.loss import (
    circular_ce,
    consistency_term,
    cosine_penalty,
    smoothed_losses,
    threshold,
)
from yw_plugin_some.smoothmix import noisy_logits, smoothmix_pair, smoothmix_term

# The reference's values by variant and sigma (its EXPERIMENTS.md, CIFAR-10, ResNet-110).
LAMBDA_LAST = {
    "gaussian": {0.25: 1.2, 0.5: 0.8, 1.0: 0.8},
    "consistency": {0.25: 1.0, 0.5: 0.8, 1.0: 1.0},
    "smoothmix": {0.25: 1.6, 0.5: 1.0, 1.0: 1.6},
}
CONSISTENCY_LAMBDA = {0.25: 20.0, 0.5: 10.0, 1.0: 10.0}
SMOOTHMIX_ALPHA = {0.25: 0.5, 0.5: 1.0, 1.0: 2.0}
SMOOTHMIX_MIX_STEP = {0.25: 0, 0.5: 1, 1.0: 1}


def paper_value(table: dict[float, Any], sigma: float) -> Any:
    """The reference's value at the sigma of {0.25, 0.5, 1} nearest to `sigma` (in log scale)."""
    return table[min(table, key=lambda s: abs(math.log(s / sigma)))]


class SOME(Defense):
    """SOME: a multi-head ensemble of smoothed classifiers on one trunk, trained with circular
    self-paced teaching and a cosine constraint, certified on the sum of the heads' logits."""

    name = "some"
    summary = (
        "Multi-head ensemble of smoothed classifiers: H heads on one trunk trained under Gaussian "
        "noise with circular self-paced teaching and a cosine constraint; certify their sum"
    )
    paper = Paper(
        title="Multi-head Ensemble of Smoothed Classifiers for Certified Robustness",
        authors=("Fang", "Tao", "Wu", "Li", "Huang", "Yang"),
        year=2025,
        venue="Neural Networks",
        arxiv_id="2211.10882",
        code_url="https://github.com/fanghenshaometeor/smoothed-multihead-ensemble",
    )
    status = "experimental"
    capabilities = Capabilities(training=True, certified=True)
    bench_fields = {"head_layers": "private_layers"}  # a protocol's trunk layers per head

    class Config(MethodConfig):
        variant: Literal["gaussian", "consistency", "smoothmix"] = Field(
            "gaussian",
            description="base training of each head: Gaussian augmentation (Cohen et al.), plus "
            "Consistency regularisation (Jeong & Shin 2020), or plus SmoothMix (Jeong et al. 2021)",
        )
        sigma: float = Field(
            0.25,
            gt=0,
            le=10,
            description="std of the Gaussian noise on [0, 1] inputs (paper: "
            "0.25, 0.5, 1); certify with the same sigma",
        )
        heads: int = Field(5, ge=1, le=64, description="number of heads H (reference: 5)")
        noise_copies: int = Field(
            2,
            ge=1,
            le=64,
            description="noise draws m per input; each step takes batch_size "
            "// m inputs, each with m noisy copies (reference: 2)",
        )
        lambda_last: float | None = Field(
            None,
            gt=0,
            le=20,
            description="self-paced threshold at the last epoch (it starts "
            "at ln C); None: the reference's for the variant and sigma (gaussian 1.2/0.8/0.8, "
            "consistency 1.0/0.8/1.0, smoothmix 1.6/1.0/1.6 at sigma 0.25/0.5/1)",
        )
        cosine_weight: float = Field(
            1.0,
            ge=0,
            le=1000,
            description="weight of the cosine constraint between the heads' "
            "parameter vectors (paper: 1)",
        )
        private_layers: int = Field(
            0,
            ge=0,
            le=1000,
            description="trailing modules of .features (an nn.Sequential) "
            "copied into every head; 0: each head is a copy of .head only (the paper's heads "
            "are the last ResNet stage plus the FC layer)",
        )
        consistency_lambda: float | None = Field(
            None,
            ge=0,
            le=1000,
            description="consistency: weight of the KL term; None: 20 at "
            "sigma 0.25, else 10 (the reference's)",
        )
        consistency_eta: float = Field(
            0.5, ge=0, le=1000, description="consistency: weight of the entropy term (0.5)"
        )
        smoothmix_steps: int = Field(
            4, ge=1, le=1000, description="smoothmix: steps T of the adversarial search (4)"
        )
        smoothmix_alpha: float | None = Field(
            None,
            gt=0,
            le=100,
            description="smoothmix: L2 step size of the search; None: "
            "0.5 / 1.0 / 2.0 at sigma 0.25 / 0.5 / 1 (the reference's)",
        )
        smoothmix_mix_step: int | None = Field(
            None,
            ge=0,
            le=1000,
            description="smoothmix: 0 mixes from the clean input, k from "
            "the k-step adversary; None: 0 at sigma 0.25, else 1 (the reference's)",
        )
        smoothmix_eta: float = Field(
            5.0, ge=0, le=1000, description="smoothmix: weight of the mixup KL term (5)"
        )
        smoothmix_warmup: int = Field(
            10,
            ge=1,
            le=100_000,
            description="smoothmix: epochs over which the KL weight and "
            "the one-step adversary's radius ramp up linearly (10)",
        )
        epochs: int = Field(150, ge=1, le=100_000, description="training epochs (reference: 150)")
        batch_size: int = Field(
            256,
            ge=1,
            le=1_000_000,
            description="inputs loaded per m steps: each step trains "
            "on batch_size // m of them, m noisy copies each (reference: 256)",
        )
        lr: float = Field(0.1, gt=0, le=10, description="SGD learning rate (reference: 0.1)")
        momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (reference: 0.9)")
        weight_decay: float = Field(
            1e-4, ge=0, le=1, description="SGD weight decay (reference: 1e-4)"
        )
        lr_milestones: tuple[float, ...] = Field(
            (1 / 3, 2 / 3),
            description="fractions of training where the lr is multiplied by "
            "lr_gamma (reference: StepLR(50) over 150 epochs)",
        )
        lr_gamma: float = Field(0.1, gt=0, le=1, description="lr factor per milestone (0.1)")
        progress: bool = Field(True, description="show a progress bar while training")

    def resolved(self) -> dict[str, Any]:
        """The values used for the fields left to None (the reference's at this sigma)."""
        c = self.config

        def pick(value, table):
            return paper_value(table, c.sigma) if value is None else value

        return {
            "lambda_last": pick(c.lambda_last, LAMBDA_LAST[c.variant]),
            "consistency_lambda": pick(c.consistency_lambda, CONSISTENCY_LAMBDA),
            "smoothmix_alpha": pick(c.smoothmix_alpha, SMOOTHMIX_ALPHA),
            "smoothmix_mix_step": pick(c.smoothmix_mix_step, SMOOTHMIX_MIX_STEP),
        }

    def protect(self, model: nn.Module, *, data: Any = None, runtime: Runtime) -> nn.Module:
        """Train a MultiHeadClassifier built from `model` on `data` and return it in eval mode.

        `model` must have `.features` and `.head` (it is copied, not changed): the trunk is its
        features, and every head a freshly initialised copy of its head. `data` is a dataset of
        (x in [0, 1], y). `self.history` gets one row per epoch (`fit`'s, plus the threshold
        `lambda` and the cosine constraint `head_cos2` at the epoch's end).
        """
        c = self.config
        if data is None:
            raise ValueError(
                "SOME is a training-time defense: pass the training data, e.g. "
                "protect(model, data=TensorDataset(x, y), runtime=runtime) with x in [0, 1]"
            )
        if runtime.is_distributed:
            raise ValueError("SOME does not run under torchrun yet: train in one process")
        if c.batch_size < c.noise_copies:
            raise ValueError(
                f"batch_size ({c.batch_size}) must be at least noise_copies ({c.noise_copies}): "
                "each step takes batch_size // noise_copies inputs"
            )
        num_classes = _check_data(data, model)
        net = build_multihead(model, c.heads, private_layers=c.private_layers, seed=runtime.seed)
        generator = runtime.generator(seed=runtime.seed, device=runtime.device)
        objective = Objective(self, net, num_classes, generator)
        train = TrainConfig(
            epochs=c.epochs,
            batch_size=c.batch_size // c.noise_copies,
            lr=c.lr,
            momentum=c.momentum,
            weight_decay=c.weight_decay,
            schedule="step",
            milestones=c.lr_milestones,
            gamma=c.lr_gamma,
            progress=c.progress,
        )
        result = fit(
            net,
            data,
            runtime=runtime,
            config=train,
            loss_fn=objective,
            on_epoch_end=objective.epoch_done,
        )
        self.history = result.history
        return result.model.eval()


class Objective:
    """`fit`'s loss_fn for SOME: one step's loss at the current epoch's threshold."""

    def __init__(
        self,
        method: SOME,
        net: MultiHeadClassifier,
        num_classes: int,
        generator: torch.Generator,
    ):
        self.config = method.config
        self.net = net
        self.values = method.resolved()
        self.num_classes = num_classes
        self.generator = generator
        self.epoch = 1
        self.lam = threshold(1, self.config.epochs, num_classes, self.values["lambda_last"])

    def __call__(self, model: nn.Module, batch) -> torch.Tensor:
        c, net = self.config, unwrap(model)
        x, y = batch[0], batch[1]
        noises = c.sigma * torch.randn(
            (c.noise_copies, *x.shape), generator=self.generator, device=x.device, dtype=x.dtype
        )
        warm = min(1.0, self.epoch / c.smoothmix_warmup)
        if c.variant == "smoothmix":
            mix_step = self.values["smoothmix_mix_step"]
            x, x_adv = smoothmix_pair(
                net,
                x,
                y,
                noises,
                steps=c.smoothmix_steps,
                alpha=self.values["smoothmix_alpha"],
                mix_step=mix_step,
                max_norm_start=warm * self.values["smoothmix_alpha"] * mix_step,
            )
        logits = noisy_logits(net, x, noises)  # (H, m, N, C)
        loss, weights = circular_ce(smoothed_losses(logits, y), self.lam)
        if c.cosine_weight and net.num_heads > 1:
            loss = loss + c.cosine_weight * cosine_penalty(net.head.members)
        if c.variant == "consistency":
            lam_c = self.values["consistency_lambda"]
            loss = loss + consistency_term(logits, weights, lam_c, c.consistency_eta)
        elif c.variant == "smoothmix":
            clean = logits.softmax(-1).mean(dim=(0, 1))  # heads' mean smoothed softmax (N, C)
            mix = smoothmix_term(net, x, x_adv, noises, clean, weights, self.generator)
            loss = loss + c.smoothmix_eta * warm * mix
        return loss

    def epoch_done(self, row: dict[str, Any]) -> None:
        """Record the epoch's threshold and cosine constraint, then move to the next epoch."""
        row["lambda"] = self.lam
        with torch.no_grad():
            row["head_cos2"] = float(cosine_penalty(self.net.head.members))
        self.epoch = min(self.epoch + 1, self.config.epochs)
        self.lam = threshold(
            self.epoch, self.config.epochs, self.num_classes, self.values["lambda_last"]
        )


def _check_data(data: Any, model: nn.Module) -> int:
    """The number of classes (read off the model's output); ValueErrors for unusable data."""
    check_split(model)
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__") or len(data) == 0:
        raise ValueError("data must be a non-empty dataset of (x, y) pairs, e.g. a TensorDataset")
    item = data[0]
    if not isinstance(item, (tuple, list)) or len(item) < 2 or not torch.is_tensor(item[0]):
        raise ValueError("data must yield (x, y) pairs with x a tensor, e.g. a TensorDataset")
    tensors = getattr(data, "tensors", None)
    xs = tensors[0] if tensors else item[0]
    if not xs.is_floating_point() or xs.min() < 0 or xs.max() > 1:
        raise ValueError("data's inputs must be floating-point in [0, 1] (noise is added there)")
    device = next(model.parameters(), torch.empty(0)).device
    with torch.no_grad(), eval_mode(model):
        num_classes = int(model.head(model.features(item[0].unsqueeze(0).to(device))).shape[-1])
    if tensors and len(tensors) > 1 and int(tensors[1].max()) >= num_classes:
        raise ValueError(
            f"data has label {int(tensors[1].max())} but the model has {num_classes} classes"
        )
    return num_classes
