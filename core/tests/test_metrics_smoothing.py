"""yw_core.metrics randomized smoothing: the spec's test vectors and a closed-form linear case."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import binomtest

from yw_core.metrics import (
    average_certified_radius,
    certified_accuracy,
    certify,
    lower_confidence_bound,
    predict,
)


class Scripted(torch.nn.Module):
    """Ignores its input and predicts a fixed sequence of classes, so counts are known exactly."""

    def __init__(self, classes: list[int], num_classes: int = 3):
        super().__init__()
        self.classes, self.num_classes, self.seen = torch.tensor(classes), num_classes, 0

    def forward(self, x):
        labels = self.classes[self.seen : self.seen + len(x)]
        self.seen += len(x)
        return torch.nn.functional.one_hot(labels, self.num_classes).float()


class Linear(torch.nn.Module):
    """Binary linear classifier: class 1 iff w.x + b > 0."""

    def __init__(self, w: torch.Tensor, b: float):
        super().__init__()
        self.w, self.b = w, b

    def forward(self, x):
        z = x.flatten(1) @ self.w + self.b
        return torch.stack([-z, z], dim=1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_spec_vectors_lower_bound():
    assert lower_confidence_bound(100_000, 100_000, 0.001) == pytest.approx(0.9999309248, abs=1e-10)
    assert lower_confidence_bound(99_000, 100_000, 0.001) == pytest.approx(0.98898934, abs=1e-8)
    assert lower_confidence_bound(60, 100, 0.001) == pytest.approx(0.44098, abs=1e-5)
    assert lower_confidence_bound(0, 100, 0.001) == 0.0


@pytest.mark.parametrize(
    "n_a, n, expected",
    [(100_000, 100_000, (2, 0.95286)), (99_000, 100_000, (2, 0.57250)), (60, 100, (-1, 0.0))],
)
def test_spec_vectors_certify(n_a, n, expected):
    n0 = 100
    model = Scripted([2] * n0 + [2] * n_a + [0] * (n - n_a))
    cls, radius = certify(model, torch.zeros(2), 0.25, n0=n0, n=n, batch_size=4096, generator=gen())
    assert model.seen == n0 + n
    assert cls == expected[0]
    assert radius == pytest.approx(expected[1], abs=5e-6)


def test_certify_guesses_the_class_from_the_first_n0_samples():
    model = Scripted([1] * 60 + [0] * 40 + [0] * 1000)  # n0 votes 1; the estimation sees only 0s
    assert certify(model, torch.zeros(2), 0.25, n0=100, n=1000, generator=gen()) == (-1, 0.0)


@pytest.mark.parametrize("top, alpha, expected", [(60, 0.001, -1), (60, 0.1, 1), (70, 0.001, 1)])
def test_spec_vectors_predict(top, alpha, expected):
    assert binomtest(60, 100).pvalue == pytest.approx(0.05689, abs=1e-5)
    assert binomtest(70, 100).pvalue == pytest.approx(7.85e-5, abs=1e-7)
    classes = [1] * top + [2] * (100 - top - 5) + [0] * 5  # class 0 is third: not in the test
    model = Scripted(classes)
    assert predict(model, torch.zeros(2), 0.25, n=100, alpha=alpha, generator=gen()) == expected


class Recorder:
    """Records every noisy batch it is given; always predicts class 0."""

    def __init__(self):
        self.batches = []

    def __call__(self, batch):
        self.batches.append(batch.clone())
        return torch.zeros(len(batch), 2)


def test_noise_is_gaussian_in_input_space_and_seeded():
    x = torch.full((3, 4, 4), 0.02)
    first, second = Recorder(), Recorder()
    certify(first, x, 0.5, n0=10, n=5000, batch_size=1000, generator=gen(7))
    certify(second, x, 0.5, n0=10, n=5000, batch_size=1000, generator=gen(7))
    seen = torch.cat(first.batches)
    assert len(first.batches) == 6  # the n0 batch, then 5 batches of 1000
    assert seen.shape == (5010, 3, 4, 4)
    noise = seen - x
    assert noise.mean().item() == pytest.approx(0.0, abs=0.01)
    assert noise.std().item() == pytest.approx(0.5, rel=0.01)
    assert seen.min() < 0  # not clipped to [0, 1]
    assert torch.equal(torch.cat(second.batches), seen)  # same seed, same noise


def test_closed_form_linear_radius():
    """For a linear f, g's exact radius is the distance d to the hyperplane; with n = 1e5 samples
    the certified radius is at most d (w.p. >= 1 - alpha) and at least 0.95 d."""
    sigma, dim = 0.25, 10
    w = torch.randn(dim, generator=gen(1))
    b = 0.3
    centre = torch.full((dim,), 0.5)
    unit = w / w.norm()
    z_centre = (centre @ w + b).item()
    for ratio, side in [(0.5, 1), (1.0, -1), (2.0, 1)]:
        d = ratio * sigma
        x = centre + (side * d - z_centre / w.norm().item()) * unit  # signed distance side * d
        assert abs((x @ w + b).item()) / w.norm().item() == pytest.approx(d, rel=1e-5)
        cls, radius = certify(Linear(w, b), x, sigma, n=100_000, batch_size=25_000, generator=gen())
        assert cls == (1 if side > 0 else 0)
        assert 0.95 * d <= radius <= d


def test_predict_on_linear_model():
    w, b = torch.ones(4), -2.0
    model = Linear(w, b)
    far = torch.full((4,), 0.9)  # distance 0.8 from the plane: class 1
    on_plane = torch.full((4,), 0.5)  # f votes 50/50 under noise: abstain
    assert predict(model, far, 0.25, n=10_000, batch_size=5000, generator=gen()) == 1
    assert predict(model, on_plane, 0.25, n=10_000, batch_size=5000, generator=gen()) == -1


def test_certified_accuracy_and_acr_by_hand():
    predictions = torch.tensor([0, 1, -1, 2])
    radii = torch.tensor([0.5, 0.2, 0.0, 1.0])
    y = torch.tensor([0, 1, 1, 0])  # correct: yes, yes, abstain, wrong
    assert certified_accuracy(predictions, radii, y, 0.0) == 0.5
    assert certified_accuracy(predictions, radii, y, 0.25) == 0.25
    assert certified_accuracy(predictions, radii, y, 0.6) == 0.0
    assert average_certified_radius(predictions, radii, y) == pytest.approx((0.5 + 0.2) / 4)


def test_validation():
    with pytest.raises(ValueError, match="n_a must be an integer in"):
        lower_confidence_bound(11, 10, 0.01)
    with pytest.raises(ValueError, match="alpha must lie in"):
        lower_confidence_bound(5, 10, 1.5)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        certify(Scripted([0] * 10), torch.zeros(2), 0.0, n0=5, n=5, generator=gen())
    with pytest.raises(ValueError, match=r"n0 \(selection samples, 6\) must not exceed n"):
        certify(Scripted([0] * 10), torch.zeros(2), 0.25, n0=6, n=5, generator=gen())
    with pytest.raises(ValueError, match="alpha must lie in"):
        certify(Scripted([0] * 10), torch.zeros(2), 0.25, n0=5, n=5, alpha=1.0, generator=gen())
    with pytest.raises(ValueError, match="seeded torch.Generator"):
        predict(Scripted([0] * 10), torch.zeros(2), 0.25, n=5, generator=None)
    with pytest.raises(ValueError, match="same length"):
        certified_accuracy(torch.tensor([0, 1]), torch.tensor([0.1]), torch.tensor([0, 1]), 0.0)
    with pytest.raises(ValueError, match="radius must be >= 0"):
        certified_accuracy(torch.tensor([0]), torch.tensor([0.1]), torch.tensor([0]), -1.0)
