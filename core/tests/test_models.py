"""Reference models: the features/head split, output shapes, sizes of the standard architectures."""

import pytest
import torch
from torch import nn

from yw_core import hooks, models
from yw_core.models import WideResNet, build_model

CASES = [  # (name, model factory, input shape, features width)
    ("digits-cnn", lambda: build_model("digits-cnn", 10), (2, 1, 8, 8), 128),
    ("resnet18", lambda: build_model("resnet18", 10), (1, 3, 32, 32), 512),
    ("preact-resnet18", lambda: build_model("preact-resnet18", 100), (1, 3, 32, 32), 512),
    ("wrn-10-1", lambda: WideResNet(7, depth=10, widen_factor=1), (2, 3, 32, 32), 64),
    ("wrn-16-2-1ch", lambda: WideResNet(10, 1, depth=16, widen_factor=2), (2, 1, 32, 32), 128),
]


@pytest.fixture
def plugin_manager():
    pm = hooks.make_plugin_manager(load_entry_points=False)
    hooks.set_plugin_manager(pm)
    yield pm
    hooks.set_plugin_manager(None)


@pytest.mark.parametrize("name, make, shape, width", CASES, ids=[c[0] for c in CASES])
def test_forward_is_head_of_features(name, make, shape, width):
    torch.manual_seed(0)
    model = make().eval()
    x = torch.rand(*shape)
    n = shape[0]
    feats = model.features(x)
    assert feats.shape == (n, width) == (n, model.head.in_features)
    assert isinstance(model.head, nn.Linear)
    logits = model(x)
    assert logits.shape == (n, model.head.out_features)
    assert torch.allclose(logits, model.head(feats))


def test_in_channels_and_num_classes_are_respected():
    model = build_model("resnet18", num_classes=3, in_channels=1).eval()
    assert model(torch.rand(1, 1, 32, 32)).shape == (1, 3)
    assert build_model("digits-cnn", 4).head.out_features == 4


def test_standard_architectures_have_their_published_sizes():
    def count(m):
        return sum(p.numel() for p in m.parameters())

    assert count(build_model("resnet18", 10)) == 11_173_962  # CIFAR ResNet-18
    wrn = build_model("wrn-28-10", 10)
    assert count(wrn) == 36_479_194  # WRN-28-10, "36.5M" in Zagoruyko & Komodakis
    assert wrn.head.in_features == 640


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="unknown model architecture 'vgg16'; known: digits-cnn, "):
        build_model("vgg16", 10)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        build_model("resnet18", 0)
    with pytest.raises(ValueError, match="depth must be 6n \\+ 4"):
        WideResNet(depth=20)


def test_plugin_model_is_listed_and_built(plugin_manager):
    def tiny(num_classes, in_channels=1):
        return models.SplitClassifier(nn.Flatten(), nn.Linear(64 * in_channels, num_classes))

    class Plugin:
        @hooks.hookimpl
        def yw_register_models(self, register):
            register("tiny", tiny)
            register("headless", lambda num_classes: nn.Linear(64, num_classes))

    plugin_manager.register(Plugin())
    builtins = ("digits-cnn", "resnet18", "preact-resnet18", "wrn-28-10")
    assert models.MODELS == builtins + ("headless", "tiny")
    model = build_model("tiny", 5, in_channels=2)
    assert model(torch.rand(3, 2, 8, 8)).shape == (3, 5)
    with pytest.raises(ValueError, match="plugin model 'headless' must be an nn.Module with"):
        build_model("headless", 5)


def test_plugin_model_colliding_with_a_builtin_is_an_error(plugin_manager):
    class Plugin:
        @hooks.hookimpl
        def yw_register_models(self, register):
            register("resnet18", lambda num_classes: None)

    plugin_manager.register(Plugin())
    with pytest.raises(
        ValueError, match=r"'resnet18' registered by a plugin .* built-in .*ResNet18"
    ):
        build_model("anything", 10)


def test_eval_mode_restores_every_submodule_mode():
    from yw_core.models import eval_mode

    model = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.BatchNorm1d(3)).train()
    model[1].eval()  # a mixed state, as after freezing BN for fine-tuning
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
    assert model.training and model[0].training and not model[1].training
    try:
        with eval_mode(model):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert model[0].training and not model[1].training


def test_norm_embedding_ends_the_digits_cnn_in_batchnorm_and_relu():
    """The papers' backbones end in BatchNorm + ReLU: with `norm_embedding` the embedding is
    Linear (no bias) → BatchNorm1d → ReLU; without it the old unnormalised Linear + ReLU."""
    from torch import nn

    from yw_core.models import seeded_model

    normed = seeded_model("digits-cnn", 10, 1, 0, norm_embedding=True).features
    linear, norm, relu = list(normed)[-3:]
    assert isinstance(linear, nn.Linear) and linear.bias is None
    assert isinstance(norm, nn.BatchNorm1d) and norm.num_features == linear.out_features
    assert isinstance(relu, nn.ReLU)
    old = list(seeded_model("digits-cnn", 10, 1, 0).features)
    assert isinstance(old[-2], nn.Linear) and old[-2].bias is not None
    assert not any(isinstance(m, nn.BatchNorm1d) for m in old)
