"""yw_core.ood: each shared OOD score against its definition (autograd, numpy, scikit-learn)."""

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors
from torch import nn

from yw_core import ood
from yw_core.models import SplitClassifier, split_parts


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(60, 6, generator=g)
    labels = torch.arange(60) % 3
    features[:, :3] += 3 * nn.functional.one_hot(labels, 3)
    head = nn.Linear(6, 3)
    return features, labels, head


def test_msp_and_energy_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    assert torch.allclose(ood.msp(logits), torch.tensor([1 / (1 + np.exp(-2)), 0.5]).float())
    assert torch.allclose(ood.energy(logits), torch.logsumexp(logits, 1))
    t = 4.0
    assert torch.allclose(ood.energy(logits, t), t * torch.logsumexp(logits / t, 1))
    assert torch.allclose(ood.msp(logits, t), torch.softmax(logits / t, 1).amax(1))


def test_odin_without_a_step_is_tempered_msp_and_its_step_raises_confidence(problem):
    features, _, head = problem
    plain = ood.odin(head, features, temperature=10.0, eps=0.0)
    assert torch.allclose(plain, ood.msp(head(features), 10.0))
    with torch.no_grad():  # the step takes its own gradient
        stepped = ood.odin(head, features, temperature=10.0, eps=0.01)
    assert (stepped >= plain - 1e-7).all() and (stepped > plain).any()
    assert not stepped.requires_grad


def test_gradnorm_closed_form_equals_autograd(problem):
    features, _, head = problem
    t = 2.0
    expected = []
    for z in features:
        head.zero_grad()
        loss = -torch.log_softmax(head(z[None]) / t, 1).sum()
        loss.backward()
        expected.append(head.weight.grad.abs().sum())
    assert torch.allclose(ood.gradnorm(features, head, t), torch.stack(expected), rtol=1e-5)
    with pytest.raises(TypeError, match="nn.Linear"):
        ood.gradnorm(features, nn.Sequential(head))


def test_react_threshold_is_the_percentile_and_clip_leaves_early_dims(problem):
    features, _, _ = problem
    c = ood.react_threshold(features, 90, start_dim=2)
    assert c == pytest.approx(np.percentile(features[:, 2:].numpy(), 90), rel=1e-6)
    clipped = ood.react_clip(features, c, start_dim=2)
    assert torch.equal(clipped[:, :2], features[:, :2])
    assert torch.equal(clipped[:, 2:], features[:, 2:].clamp(max=c))
    with pytest.raises(ValueError, match="start_dim"):
        ood.react_threshold(features, 90, start_dim=6)
    with pytest.raises(ValueError, match="percentile"):
        ood.react_threshold(features, 0)


def test_mahalanobis_equals_explicit_tied_gaussians(problem):
    features, labels, _ = problem
    x, y = features.double().numpy(), labels.numpy()
    means = np.stack([x[y == c].mean(0) for c in range(3)])
    centred = x - means[y]
    precision = np.linalg.pinv(centred.T @ centred / len(x))
    queries = features[:10].double().numpy() + 0.5
    diff = queries[:, None] - means[None]
    expected = -np.einsum("ncd,de,nce->nc", diff, precision, diff).min(1)
    scores = ood.Mahalanobis().fit(features, labels).score(features[:10] + 0.5)
    assert np.allclose(scores.numpy(), expected, rtol=1e-4)
    with pytest.raises(ValueError, match="2 classes"):
        ood.Mahalanobis().fit(features, torch.zeros(60))


def test_knn_equals_scikit_learn_on_normalised_features(problem):
    features, _, _ = problem
    bank, queries = features[:40], features[40:] * 3
    normalise = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    nn_index = NearestNeighbors(n_neighbors=5).fit(normalise(bank.numpy()))
    distances, _ = nn_index.kneighbors(normalise(queries.numpy()))
    scores = ood.KNN(5, chunk_size=7).fit(bank).score(queries)
    assert np.allclose(scores.numpy(), -distances[:, -1], atol=1e-5)
    with pytest.raises(ValueError, match="at least 50"):
        ood.KNN(50).fit(bank)


def test_split_parts_names_what_is_missing():
    model = SplitClassifier(nn.Flatten(), nn.Linear(4, 2))
    assert split_parts(model, "KNN") == (model.features, model.head)
    with pytest.raises(ValueError, match=r"KNN needs .*`\.features`.*Sequential"):
        split_parts(nn.Sequential(nn.Linear(4, 2)), "KNN")
