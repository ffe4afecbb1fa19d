"""One plain training loop that WeightOptimizer plugins (and training-time defenses) plug into.

`fit` owns what every method would otherwise rewrite: the data loader (sharded under torchrun),
the DDP wrapper, the base SGD optimizer and its per-update lr schedule, epochs, evaluation,
checkpoints, a progress bar and timing. The method owns only the update, through the `TrainStep`
contract in `yw_core.interfaces`. With `method=None` it is plain SGD.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from yw_core.interfaces import TrainStep, WeightOptimizer
from yw_core.runtime import Runtime


class TrainConfig(BaseModel):
    """The base run: SGD with momentum and a per-update lr schedule (the papers' common recipe)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(10, ge=1, description="epochs of updates (multi-batch methods pass more)")
    batch_size: int = Field(128, ge=1, description="mini-batch size per process")
    lr: float = Field(0.1, gt=0, description="peak learning rate of the base SGD")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    nesterov: bool = Field(False, description="Nesterov momentum")
    weight_decay: float = Field(5e-4, ge=0, description="SGD weight decay (L2)")
    schedule: Literal["cosine", "step", "constant"] = Field(
        "cosine", description="lr schedule over updates: cosine to 0, x gamma at milestones, flat"
    )
    milestones: tuple[float, ...] = Field(
        (0.5, 0.75), description="step schedule: fractions of training where lr is multiplied"
    )
    gamma: float = Field(0.1, gt=0, le=1, description="step schedule: lr factor per milestone")
    warmup: float = Field(0.0, ge=0, lt=1, description="fraction of updates with linear warm-up")
    eval_every: int = Field(1, ge=1, description="evaluate every this many epochs (and last)")
    keep_checkpoints: bool = Field(
        False, description="keep the weights at the start and after every epoch (TWA's input)"
    )
    progress: bool = Field(True, description="show a tqdm bar on rank 0")

    @model_validator(mode="after")
    def _milestones_are_fractions(self):
        if any(not 0 < m < 1 for m in self.milestones) or list(self.milestones) != sorted(
            self.milestones
        ):
            raise ValueError(
                f"milestones must be increasing fractions in (0, 1), got {self.milestones}"
            )
        return self

    def lr_factor(self, update: int, total: int) -> float:
        """The multiplier of `lr` at update index `update` (0-based) of `total`."""
        t = update / max(total, 1)
        if self.warmup and t < self.warmup:
            return (update + 1) / max(1, round(self.warmup * total))
        if self.schedule == "cosine":
            start = self.warmup
            return 0.5 * (1 + math.cos(math.pi * (t - start) / (1 - start)))
        if self.schedule == "step":
            return self.gamma ** sum(t >= m for m in self.milestones)
        return 1.0


@dataclass
class TrainResult:
    """What `fit` returns: the finalized model, one history row per epoch, and timings:
    `train_seconds` over the training passes, `setup_seconds` in the method's `attach` and
    `finalize` (TWA's Gram-Schmidt, BN recomputes); evaluation is in neither."""

    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, torch.Tensor]] | None = None
    train_seconds: float = 0.0
    setup_seconds: float = 0.0
    updates: int = 0

    @property
    def seconds_per_update(self) -> float:
        """Mean wall-clock time of one update (training passes only, evaluation excluded)."""
        return self.train_seconds / max(self.updates, 1)

    @property
    def final_accuracy(self) -> float | None:
        """Test accuracy after finalize (the last history row's), if eval data was given."""
        return self.history[-1].get("test_acc") if self.history else None


def classification_loss(model: nn.Module, batch) -> torch.Tensor:
    """Cross-entropy of model(x) against y for a batch (x, y): the default `loss_fn`."""
    x, y = batch[0], batch[1]
    return F.cross_entropy(model(x), y)


class SGDStep(TrainStep):
    """Plain SGD (or whatever the base optimizer is): one forward, one backward, one step."""

    def step(self, batch, loss_fn):
        self.optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(self.model, batch)
        loss.backward()
        self.optimizer.step()
        return loss.detach()


