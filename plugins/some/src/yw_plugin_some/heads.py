"""The network SOME trains and certifies: one shared trunk and H heads whose logits are summed."""

from __future__ import annotations

import copy

import torch
from torch import nn

NEEDS = (
    "SOME needs a model split as .features (input -> features, the shared trunk) and .head (the "
    "classifier on those features, copied into every head), with model(x) == "
    "head(features(x)); wrap yours as yw_core.models.SplitClassifier(features, head)"
)


class HeadEnsemble(nn.Module):
    """H heads on the same features; forward gives the sum of their logits."""

    def __init__(self, heads: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(heads)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.stack(self.each(z)).sum(0)

    def each(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Every head's logits on the features z, in head order."""
        return [head(z) for head in self.members]


class MultiHeadClassifier(nn.Module):
    """A shared trunk (`features`) and H heads (`head`, a HeadEnsemble), each call running the
    trunk once: `forward(x)` is the sum of the heads' logits (the base classifier that
    randomized smoothing certifies) and `heads(x)` the list of each head's logits."""

    def __init__(self, features: nn.Module, heads: list[nn.Module]):
        super().__init__()
        self.features = features
        self.head = HeadEnsemble(heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def heads(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each head's logits on x, from one pass of the trunk."""
        return self.head.each(self.features(x))

    @property
    def num_heads(self) -> int:
        """H, the number of heads."""
        return len(self.head.members)


def check_split(model: nn.Module) -> None:
    """A ValueError naming what is missing when `model` has no `.features` / `.head` modules."""
    missing = [
        f".{n}" for n in ("features", "head") if not isinstance(getattr(model, n, None), nn.Module)
    ]
    if missing:
        raise ValueError(f"{NEEDS}. {type(model).__name__} has no {' or '.join(missing)}")


def build_multihead(
    model: nn.Module, heads: int, *, private_layers: int = 0, seed: int = 0
) -> MultiHeadClassifier:
    """A MultiHeadClassifier made from a split model, which is left unchanged.

    The trunk is a copy of `model.features` without its last `private_layers` modules; each of
    the `heads` heads is a copy of those modules followed by `model.head`, with fresh weights
    drawn independently (every submodule's `reset_parameters`, seeded by `seed`).
    """
    check_split(model)
    if heads < 1:
        raise ValueError(f"heads must be >= 1, got {heads}")
    features = copy.deepcopy(model.features)
    tail: list[nn.Module] = []
    if private_layers:
        if not isinstance(features, nn.Sequential) or len(features) <= private_layers:
            size = len(features) if isinstance(features, nn.Sequential) else "not an nn.Sequential"
            raise ValueError(
                f"private_layers={private_layers} moves the last modules of .features into every "
                f"head, so .features must be an nn.Sequential of more than {private_layers} "
                f"modules; got {type(features).__name__} ({size})"
            )
        tail = list(features[-private_layers:])
        features = features[:-private_layers]
    template = nn.Sequential(*tail, copy.deepcopy(model.head)) if tail else model.head
    params = list(template.parameters())
    if not params:
        raise ValueError("the head has no parameters to train (SOME's heads are trained)")
    device = params[0].device
    made = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # heads drawn on the cpu: the same heads on every device
        for _ in range(heads):
            head = copy.deepcopy(template).to("cpu")
            for module in head.modules():
                if callable(getattr(module, "reset_parameters", None)):
                    module.reset_parameters()
            made.append(head.to(device))
    return MultiHeadClassifier(features, made)
