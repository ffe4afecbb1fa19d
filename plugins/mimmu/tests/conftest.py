"""Shared by the MiM-MU tests: a digits DDPM trained briefly (1,000 steps, about 15 s on two
cores) in a temporary cache, the zoo's digits classifier, and class 3's forget set."""

import pytest
import torch
from torch.utils.data import TensorDataset

CONCEPT = 3


@pytest.fixture(scope="session")
def runtime():
    from yw_core.runtime import Runtime

    return Runtime(device="cpu", seed=0, distributed=False)


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("yw-cache")


@pytest.fixture(scope="session")
def ddpm(runtime, cache):
    """The pre-trained model: a DigitsDDPM, 1,000 Adam steps, seed 0. Do not change it."""
    from yw_core.diffusion import reference_ddpm

    return reference_ddpm(0, runtime, cache_dir=cache, progress=False, steps=1000)


@pytest.fixture(scope="session")
def classifier(runtime, cache):
    from yw_core.zoo import reference_model

    return reference_model("digits", "digits-cnn", 0, runtime, cache_dir=cache, progress=False)


@pytest.fixture(scope="session")
def forget(ddpm):
    """256 of the DDPM's own generations of class 3 (guidance 2), labelled 3."""
    concept = torch.full((256,), CONCEPT)
    x = ddpm.sample(concept, 2.0, torch.Generator().manual_seed(1))
    return TensorDataset(x, concept)


@pytest.fixture(scope="session")
def real_test():
    """The digits test split of seed 0 in the model's space [-1, 1], and its labels."""
    from yw_core.data import load_dataset
    from yw_core.diffusion import from_unit

    x, y = load_dataset("digits", "test", seed=0).tensors
    return from_unit(x), y.long()
