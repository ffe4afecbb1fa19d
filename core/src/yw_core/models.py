"""Reference classifiers, each split into `features` (input -> flat vector) and a linear `head`.

`forward(x) == head(features(x))` for every model here, because several methods work on the
penultimate features (UniG, DIO, OOD scorers) or swap the head. Models take images in [0, 1]
without normalisation. Global pooling is a mean over height and width rather than
`nn.AdaptiveAvgPool2d`, whose CUDA backward has no deterministic implementation.

Architectures (written from the papers' descriptions):
- `DigitsCNN`: two 3x3 convolutions (32, 64 channels), a 2x2 max-pool and a 128-unit hidden layer.
- `ResNet18`: He et al. 2016 with the CIFAR stem (one 3x3 convolution, no max-pool), [2, 2, 2, 2]
  basic blocks of 64..512 channels; features are 512-d.
- `PreActResNet18`: the pre-activation variant (He et al., "Identity Mappings", 2016) with the
  same layout and a final BN-ReLU before pooling; features are 512-d.
- `WideResNet`: Zagoruyko & Komodakis 2016, WRN-depth-k with (depth - 4) / 6 pre-activation
  blocks per group, widths 16k, 32k, 64k; features are 64k-d.

Plugins add architectures through the `yw_register_models` hook: `register(name, factory)`, where
`factory(num_classes=..., in_channels=..., **kw)` returns a module with `features` and `head`.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def eval_mode(model: nn.Module):
    """Run a model in eval mode (BN statistics, no dropout) and restore every submodule's own
    mode afterwards: what defenses and attacks do around the model they wrap."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, mode in modes:
            module.training = mode


class SplitClassifier(nn.Module):
    """A classifier whose logits are `head(features(x))`, with `head` an `nn.Linear`."""

    def __init__(self, features: nn.Module, head: nn.Linear):
        super().__init__()
        self.features = features
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def split_parts(model: nn.Module, method: str) -> tuple[nn.Module, nn.Linear]:
    """(model.features, model.head) for methods that work on penultimate features; a ValueError
    naming what is missing when the model is not split that way."""
    features, head = getattr(model, "features", None), getattr(model, "head", None)
    if not isinstance(features, nn.Module) or not isinstance(head, nn.Linear):
        raise ValueError(
            f"{method} needs a classifier split into `.features` (input -> flat embedding, an "
            "nn.Module) and `.head` (an nn.Linear), as yw_core.models.SplitClassifier; "
            f"{type(model).__name__} has features={type(features).__name__}, "
            f"head={type(head).__name__}"
        )
    return features, head


