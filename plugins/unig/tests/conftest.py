"""Shared by the UniG tests."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is faster than two, more so on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The trained digits CNN (cached in a temp dir, never the user's cache) and its data."""
    from yw_core.data import load_dataset
    from yw_core.runtime import Runtime
    from yw_core.zoo import reference_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YW_CACHE_DIR", str(tmp_path_factory.mktemp("yw-cache")))
        runtime = Runtime(device="cpu", seed=0, distributed=False)
        model = reference_model("digits", "digits-cnn", seed=0, runtime=runtime, progress=False)
        train = load_dataset("digits", "train", seed=0)
        test = load_dataset("digits", "test", seed=0)
    return model, train, test