def parameter_snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of the model's trainable parameters by name (no BN buffers: TWA's input)."""
    return {n: p.detach().to("cpu", copy=True) for n, p in unwrap(model).named_parameters()}


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


@torch.no_grad()
def evaluate(model: nn.Module, data, *, runtime: Runtime, batch_size: int = 512) -> dict:
    """Accuracy and mean cross-entropy of `model` on a dataset of (x, y), in eval mode."""
    from yw_core.models import eval_mode

    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    correct, loss, n = 0, 0.0, 0
    with eval_mode(model):
        for x, y in loader:
            x, y = runtime.to(x), runtime.to(y)
            with runtime.autocast():
                out = model(x).float()
            correct += int((out.argmax(1) == y).sum())
            loss += float(F.cross_entropy(out, y, reduction="sum"))
            n += len(y)
    return {"test_acc": correct / max(n, 1), "test_loss": loss / max(n, 1)}


def fit(
    model: nn.Module,
    train_data,
    *,
    runtime: Runtime,
    method: WeightOptimizer | None = None,
    config: TrainConfig | None = None,
    eval_data=None,
    loss_fn: Callable[[nn.Module, Any], torch.Tensor] = classification_loss,
    attach_kwargs: dict[str, Any] | None = None,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train `model` on `train_data` with `method`'s update rule (plain SGD when None).

    Under torchrun the loader is sharded and the model wrapped in DDP; every rank returns the
    same unwrapped model. `on_epoch_end(row)` and the `yw_train_epoch_end` hook see each epoch's
    history row (epoch, updates, train_loss, seconds, and test_acc/test_loss when evaluated).
    """
    from yw_core import hooks

    config = config or TrainConfig()
    if runtime.precision == "fp16":
        raise ValueError("fit supports precision 'fp32' and 'bf16' (fp16 needs loss scaling)")
    model = runtime.to(model).train()
    net = runtime.wrap_ddp(model)
    optimizer = torch.optim.SGD(
        net.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,
        weight_decay=config.weight_decay,
    )
    started = time.perf_counter()
    if method is None:
        step = SGDStep(net, optimizer, runtime)
    else:
        step = method.attach(net, optimizer, runtime=runtime, **(attach_kwargs or {}))
    setup = time.perf_counter() - started
    loader = runtime.loader(train_data, config.batch_size, shuffle=True, drop_last=False)
    passes = int(step.batches_per_update)
    if passes < 1:
        raise ValueError(f"{type(step).__name__}.batches_per_update must be >= 1, got {passes}")
    total_updates = config.epochs * len(loader)
    total_batches = total_updates * passes
    step.begin(total_updates)

    result = TrainResult(model=model, setup_seconds=setup)
    if config.keep_checkpoints:
        result.checkpoints = [parameter_snapshot(model)]
    pm = hooks.get_plugin_manager()
    bar = _progress(config, runtime, total_batches, method)
    done = 0
    for epoch in range(config.epochs):
        start, losses = time.perf_counter(), []
        for p in range(passes):
            runtime.set_epoch(loader, epoch * passes + p)
            for batch in loader:
                # the lr of the update this batch belongs to, set before the step reads it
                lr = config.lr * config.lr_factor(done // passes, total_updates)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                with runtime.autocast():
                    loss = step.step(runtime.to(batch), loss_fn)
                losses.append(loss)
                done += 1
                if bar is not None:
                    bar.update(1)
        if runtime.device.type == "cuda":
            torch.cuda.synchronize(runtime.device)
        seconds = time.perf_counter() - start
        result.train_seconds += seconds
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            "updates": (epoch + 1) * len(loader),
            "train_loss": float(torch.stack(losses).float().mean()),
            "seconds": seconds,
            "lr": optimizer.param_groups[0]["lr"],
        }
        if not math.isfinite(row["train_loss"]):
            raise FloatingPointError(f"training loss is {row['train_loss']} at epoch {epoch + 1}")
        _sync_buffers(model, runtime)
        step.on_epoch_end(epoch)
        if config.keep_checkpoints:
            result.checkpoints.append(parameter_snapshot(model))
        if eval_data is not None and ((epoch + 1) % config.eval_every == 0):
            row.update(evaluate(model, eval_data, runtime=runtime))
        result.history.append(row)
        if bar is not None:
            bar.set_postfix({k: round(row[k], 4) for k in ("train_loss", "test_acc") if k in row})
        pm.hook.yw_train_epoch_end(state={"model": model, **row})
        if on_epoch_end is not None:
            on_epoch_end(row)
    if bar is not None:
        bar.close()
    result.updates = total_updates
    started = time.perf_counter()
    final = step.finalize(train_data)
    result.setup_seconds += time.perf_counter() - started
    result.model = unwrap(final)
    if eval_data is not None:
        result.history[-1].update(evaluate(result.model, eval_data, runtime=runtime))
    return result


def _sync_buffers(model: nn.Module, runtime: Runtime) -> None:
    """Give every rank rank 0's BN statistics: DDP broadcasts them before each forward, but
    each rank's last forward updates its own, so ranks would evaluate different models."""
    if runtime.is_distributed:
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer, src=0)


def _progress(config: TrainConfig, runtime: Runtime, total: int, method):
    """A tqdm bar over batches on rank 0, or None."""
    if not (config.progress and runtime.is_main):
        return None
    from tqdm.auto import tqdm

    name = getattr(method, "name", "sgd")
    return tqdm(total=total, desc=f"train {name}", unit="batch", leave=False)
