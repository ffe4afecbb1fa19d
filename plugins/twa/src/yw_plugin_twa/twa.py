"""The TWA method class: its paper, Config and `attach`, which builds the subspace from the
checkpoints of a base run and returns the variant's TrainStep."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from yw_core.interfaces import Capabilities, MethodConfig, Paper, TrainStep, WeightOptimizer
from yw_core.runtime import Runtime
from yw_core.subspace import (
    ProjectedOptimizer,
    Projector,
    assign_,
    gram_schmidt,
    stack_checkpoints,
    validate_checkpoints,
)
from yw_core.train import TrainConfig, unwrap
from yw_plugin_twa.coefficients import CoefficientSpace
from yw_plugin_twa.steps import CoefficientStep, SpanStep, recompute_bn

NO_CHECKPOINTS = (
    "TWA needs the checkpoints of a base run: attach(..., checkpoints=[...]) with at least 2 "
    "parameter state dicts, e.g. fit(model, data, runtime=runtime, "
    "config=TrainConfig(keep_checkpoints=True)).checkpoints, then "
    "fit(..., method=TWA(), attach_kwargs={'checkpoints': checkpoints})"
)


class TWA(WeightOptimizer):
    """Trainable Weight Averaging: train only inside the span of a base run's checkpoints."""

    name = "twa"
    summary = (
        "Trainable weight averaging: trains inside the span of a base run's checkpoints, "
        "learning the averaging weights that SWA fixes to equal"
    )
    paper = Paper(
        title="Trainable Weight Averaging: Efficient Training by Optimizing Historical Solutions",
        authors=("Li", "Huang", "Tao", "Wu", "Huang"),
        year=2023,
        venue="ICLR",
        arxiv_id="2205.13104",
        code_url="https://github.com/nblt/TWA",
    )
    status = "stable"
    capabilities = Capabilities(distributed=True, training=True)

    class Config(MethodConfig):
        variant: Literal["iclr", "journal"] = Field(
            "iclr",
            description="iclr: projected SGD in the uncentred Gram-Schmidt span (fit's SGD; the "
            "paper's CIFAR run uses lr 2, wd 1e-5); journal: AdamW on per-tensor coefficients "
            "of centred, quantised directions",
        )
        start: int = Field(
            -1,
            ge=-1,
            le=1_000_000,
            description="iclr: -1 starts at the checkpoints' mean (head stage, the CIFAR run); "
            "an index starts at that checkpoint (tail stage: the last one)",
        )
        bits: int = Field(
            1, ge=1, le=8, description="journal: bits per entry of the directions (CIFAR script)"
        )
        coef_lr: float = Field(
            1e-3, gt=0, le=10, description="journal: AdamW lr on the coefficients (CIFAR script)"
        )
        coef_weight_decay: float = Field(
            0.0, ge=0, le=1, description="journal: AdamW weight decay (CIFAR script)"
        )
        coef_warmup: float = Field(
            0.2,
            ge=0,
            lt=1,
            description="journal: fraction of updates of linear warm-up before "
            "the cosine decay of coef_lr",
        )
        head: float = Field(
            0.5,
            gt=0,
            le=1,
            description="when a host runs the base run (bench weight-optimizer): TWA trains from "
            "the checkpoints of this fraction of its epochs (the head stage)",
        )
        epochs_fraction: float = Field(
            0.05,
            gt=0,
            le=10,
            description="TWA's own epochs as a fraction of the base run's (0.05: the paper's 10 "
            "of 200 on CIFAR)",
        )
        lr: float = Field(
            2.0, gt=0, le=100, description="iclr: projected-SGD lr (2: the paper's CIFAR run)"
        )
        weight_decay: float = Field(
            1e-5, ge=0, le=1, description="iclr: SGD weight decay (1e-5: the paper's CIFAR run)"
        )

    def base_run(self) -> float:
        """TWA trains from a base run's checkpoints: those of the first `head` of its epochs."""
        return self.config.head

    def train_config(self, base: TrainConfig, *, runtime: Runtime) -> TrainConfig:
        """The paper's TWA recipe from the base run's: `epochs_fraction` of its epochs, the
        paper's lr and weight decay, step decay (x0.1 at 1/2 and 3/4)."""
        return TrainConfig(
            **{
                **base.model_dump(),
                "epochs": max(1, round(base.epochs * self.config.epochs_fraction)),
                "lr": self.config.lr,
                "weight_decay": self.config.weight_decay,
                "schedule": "step",
                "keep_checkpoints": False,
            }
        )

    def attach(
        self,
        model: nn.Module,
        base_optimizer: torch.optim.Optimizer,
        *,
        runtime: Runtime,
        checkpoints: list[dict[str, torch.Tensor]] | None = None,
        bn_data: Any = None,
    ) -> TrainStep:
        """Put the model at the start point (and recompute BN on `bn_data`) and return the step.

        `checkpoints`: >= 2 parameter state dicts of this architecture (full state dicts are
        accepted; BN buffers are ignored), e.g. `TrainResult.checkpoints` of a base run with
        `TrainConfig(keep_checkpoints=True)`. Under torchrun every rank passes the same ones.
        """
        if checkpoints is None:
            raise ValueError(NO_CHECKPOINTS)
        config = self.config
        inner = unwrap(model)
        checkpoints = validate_checkpoints(checkpoints, inner)
        params = [p for _, p in inner.named_parameters()]
        device, dtype = params[0].device, params[0].dtype
        shard = (runtime.rank, runtime.world_size) if runtime.is_distributed else None
        if config.variant == "iclr":
            if config.start >= len(checkpoints):
                raise ValueError(
                    f"start {config.start} is not a checkpoint index: got {len(checkpoints)} "
                    f"checkpoints (use -1 for their mean, or 0..{len(checkpoints) - 1})"
                )
            rows = stack_checkpoints(checkpoints, device=device, dtype=dtype)
            assign_(params, rows.mean(0) if config.start == -1 else rows[config.start])
            projector = Projector(gram_schmidt(rows), shard=shard)
            del rows
            step = SpanStep(
                model,
                base_optimizer,
                runtime,
                ProjectedOptimizer(base_optimizer, projector, params),
            )
        else:
            if config.start != -1:
                raise ValueError(
                    "start applies to the iclr variant only; the journal variant starts at the "
                    "checkpoints' mean (coefficients 0)"
                )
            space = CoefficientSpace(
                checkpoints, bits=config.bits, device=device, dtype=dtype, shard=shard
            )
            assign_(params, space.weights())
            step = CoefficientStep(
                model,
                base_optimizer,
                runtime,
                space,
                params,
                lr=config.coef_lr,
                weight_decay=config.coef_weight_decay,
                warmup=config.coef_warmup,
            )
        if bn_data is not None:
            recompute_bn(inner, bn_data)
        return step
