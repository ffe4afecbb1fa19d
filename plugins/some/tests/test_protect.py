"""SOME.protect trains a tiny multi-head model; bad input fails clearly; certification works on
the returned model through yw_core's CERTIFY."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from scipy.stats import norm
from torch import nn
from torch.utils.data import TensorDataset

from yw_core.metrics.smoothing import certify, lower_confidence_bound
from yw_core.runtime import Runtime
from yw_core.testing import tiny_classifier, tiny_dataset
from yw_plugin_some import SOME, MultiHeadClassifier

FAST = {"epochs": 2, "batch_size": 16, "heads": 3, "progress": False}


def runtime(seed: int = 0) -> Runtime:
    return Runtime(device="cpu", seed=seed, distributed=False)


def test_protect_trains_and_returns_a_working_multihead_model():
    model, data = tiny_classifier(), tiny_dataset(64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    method = SOME(**FAST)
    protected = method.protect(model, data=data, runtime=runtime())
    assert isinstance(protected, MultiHeadClassifier) and not protected.training
    assert protected.num_heads == 3
    x = data.tensors[0][:8]
    out = protected(x)
    assert out.shape == (8, 4) and torch.isfinite(out).all()
    assert [row["epoch"] for row in method.history] == [1, 2]
    assert [row["lambda"] for row in method.history] == pytest.approx(
        [torch.log(torch.tensor(4.0)).item(), 1.2]
    )
    assert all(row["train_loss"] > 0 and row["head_cos2"] >= 0 for row in method.history)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not torch.equal(protected.features[1].weight, model.features[1].weight)


def test_same_seed_same_model():
    a = SOME(**FAST).protect(tiny_classifier(), data=tiny_dataset(32), runtime=runtime())
    b = SOME(**FAST).protect(tiny_classifier(), data=tiny_dataset(32), runtime=runtime())
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(v, w), k


def test_training_fits_noisy_data_better_than_chance():
    """Separable data (class = brightest quadrant): the summed heads learn it under noise."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (256,), generator=g)
    x = 0.2 * torch.rand(256, 1, 8, 8, generator=g)
    for c in range(4):
        r, col = divmod(c, 2)
        x[y == c, :, 4 * r : 4 * r + 4, 4 * col : 4 * col + 4] += 0.7
    data = TensorDataset(x, y)
    method = SOME(epochs=8, batch_size=32, heads=3, progress=False)
    net = method.protect(tiny_classifier(), data=data, runtime=runtime())
    with torch.no_grad():
        noisy = (x + 0.25 * torch.randn(x.shape, generator=g)).clamp(0, 1)
        accuracy = (net(noisy).argmax(1) == y).float().mean()
    assert method.history[-1]["train_loss"] < 0.5 * method.history[0]["train_loss"]
    assert accuracy > 0.9


def test_the_cosine_constraint_keeps_the_heads_apart():
    """Same seed and data: the constrained run ends with smaller pairwise cosines."""
    data = tiny_dataset(64)
    runs = {}
    for weight in (0.0, 1.0):
        method = SOME(**{**FAST, "epochs": 4}, cosine_weight=weight)
        method.protect(tiny_classifier(), data=data, runtime=runtime())
        runs[weight] = method.history[-1]["head_cos2"]
    assert runs[1.0] < 0.5 * runs[0.0]


@pytest.mark.parametrize("variant", ["consistency", "smoothmix"])
def test_variants_train(variant):
    method = SOME(**{**FAST, "epochs": 1}, variant=variant)
    net = method.protect(tiny_classifier(), data=tiny_dataset(32), runtime=runtime())
    assert torch.isfinite(net(tiny_dataset(4).tensors[0])).all()
    assert method.history[0]["train_loss"] > 0


def test_paper_values_follow_variant_and_sigma():
    assert SOME().resolved() == {
        "lambda_last": 1.2,
        "consistency_lambda": 20.0,
        "smoothmix_alpha": 0.5,
        "smoothmix_mix_step": 0,
    }
    assert SOME(variant="smoothmix", sigma=1.0).resolved()["lambda_last"] == 1.6
    assert SOME(variant="consistency", sigma=0.5).resolved()["consistency_lambda"] == 10.0
    assert SOME(sigma=0.45, lambda_last=2.0).resolved()["lambda_last"] == 2.0


def _constant_heads(net: MultiHeadClassifier, biases: list[list[float]]) -> MultiHeadClassifier:
    with torch.no_grad():
        for head, bias in zip(net.head.members, biases):
            head.weight.zero_()
            head.bias.copy_(torch.tensor(bias))
    return net


def test_certify_a_constant_protected_model_gives_sigma_phi_inverse_of_p_lower():
    net = SOME(**{**FAST, "epochs": 1}).protect(
        tiny_classifier(), data=tiny_dataset(32), runtime=runtime()
    )
    _constant_heads(net, [[0, 0, 1, 0]] * 3)
    x = torch.rand(1, 8, 8)
    cls, radius = certify(
        net, x, 0.25, n0=100, n=1000, alpha=0.001, generator=runtime().generator()
    )
    assert cls == 2
    assert radius == pytest.approx(0.25 * norm.ppf(lower_confidence_bound(1000, 1000, 0.001)))


def test_certification_smooths_the_sum_of_logits_not_a_vote():
    """Two heads prefer class 0 a little, one prefers class 1 a lot: the sum says 1."""
    net = MultiHeadClassifier(nn.Flatten(), [nn.Linear(64, 2) for _ in range(3)]).eval()
    _constant_heads(net, [[1.0, 0.0], [1.0, 0.0], [0.0, 5.0]])
    cls, _ = certify(net, torch.rand(1, 8, 8), 0.25, n0=10, n=100, generator=runtime().generator())
    assert cls == 1


class NoSplit(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))

    def forward(self, x):
        return self.body(x)


@pytest.mark.parametrize(
    "overrides, message",
    [({"sigma": 0.0}, "sigma"), ({"sigma": -0.25}, "sigma"), ({"heads": 0}, "heads")],
)
def test_bad_config_is_rejected_by_name(overrides, message):
    with pytest.raises(ValidationError, match=message):
        SOME(**overrides)


def test_bad_input_fails_clearly():
    rt, data = runtime(), tiny_dataset(16)
    with pytest.raises(ValueError, match="training-time defense: pass the training data"):
        SOME(**FAST).protect(tiny_classifier(), runtime=rt)
    with pytest.raises(ValueError, match=r"\.features.*\.head.*SplitClassifier"):
        SOME(**FAST).protect(NoSplit(), data=data, runtime=rt)
    with pytest.raises(ValueError, match=r"batch_size \(1\) must be at least noise_copies \(2\)"):
        SOME(**{**FAST, "batch_size": 1}).protect(tiny_classifier(), data=data, runtime=rt)
    x, y = data.tensors
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        SOME(**FAST).protect(tiny_classifier(), data=TensorDataset(x * 255, y), runtime=rt)
    with pytest.raises(ValueError, match="label 7 but the model has 4 classes"):
        SOME(**FAST).protect(tiny_classifier(), data=TensorDataset(x, y + 4), runtime=rt)
