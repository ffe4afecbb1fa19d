"""Shared by the low-dimensional-gradient tests: a ~4.5k-parameter MLP trained on digits 0-4
(in-distribution) and the digits 5-9 of the test split (OOD)."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from yw_core.models import SplitClassifier


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one intra-op thread is faster than two, more so on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def mlp(seed: int = 0) -> SplitClassifier:
    """A 64-64 ReLU backbone and a 5-class head: 4,485 parameters."""
    torch.manual_seed(seed)
    features = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU())
    return SplitClassifier(features, nn.Linear(64, 5))


@pytest.fixture(scope="session")
def digits_ood():
    """(fit, id_x, ood_x): the train split's digits 0-4 as a Dataset of (x, y) (675 images),
    the test split's digits 0-4 (226) and 5-9 (224)."""
    from yw_core.data import load_dataset

    (x, y), (xt, yt) = (
        load_dataset("digits", "train").tensors,
        load_dataset("digits", "test").tensors,
    )
    return TensorDataset(x[y < 5], y[y < 5]), xt[yt < 5], xt[yt >= 5]


@pytest.fixture(scope="session")
def trained_mlp(digits_ood):
    """`mlp()` trained on the fit digits (50 full-batch Adam steps; ~99% ID test accuracy), in
    eval mode. Tests must not change it."""
    fit, _, _ = digits_ood
    model = mlp(0)
    x, y = fit.tensors
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(50):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    return model.eval()


@pytest.fixture
def runtime():
    from yw_core.runtime import Runtime

    return Runtime(device="cpu", seed=0, distributed=False)
