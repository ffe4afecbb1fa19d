"""The sliding-window label prior of LAS and the logit adjustment it makes.

Per training step the learner pushes the labels of everything it trains on (stream batch and
replay batch together) as one count vector n_t; `counts` is N_t, the sum over the last `window`
vectors. The adjusted logits are f(x) + τ·log(N_t + eps), computed in the logits' dtype, as the
official code does (`tau * torch.log(label_freq_record + 1e-50)` on float32 counts): in float32
and lower, eps=1e-50 underflows to 0, so a class absent from the window gets -inf, an exact mask.
"""

from __future__ import annotations

from collections import deque

import torch


class LogitAdjuster:
    """Label counts of the last `window` steps, and the logit adjustment τ·log(N_t + eps)."""

    def __init__(self, num_classes: int, tau: float = 1.0, window: int = 1, eps: float = 1e-50):
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if tau < 0 or eps < 0:
            raise ValueError(f"tau and eps must be >= 0, got tau={tau}, eps={eps}")
        self.num_classes = num_classes
        self.tau = float(tau)
        self.window = int(window)
        self.eps = float(eps)
        self._deque: deque[torch.Tensor] = deque()

    def __len__(self) -> int:
        """How many count vectors the window holds (at most `window`)."""
        return len(self._deque)

    def update(self, labels: torch.Tensor) -> None:
        """Push the count vector of `labels` (1-D class indices); pop the oldest beyond `window`."""
        labels = labels.detach().reshape(-1).long()
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            bad = sorted({int(c) for c in labels if not 0 <= int(c) < self.num_classes})
            raise ValueError(
                f"labels {', '.join(map(str, bad))} are outside the {self.num_classes} classes "
                f"(0..{self.num_classes - 1})"
            )
        self._deque.append(torch.bincount(labels, minlength=self.num_classes))
        while len(self._deque) > self.window:
            self._deque.popleft()

    @property
    def counts(self) -> torch.Tensor:
        """N_t: the int64 label counts summed over the window (zeros before any update)."""
        if not self._deque:
            return torch.zeros(self.num_classes, dtype=torch.long)
        return torch.stack(tuple(self._deque)).sum(0)

    def adjust(self, logits: torch.Tensor) -> torch.Tensor:
        """logits (N, num_classes) + τ·log(N_t + eps), in the logits' dtype and device.

        τ = 0 returns the logits unchanged (not 0·log 0 = NaN for classes absent)."""
        if logits.shape[-1] != self.num_classes:
            raise ValueError(
                f"logits have {logits.shape[-1]} classes, the prior {self.num_classes}"
            )
        if self.tau == 0:
            return logits
        if not self._deque:
            raise RuntimeError("the window is empty: call update(labels) before adjust(logits)")
        counts = self.counts.to(device=logits.device, dtype=logits.dtype)
        return logits + self.tau * torch.log(counts + self.eps)
