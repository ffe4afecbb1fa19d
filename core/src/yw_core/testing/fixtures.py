"""Tiny models and data with known answers, for the conformance suites and plugins' tests.

Every function imports torch when called, so importing `yw_core.testing` stays light.
"""

from __future__ import annotations


def tiny_classifier(in_features: int = 64, num_classes: int = 4, seed: int = 0):
    """A two-part classifier (features, head) on 1x8x8 inputs, as the reference models are split."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(nn.Flatten(), nn.Linear(in_features, 16), nn.ReLU()))
    model.add_module("head", nn.Linear(16, num_classes))
    return model.eval()


def linear_model(scale: float = 1.0, seed: int = 0, classes: int = 10, generator=None):
    """The spec's analytic attack victim: z = W flatten(x) on 3x8x8 inputs, W ~ N(0, scale^2),
    bias 0. `model.weight` and `model.bias` are buffers a test may read or edit in place."""
    import torch

    from yw_core.testing.models import LinearClassifier

    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    return LinearClassifier(torch.randn(classes, 192, generator=g) * scale, torch.zeros(classes))


def uniform_inputs(n: int, seed: int = 1, generator=None):
    """n inputs of shape 3x8x8 uniform in [0.3, 0.7], so a small eps never clips at 0 or 1."""
    import torch

    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    return 0.3 + 0.4 * torch.rand(n, 3, 8, 8, generator=g)


def linear_problem(n: int = 16, seed: int = 0, classes: int = 10, scale: float = 0.1):
    """`linear_model` and `uniform_inputs` drawn from one generator, labelled with the model's
    own predictions: returns (model, x, y)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    model = linear_model(scale, classes=classes, generator=g)
    x = uniform_inputs(n, generator=g)
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def tiny_dataset(n: int = 32, num_classes: int = 4, seed: int = 0):
    """n random 1x8x8 images in [0, 1] with labels in [0, num_classes)."""
    import torch
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 8, 8, generator=g)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return TensorDataset(x, y)


def prototype_problem(n: int = 32, num_classes: int = 4, seed: int = 0):
    """A classifier that is confident on its own data by construction: returns (model, data).

    Inputs are 1x8x8 in [0, 1]. The model's `features` keep the top half of the image (32
    pixels) and ignore the bottom half; its `head` gives class c the sum of the c-th block of
    those pixels. Each sample of `data` (a TensorDataset of (x, y)) is faint noise with its
    class's block lit, so its logit margin is large, while a flat or a noisy image gets nearly
    equal logits. OOD scorers must rank `data` above such images; interpreters must give the
    bottom half no attribution.
    """
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset

    if 32 % num_classes:
        raise ValueError(f"num_classes must divide 32, got {num_classes}")
    block = 32 // num_classes
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU()))
    model.add_module("head", nn.Linear(32, num_classes))
    with torch.no_grad():
        model.features[1].weight.copy_(torch.eye(32, 64))
        model.features[1].bias.zero_()
        model.head.weight.copy_(torch.eye(num_classes).repeat_interleave(block, dim=1))
        model.head.bias.zero_()
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, num_classes, (n,), generator=g)
    x = 0.1 * torch.rand(n, 64, generator=g)
    for i, c in enumerate(y.tolist()):
        x[i, c * block : (c + 1) * block] = 1.0
    return model.eval(), TensorDataset(x.view(n, 1, 8, 8), y)


def random_features(schema, side: str, n: int, seed: int = 0):
    """n rows of random features for one side of a RecSchema: ids below each cardinality,
    standard-normal dense vectors."""
    import torch

    g = torch.Generator().manual_seed(seed)
    features = {}
    for field in schema.side_fields(side):
        if field.kind == "categorical":
            features[field.name] = torch.randint(0, field.cardinality, (n,), generator=g)
        else:
            features[field.name] = torch.randn(n, field.dim, generator=g)
    return features


def tiny_ddpm(num_classes: int = 4, seed: int = 0):
    """An untrained, small class-conditional `DigitsDDPM` (T = 10, width 16, one block) on
    1x8x8 inputs, for the diffusion unlearners' conformance tests."""
    import torch

    from yw_core.diffusion import DDPMRecipe, DigitsDDPM

    torch.manual_seed(seed)
    recipe = DDPMRecipe(seed=seed, timesteps=10, hidden=16, blocks=1, embed=4)
    return DigitsDDPM(recipe, num_classes=num_classes).eval()
