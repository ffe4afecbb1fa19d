"""Shared by the DIO tests."""

import pytest
import torch
from torch import nn

from yw_core.models import SplitClassifier


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one intra-op thread is faster than two, more so on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def mlp():
    """mlp(): a digits-sized SplitClassifier, a 64-32 ReLU backbone and a 10-class head."""

    def build(seed: int = 0) -> SplitClassifier:
        torch.manual_seed(seed)
        features = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU())
        return SplitClassifier(features, nn.Linear(32, 10))

    return build


@pytest.fixture(scope="session")
def digits():
    """The embedded digits train split (1,347 8x8 images in [0, 1], 10 classes)."""
    from yw_core.data import load_dataset

    return load_dataset("digits", "train")
