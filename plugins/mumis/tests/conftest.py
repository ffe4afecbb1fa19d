"""Shared by the MU-Mis tests: a digits CNN (with BatchNorm, as the bench trains it) on the train
split, and its class-3 forget set."""

import pytest
from torch.utils.data import TensorDataset


@pytest.fixture(scope="session")
def digits():
    """(train, test) Datasets of (x, y) of scikit-learn's digits, seed 0."""
    from yw_core.data import load_dataset

    return load_dataset("digits", "train", seed=0), load_dataset("digits", "test", seed=0)


@pytest.fixture(scope="session")
def trained(digits):
    """(model, forget, retain): `digits-cnn` trained 20 epochs (SGD lr 0.1, batch 64; 100%
    train accuracy) in eval mode, the train split's class 3 and the rest. Do not change it."""
    from yw_core.models import seeded_model
    from yw_core.runtime import Runtime
    from yw_core.train import TrainConfig, fit

    train, _ = digits
    runtime = Runtime(device="cpu", seed=0, distributed=False)
    runtime.seed_everything()
    model = seeded_model("digits-cnn", 10, 1, 0)
    config = TrainConfig(epochs=20, batch_size=64, lr=0.1, progress=False)
    model = fit(model, train, runtime=runtime, config=config).model.eval()
    x, y = train.tensors
    return model, TensorDataset(x[y == 3], y[y == 3]), TensorDataset(x[y != 3], y[y != 3])


@pytest.fixture
def runtime():
    from yw_core.runtime import Runtime

    return Runtime(device="cpu", seed=0, distributed=False)
