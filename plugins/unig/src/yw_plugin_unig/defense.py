"""UniG as a yw Defense: the Config (the reference's CIFAR-10 run) and protect()."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from yw_core.interfaces import Capabilities, Defense, MethodConfig, Paper
from yw_core.models import eval_mode
from yw_plugin_unig.wrapper import UniGWrapper, check_features, check_finite

POOL_SIZE = (
    100  # calibration samples kept; the reference draws its combine rows from its first ~100
)
NEEDS = (
    "UniG needs a model with .features (input -> flat penultimate features of shape (N, d)) and "
    ".head (an nn.Linear, or a module with a (classes, d) .weight and a (classes,) .bias or None), "
    "with model(x) == head(features(x)); wrap yours as "
    "yw_core.models.SplitClassifier(features, head)"
)


def check_split(model: nn.Module) -> None:
    """A ValueError saying exactly what is missing when the model cannot be split for UniG."""
    features, head = getattr(model, "features", None), getattr(model, "head", None)
    if not callable(features) or head is None:
        missing = [n for n, ok in (("features", callable(features)), ("head", head)) if not ok]
        found = " or ".join(f".{n}" for n in missing)
        raise ValueError(f"{NEEDS}. {type(model).__name__} has no usable {found}")
    weight, bias = getattr(head, "weight", None), getattr(head, "bias", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise ValueError(f"{NEEDS}. Its .head ({type(head).__name__}) has no 2-D .weight")
    if bias is not None and (not isinstance(bias, torch.Tensor) or bias.shape != weight.shape[:1]):
        raise ValueError(
            f"{NEEDS}. Its .head's .bias must be None or of shape ({weight.shape[0]},), got "
            f"{tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__}"
        )


def calibration_pool(data: Any, size: int, generator: torch.Generator):
    """Up to `size` random samples of `data` as (x, y or None).

    `data` is a tensor of inputs, an (inputs, labels) pair of tensors, or a dataset whose items
    are inputs or (input, label, ...) tuples (e.g. a TensorDataset).
    """
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        xs, ys = data
        ys = torch.as_tensor(ys)
        if len(ys) != len(xs):
            raise ValueError(f"data's inputs and labels differ in length: {len(xs)} vs {len(ys)}")
        data = None
    elif isinstance(data, torch.Tensor):
        xs, ys, data = data, None, None
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        xs = ys = None
    else:
        raise ValueError(
            "data must be a tensor of inputs, an (inputs, labels) pair or a dataset, "
            f"got {type(data).__name__}"
        )
    n = len(xs) if data is None else len(data)
    pick = torch.randperm(n, generator=generator, device=generator.device)[:size].cpu()
    if data is None:
        return xs[pick.to(xs.device)], None if ys is None else ys[pick.to(ys.device)]
    items = [data[i] for i in pick.tolist()]
    if isinstance(items[0], (tuple, list)):
        x = torch.stack([torch.as_tensor(item[0]) for item in items])
        y = torch.as_tensor([int(item[1]) for item in items]) if len(items[0]) > 1 else None
        return x, y
    return torch.stack([torch.as_tensor(item) for item in items]), None


class UniG(Defense):
    """UniG: per query batch, rescale the penultimate features so that the batch's feature
    gradients become alike; attackers then probe a near-universal, weak direction."""

    name = "unig"
    summary = (
        "Unifying Gradients: a per-query feature multiplier, optimised so that the batch's "
        "feature gradients look alike, misleads score-based query attacks"
    )
    paper = Paper(
        title="Unifying Gradients to Improve Real-world Robustness for Deep Networks",
        authors=("Wu", "Chen", "Fang", "Huang"),
        year=2023,
        venue="ACM TIST",
        arxiv_id="2208.06228",
        code_url="https://github.com/snowien/UniG-pytorch",
    )
    status = "stable"
    capabilities = Capabilities(post_hoc=True, randomized=True, batch_dependence="argmax")

    class Config(MethodConfig):
        """The reference's CIFAR-10 run (README command); ImageNet used lr 1, delta 0.1."""

        lr: float = Field(10.0, gt=0, description="SGD learning rate on the multiplier p")
        iterations: int = Field(
            1, ge=1, le=1000, description="SGD steps on p per call (more hurt in the paper's sweep)"
        )
        delta: float = Field(
            0.5, ge=0, le=1, description="p is clamped to [1 - delta, 1 + delta] after each step"
        )
        momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum on p")
        weight_decay: float = Field(5e-4, ge=0, description="SGD weight decay on p")
        init_std: float = Field(
            0.5, ge=0, description="p is drawn from N(1, init_std^2) afresh on every call"
        )
        combine: int = Field(
            5,
            ge=0,
            le=POOL_SIZE,
            description="calibration rows (from protect()'s data, with their labels) appended to "
            "every query batch so batches of 1 still get pairs; 0 = off",
        )
        persist_momentum: bool = Field(
            True,
            description="keep the SGD momentum buffer (one row per batch position) across calls, "
            "as the reference's once-built optimizer does; False = fresh each call",
        )
        path: Literal["fast", "reference"] = Field(
            "fast",
            description="dL/dp in closed form (fast) or by double backward through the head "
            "(reference, the original's way); same result",
        )

    def protect(self, model: nn.Module, *, data: Any = None, runtime) -> nn.Module:
        """Wrap the frozen model; `data` (optional) supplies the combine rows and a split check."""
        check_split(model)
        generator = runtime.generator()
        pool = None
        if data is not None and self.config.combine > 0:
            pool = self._pool(model, data, generator)
        return UniGWrapper(model, self.config, generator, pool)

    def _pool(self, model: nn.Module, data: Any, generator: torch.Generator):
        """Features and labels of up to POOL_SIZE calibration samples, checked against model(x)."""
        x, y = calibration_pool(data, POOL_SIZE, generator)
        if len(x) < self.config.combine:
            raise ValueError(
                f"combine={self.config.combine} needs at least that many calibration samples; "
                f"data has {len(x)}"
            )
        weight, bias = model.head.weight, model.head.bias
        param = next(model.parameters(), None)
        x = x.to(param.device if param is not None else generator.device)
        with torch.no_grad(), eval_mode(model):
            f = model.features(x)
            check_features(f, x, weight.shape[1])
            split = F.linear(f, weight, bias)
            check_finite(split, f, "the calibration data")
            full = model(x)
        if full.shape != split.shape or not torch.allclose(
            full, split, rtol=1e-3, atol=1e-3 * (1 + float(split.abs().max()))
        ):
            gap = (full - split).abs().max().item() if full.shape == split.shape else "shape"
            raise ValueError(
                f"{NEEDS}. On the calibration data model(x) differs from "
                f"head(features(x)) (max |diff| = {gap}), and UniG defends head(features(x))"
            )
        classes = weight.shape[0]
        if y is None:
            y = split.argmax(1)
        elif y.dim() != 1 or y.is_floating_point() or y.min() < 0 or y.max() >= classes:
            raise ValueError(
                f"data's labels must be class indices in [0, {classes}), got dtype {y.dtype}, "
                f"shape {tuple(y.shape)}"
            )
        return f.detach().float().to(generator.device), y.long().to(generator.device)
