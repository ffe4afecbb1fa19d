"""SWA (Izmailov et al., UAI 2018): average the weights SGD visits at a constant learning rate.

Training is plain SGD on `fit`'s schedule until a fraction `start` of the updates is done; from
then on every update uses the constant `swa_lr`, and the weights at the end of each epoch are
averaged (equal weights, `torch.optim.swa_utils.AveragedModel`). `finalize` loads the average
into the model and recomputes BatchNorm statistics over the training data (`update_bn`), since
the averaged weights never produced the running stats the model holds.

`fit` sets the scheduled lr of every param group before each batch, so once averaging has begun
the step overrides it with `swa_lr` right before its own optimizer step (the lr `fit` records at
the end of an epoch is then `swa_lr`).
"""

from __future__ import annotations

import warnings

import torch
from pydantic import Field
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn

from yw_core.interfaces import Capabilities, MethodConfig, Paper, TrainStep, WeightOptimizer
from yw_core.runtime import Runtime
from yw_core.train import unwrap

BN_BATCH = 256  # batch size of the BatchNorm recompute pass


class SWAStep(TrainStep):
    """Plain SGD steps, at `swa_lr` after `start`; collects an equal-weight average per epoch."""

    def __init__(self, model, optimizer, runtime: Runtime, *, start: float, swa_lr: float):
        super().__init__(model, optimizer, runtime)
        self.start = float(start)
        self.swa_lr = float(swa_lr)
        self.updates = 0  # optimizer steps taken so far
        self.swa_started = False  # set by the first step at swa_lr
        self.averaged: AveragedModel | None = None  # created at the first averaged epoch

    def step(self, batch, loss_fn):
        """One SGD step; update k (0-based) uses swa_lr when k >= start * total_updates."""
        if self.total_updates is None:
            raise RuntimeError("SWA needs begin(total_updates) before the first step")
        if self.updates >= self.start * self.total_updates:
            for group in self.optimizer.param_groups:
                group["lr"] = self.swa_lr
            self.swa_started = True
        self.optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(self.model, batch)
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        return loss.detach()

    def on_epoch_end(self, epoch: int) -> None:
        """Add this epoch's weights to the average once any update has used swa_lr."""
        if not self.swa_started:
            return
        net = unwrap(self.model)
        if self.averaged is None:
            self.averaged = AveragedModel(net)
        self.averaged.update_parameters(net)

    @property
    def n_averaged(self) -> int:
        """How many epochs' weights the average holds."""
        return 0 if self.averaged is None else int(self.averaged.n_averaged)

    def finalize(self, data=None) -> nn.Module:
        """Load the averaged weights and recompute BN stats over `data`; returns the model."""
        if self.averaged is None:
            warnings.warn(
                f"SWA averaged no epoch: no epoch ended after update start={self.start} x "
                f"{self.total_updates}; returning the model's last SGD weights unchanged",
                stacklevel=2,
            )
            return self.model
        net = unwrap(self.model)
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
        if has_bn and data is None:
            raise ValueError("SWA needs the training data in finalize(data) to recompute BN stats")
        with torch.no_grad():
            torch._foreach_copy_(list(net.parameters()), list(self.averaged.module.parameters()))
        if has_bn:
            loader = torch.utils.data.DataLoader(data, batch_size=BN_BATCH, shuffle=False)
            update_bn(loader, net, device=self.runtime.device)
        return self.model


class SWA(WeightOptimizer):
    """Stochastic Weight Averaging: equal-weight average of the per-epoch weights at swa_lr."""

    name = "swa"
    summary = "SWA: average the per-epoch weights of constant-lr SGD, then recompute BN"
    paper = Paper(
        title="Averaging Weights Leads to Wider Optima and Better Generalization",
        authors=("Izmailov", "Podoprikhin", "Garipov", "Vetrov", "Wilson"),
        year=2018,
        venue="UAI",
        arxiv_id="1803.05407",
        code_url="https://github.com/timgaripov/swa",
    )
    status = "baseline"
    capabilities = Capabilities(training=True, distributed=True, deterministic=True)

    class Config(MethodConfig):
        start: float = Field(
            0.75,
            gt=0,
            lt=1,
            description="fraction of the updates after which the lr is held at swa_lr and the "
            "end-of-epoch weights are averaged (the paper's CIFAR 1.5-budget runs start at "
            "epoch 161 of 300, about 0.54)",
        )
        swa_lr: float = Field(
            0.05,
            gt=0,
            le=10,
            description="constant lr from `start` on (0.05: the paper's CIFAR-100 WRN-28-10 and "
            "PreResNet-164 value, with initial lr 0.1)",
        )

    def attach(self, model: nn.Module, base_optimizer, *, runtime: Runtime, **kwargs) -> SWAStep:
        """Wrap `model` and its base optimizer into an SWA TrainStep; takes no extra inputs."""
        if kwargs:
            raise ValueError(f"SWA takes no attach inputs, got {', '.join(sorted(kwargs))}")
        c = self.config
        return SWAStep(model, base_optimizer, runtime, start=c.start, swa_lr=c.swa_lr)
