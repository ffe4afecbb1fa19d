"""Replay mechanics shared by continual learners: a reservoir buffer and MIR retrieval.

`ReservoirBuffer` keeps a uniform sample of everything it was offered (Vitter's algorithm R, as
Mammoth's `Buffer`), so that every replay method of a comparison uses the same memory.
`mir_retrieve` picks the buffer samples whose loss would rise most after a virtual SGD step on
the incoming batch (Aljundi et al. 2019, "Online Continual Learning with Maximally Interfered
Retrieval"), the retrieval of MIR and MIR-LAS.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


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