class GlobalAvgPool(nn.Module):
    """Mean over the spatial dimensions: (N, C, H, W) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class DigitsCNN(SplitClassifier):
    """Small CNN for 8x8 digits; trains to >95% test accuracy in seconds on a CPU.

    `batchnorm=True` adds BatchNorm after each conv (the weight-optimizer bench uses it: the
    methods there must handle BN running statistics, as on the papers' ResNets).
    `norm_embedding=True` makes the embedding Linear (no bias) → BatchNorm1d → ReLU, so the
    network ends in BatchNorm + ReLU like the papers' backbones; unnormalised, its two Linear
    layers hold most of the loss's sharpest directions (docs/methods/subat.md)."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 8,
        hidden: int = 128,
        batchnorm: bool = False,
        norm_embedding: bool = False,
    ):
        def conv(cin: int, cout: int) -> list[nn.Module]:
            layers = [nn.Conv2d(cin, cout, 3, padding=1)]
            return layers + ([nn.BatchNorm2d(cout)] if batchnorm else []) + [nn.ReLU()]

        features = nn.Sequential(
            *conv(in_channels, 32),
            *conv(32, 64),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * (image_size // 2) ** 2, hidden, bias=not norm_embedding),
            *([nn.BatchNorm1d(hidden)] if norm_embedding else []),
            nn.ReLU(),
        )
        super().__init__(features, nn.Linear(hidden, num_classes))


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """ResNet basic block: conv-BN-ReLU-conv-BN plus a (projected) shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = _conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class PreActBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv-(dropout)-BN-ReLU-conv plus the shortcut.

    When the shape changes, the shortcut is a 1x1 convolution of the pre-activated input.
    """

    def __init__(self, cin: int, cout: int, stride: int, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3x3(cin, cout, stride)
        self.bn2 = nn.BatchNorm2d(cout)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = _conv3x3(cout, cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(self.dropout(torch.relu(self.bn2(out))))
        return out + skip


def _stage(block, cin: int, cout: int, n: int, stride: int, **kw) -> nn.Sequential:
    layers = [block(cin, cout, stride, **kw)]
    layers += [block(cout, cout, 1, **kw) for _ in range(n - 1)]
    return nn.Sequential(*layers)


class ResNet18(SplitClassifier):
    """ResNet-18 for 32x32 inputs (CIFAR stem); 512-d features."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        widths, strides = (64, 128, 256, 512), (1, 2, 2, 2)
        layers = [_conv3x3(in_channels, 64), nn.BatchNorm2d(64), nn.ReLU()]
        cin = 64
        for w, s in zip(widths, strides):
            layers.append(_stage(BasicBlock, cin, w, 2, s))
            cin = w
        layers.append(GlobalAvgPool())
        super().__init__(nn.Sequential(*layers), nn.Linear(512, num_classes))


class PreActResNet18(SplitClassifier):
    """Pre-activation ResNet-18 for 32x32 inputs; 512-d features."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        widths, strides = (64, 128, 256, 512), (1, 2, 2, 2)
        layers = [_conv3x3(in_channels, 64)]
        cin = 64
        for w, s in zip(widths, strides):
            layers.append(_stage(PreActBlock, cin, w, 2, s))
            cin = w
        layers += [nn.BatchNorm2d(512), nn.ReLU(), GlobalAvgPool()]
        super().__init__(nn.Sequential(*layers), nn.Linear(512, num_classes))


class WideResNet(SplitClassifier):
    """WRN-depth-widen_factor for 32x32 inputs; features are 64 * widen_factor wide."""

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        depth: int = 28,
        widen_factor: int = 10,
        dropout: float = 0.0,
    ):
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(
                f"WideResNet depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...), got {depth}"
            )
        if widen_factor < 1:
            raise ValueError(f"WideResNet widen_factor must be >= 1, got {widen_factor}")
        n = (depth - 4) // 6
        widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        layers = [_conv3x3(in_channels, 16)]
        cin = 16
        for w, s in zip(widths, (1, 2, 2)):
            layers.append(_stage(PreActBlock, cin, w, n, s, dropout=dropout))
            cin = w
        layers += [nn.BatchNorm2d(cin), nn.ReLU(), GlobalAvgPool()]
        super().__init__(nn.Sequential(*layers), nn.Linear(cin, num_classes))


BUILTIN_MODELS = {
    "digits-cnn": DigitsCNN,
    "resnet18": ResNet18,
    "preact-resnet18": PreActResNet18,
    "wrn-28-10": WideResNet,
}


def model_names() -> tuple[str, ...]:
    """Names `build_model` accepts: the built-ins, then those plugins register."""
    return tuple(BUILTIN_MODELS) + tuple(sorted(_plugin_models()))


def __getattr__(name):
    # MODELS is computed on access, so plugins are collected only when someone asks.
    if name == "MODELS":
        return model_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_model(arch: str, num_classes: int, in_channels: int | None = None, **kw) -> nn.Module:
    """A fresh (randomly initialised) model by architecture name; extra kwargs go to its class."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if in_channels is not None:
        kw["in_channels"] = in_channels
    if arch in BUILTIN_MODELS:
        return BUILTIN_MODELS[arch](num_classes=num_classes, **kw)
    plugins = _plugin_models()
    if arch not in plugins:
        raise ValueError(f"unknown model architecture {arch!r}; known: {', '.join(model_names())}")
    model = plugins[arch](num_classes=num_classes, **kw)
    if not isinstance(model, nn.Module) or not isinstance(getattr(model, "head", None), nn.Linear):
        raise ValueError(
            f"plugin model {arch!r} must be an nn.Module with `features` and a Linear `head`"
        )
    if not callable(getattr(model, "features", None)):
        raise ValueError(f"plugin model {arch!r} has no callable `features`")
    return model


def _plugin_models() -> dict:
    from yw_core.hooks import collect

    found = collect("yw_register_models")
    for name, factory in found.items():
        if name in BUILTIN_MODELS:
            who = (
                f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', factory)}"
            )
            raise ValueError(
                f"model {name!r} registered by a plugin ({who}) collides with the built-in "
                f"model {name!r} ({BUILTIN_MODELS[name].__qualname__}) of yw_core.models; "
                "the plugin must use another name"
            )
    return found


def seeded_model(
    arch: str,
    classes: int,
    channels: int,
    seed: int,
    batchnorm: bool = True,
    norm_embedding: bool = False,
):
    """A fresh model with initial weights fixed by `seed`, as every training protocol builds it;
    `digits-cnn` gets BatchNorm after its convolutions unless `batchnorm` is False (the papers'
    nets normalise), and on its embedding too with `norm_embedding`."""
    torch.manual_seed(seed)
    kw = {}
    if arch == "digits-cnn":
        kw = {"batchnorm": batchnorm, "norm_embedding": norm_embedding}
    return build_model(arch, classes, in_channels=channels, **kw)
