"""Replay mechanics shared by continual learners: a reservoir buffer, MIR retrieval, and the
online loop of a replay learner.

`ReservoirBuffer` keeps a uniform sample of everything it was offered (Vitter's algorithm R, as
Mammoth's `Buffer`), so that every replay method of a comparison uses the same memory.
`mir_retrieve` picks the buffer samples whose loss would rise most after a virtual SGD step on
the incoming batch (Aljundi et al. 2019, "Online Continual Learning with Maximally Interfered
Retrieval"), the retrieval of MIR and MIR-LAS. `ReplayLearner` is the loop of the replay
learners (ER, MIR, ER-ACE, ER-LAS, MIR-LAS): what they differ in is a few overridden steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from yw_core.interfaces import ContinualLearner, StreamBatch


class ReservoirBuffer:
    """A fixed-capacity memory of (x, y) pairs holding a uniform sample of the stream.

    `add(x, y)` offers a batch: the first `capacity` samples are stored, then sample number n
    (0-based, counting everything offered) replaces a random slot with probability
    capacity / (n + 1). `sample(k)` draws k stored pairs without replacement. Tensors are kept
    on the device of the first batch; the generator makes it reproducible."""

    def __init__(self, capacity: int, *, generator: torch.Generator | None = None):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.seen = 0
        self.generator = generator if generator is not None else torch.Generator()
        self.x: torch.Tensor | None = None
        self.y: torch.Tensor | None = None

    def __len__(self) -> int:
        return min(self.seen, self.capacity)

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Offer every row of (x, y) to the reservoir, in order."""
        x, y = x.detach(), y.detach()
        if self.x is None:
            self.x = torch.empty((self.capacity, *x.shape[1:]), dtype=x.dtype, device=x.device)
            self.y = torch.empty(self.capacity, dtype=y.dtype, device=y.device)
        for i in range(len(y)):
            if self.seen < self.capacity:
                slot = self.seen
            else:
                slot = int(torch.randint(self.seen + 1, (1,), generator=self.generator))
            if slot < self.capacity:
                self.x[slot], self.y[slot] = x[i], y[i]
            self.seen += 1

    def sample(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """min(k, len) stored pairs drawn uniformly without replacement (empty before any add)."""
        n = len(self)
        if n == 0:
            raise ValueError("the buffer is empty: add samples before drawing from it")
        rows = torch.randperm(n, generator=self.generator)[: min(k, n)].to(self.y.device)
        return self.x[rows], self.y[rows]


def mir_retrieve(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    buffer: ReservoirBuffer,
    *,
    lr: float,
    candidates: int = 160,
    k: int = 32,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k of `candidates` random buffer samples whose loss rises most under a virtual SGD
    step (learning rate `lr`) on the incoming batch (x, y); the model's weights are not changed.

    `loss_fn(logits, y)` is the training loss of that step (cross-entropy by default; MIR-LAS
    passes its adjusted loss); the interference score is the plain per-sample cross-entropy
    after minus before the step, as MIR's code computes it."""
    import torch.nn.functional as F
    from torch.func import functional_call

    cx, cy = buffer.sample(candidates)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    loss = (loss_fn or F.cross_entropy)(model(x), y)
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    virtual = {
        n: p if g is None else p - lr * g for (n, p), g in zip(params.items(), grads, strict=True)
    }
    with torch.no_grad():
        before = F.cross_entropy(model(cx), cy, reduction="none")
        after = F.cross_entropy(functional_call(model, virtual, (cx,)), cy, reduction="none")
    top = torch.topk(after - before, min(k, len(cy))).indices
    return cx[top], cy[top]


class ReplayLearner(ContinualLearner):
    """The online loop of a replay learner: each observed batch gets one step of the host's
    optimizer on `loss(x, y, replay)`, in train mode, `replay` being `retrieve(x, y)` (None
    without a buffer or while it is empty); then `remember(x, y, batch)` offers the incoming
    batch to the reservoir.

    Subclasses set `memory` (False: no buffer) and override `retrieve`, `loss`, `remember` or
    `before_step`; a learner with memory has `buffer_size` and `minibatch_size` in its Config.
    `observe` and `predict` before `setup` are a RuntimeError, labels at or above
    `num_classes` a ValueError, a NaN or infinite loss a FloatingPointError."""

    memory: ClassVar[bool] = True

    def __init__(self, config=None, /, **overrides):
        super().__init__(config, **overrides)
        self.model: nn.Module | None = None
        self.buffer: ReservoirBuffer | None = None

    def setup(self, model, optimizer, *, num_classes: int, runtime) -> None:
        """Bind to the host's model and optimizer; a fresh buffer whose generator is
        `runtime.generator(device="cpu")` (same runtime seed, same draws)."""
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"{self.name}: num_classes must be a positive int, got {num_classes!r}"
            )
        self.model, self.optimizer, self.runtime = model, optimizer, runtime
        self.num_classes = num_classes
        self.steps = 0
        self.buffer = (
            ReservoirBuffer(self.config.buffer_size, generator=runtime.generator(device="cpu"))
            if self.memory
            else None
        )

    def observe(self, batch: StreamBatch) -> float:
        """One online step on `batch`; returns its loss."""
        self._check_ready("observe")
        if not isinstance(batch, StreamBatch):
            kind = type(batch).__name__
            raise TypeError(f"{self.name}: observe() takes a StreamBatch, not {kind}")
        x, y = self.runtime.to((batch.x, batch.y.long()))
        if bad := sorted({int(c) for c in y[y >= self.num_classes].tolist()}):
            raise ValueError(
                f"{self.name}: labels {', '.join(map(str, bad))} are outside the "
                f"{self.num_classes} classes (0..{self.num_classes - 1}) given to setup()"
            )
        self.model.train()
        self.before_step(batch)
        has_replay = self.buffer is not None and len(self.buffer) > 0
        replay = self.retrieve(x, y) if has_replay else None
        loss = self.loss(x, y, replay)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"{self.name}: loss is {loss.item()} at step {self.steps + 1} (NaN or inf in the "
                "model, or a learning rate that diverges?)"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.remember(x, y, batch)
        self.steps += 1
        return float(loss.detach())

    def before_step(self, batch: StreamBatch) -> None:
        """Run before retrieval (MIR-LAS's task-end buffering); nothing by default."""

    def retrieve(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The replay batch for incoming (x, y): `minibatch_size` buffer samples, uniformly."""
        return self.buffer.sample(self.config.minibatch_size)

    def loss(self, x, y, replay) -> torch.Tensor:
        """Cross-entropy over the incoming batch concatenated with the replay batch."""
        if replay is not None:
            x, y = torch.cat([x, replay[0]]), torch.cat([y, replay[1]])
        return F.cross_entropy(self.model(x), y)

    def remember(self, x: torch.Tensor, y: torch.Tensor, batch: StreamBatch) -> None:
        """After the step: offer the incoming batch to the reservoir."""
        if self.buffer is not None:
            self.buffer.add(x, y)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Detached logits on x's device, every module in eval mode, modes restored after."""
        from yw_core.models import eval_mode

        self._check_ready("predict")
        with eval_mode(self.model), torch.no_grad():
            return self.model(self.runtime.to(x)).detach().to(x.device)

    def _check_ready(self, what: str) -> None:
        if self.model is None:
            raise RuntimeError(
                f"{self.name}: {what}() before setup; call setup(model, optimizer, "
                "num_classes=..., runtime=...) first"
            )
