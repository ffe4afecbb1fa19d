"""Shared by the LAS tests: a CPU runtime and scikit-learn's digits."""

import pytest


@pytest.fixture
def runtime():
    from yw_core.runtime import Runtime

    return Runtime(device="cpu", seed=0, distributed=False)


@pytest.fixture(scope="session")
def digits():
    """(train, test) TensorDatasets of (x, y) of scikit-learn's digits, seed 0."""
    from yw_core.data import load_dataset

    return load_dataset("digits", "train", seed=0), load_dataset("digits", "test", seed=0)
