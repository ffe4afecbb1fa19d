"""The module `UniG.protect` returns: a frozen classifier whose forward gives UniG-defended logits.

Per call: f = model.features(x) (no grad unless x requires grad), pseudo-labels y = argmax of the
undefended head, `combine` calibration rows appended after the query rows, p ~ N(1, init_std^2)
drawn fresh, `iterations` SGD steps on p that make the rows' feature gradients alike
(`gradients.py`), p clamped to [1 - delta, 1 + delta], and head(f * p) returned for the query rows.

State across calls (so a call's output depends on the calls before it, as in the reference):
the random stream (one generator, seeded from the runtime at protect() time) and, with
`persist_momentum`, the SGD momentum buffer, one row per batch position. `reset()` restores the
state protect() returned, so a sequence of calls can be replayed exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from yw_core.models import eval_mode
from yw_plugin_unig.gradients import pair_loss_grad, sgd_step


def check_features(f: torch.Tensor, x: torch.Tensor, width: int) -> None:
    """model.features(x) must be flat (N, d) with d the head's input width; name what was found."""
    if not isinstance(f, torch.Tensor) or f.dim() != 2 or f.shape != (len(x), width):
        found = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
        raise ValueError(
            f"UniG needs model.features(x) to return flat features of shape (N, d) = "
            f"({len(x)}, {width}), d being the head's in_features; got {found} for input "
            f"{tuple(x.shape)}. End `features` with global pooling and/or nn.Flatten()."
        )


def check_finite(logits: torch.Tensor, f: torch.Tensor, where: str) -> None:
    """NaN or inf logits are a ValueError that says whether the features already had them."""
    if not torch.isfinite(logits).all():
        source = "model.features" if not torch.isfinite(f).all() else "the head"
        raise ValueError(
            f"UniG: the model's logits on {where} contain NaN or inf (first produced by {source}); "
            "check the input and the model's weights"
        )


class UniGWrapper(nn.Module):
    """Wraps a frozen (features, head) classifier; forward(x) returns UniG-defended logits."""

    def __init__(self, model: nn.Module, config, generator: torch.Generator, pool=None):
        super().__init__()
        self.model = model
        self.config = config
        self.generator = generator
        self.pool_features, self.pool_labels = pool if pool is not None else (None, None)
        self.momentum_buffer: torch.Tensor | None = None
        self._initial_state = generator.get_state()

    def reset(self) -> None:
        """Return to the state protect() gave: the same random stream and no momentum."""
        self.generator.set_state(self._initial_state)
        self.momentum_buffer = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Defended logits of shape (N, classes); gradients reach x with p held constant."""
        weight, bias = self.model.head.weight, self.model.head.bias
        track = torch.is_grad_enabled() and x.requires_grad
        with torch.set_grad_enabled(track), eval_mode(self.model):
            f = self.model.features(x)
        check_features(f, x, weight.shape[1])
        with torch.no_grad():
            clean = F.linear(f, weight, bias)
            check_finite(clean, f, "this batch")
            rows = f.detach().float()
            target = clean.argmax(1)
            rows, target = self._combine(rows, target)
            b = None if bias is None else bias.detach().float()
            p = self._unify(rows, weight.detach().float(), b, target)
        return F.linear(f * p[: len(x)].to(f.dtype), weight, bias)

    def _combine(self, rows: torch.Tensor, target: torch.Tensor):
        """Append `combine` calibration rows (features, labels) drawn from the stored pool."""
        if self.pool_features is None:
            if len(rows) < 2:
                raise ValueError(
                    "UniG unifies gradients across a batch, so a batch of 1 needs calibration "
                    "samples to pair with: pass data= to protect() (with combine >= 1) or query "
                    "in batches of 2 or more"
                )
            return rows, target
        gen = self.generator
        pick = torch.randperm(len(self.pool_features), generator=gen, device=gen.device)
        pick = pick[: self.config.combine]
        extra_rows = self.pool_features[pick].to(rows.device)
        extra_target = self.pool_labels[pick].to(target.device)
        return torch.cat([rows, extra_rows]), torch.cat([target, extra_target])

    def _unify(self, f, weight, bias, target) -> torch.Tensor:
        """Draw p, take `iterations` clamped SGD steps on the pair loss; return p (N, d)."""
        cfg = self.config
        gen = self.generator
        p = torch.randn(f.shape, generator=gen, device=gen.device).to(f.device)
        p = p.mul_(cfg.init_std).add_(1.0)
        buf = self._momentum_rows(*f.shape, f.device)
        bounds = None
        for _ in range(cfg.iterations):
            grad, bounds = pair_loss_grad(
                f, p, weight, bias, target, bounds, reference=cfg.path == "reference"
            )
            sgd_step(p, grad, buf, cfg.lr, cfg.momentum, cfg.weight_decay)
            p.clamp_(1.0 - cfg.delta, 1.0 + cfg.delta)
        return p

    def _momentum_rows(self, n: int, d: int, device) -> torch.Tensor:
        """The first n rows of the momentum buffer (a view: updates persist), grown with zeros."""
        if not self.config.persist_momentum:
            return torch.zeros(n, d, device=device)
        buf = self.momentum_buffer
        if buf is None:
            buf = torch.zeros(n, d, device=device)
        buf = buf.to(device)
        if len(buf) < n:
            buf = torch.cat([buf, buf.new_zeros(n - len(buf), d)])
        self.momentum_buffer = buf
        return buf[:n]
