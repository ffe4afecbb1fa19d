"""Shared by the AAA tests: one thread (tiny tensors) and a private model cache."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread is faster than two, more so on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Reference models are trained into a temporary cache, never the user's."""
    monkeypatch.setenv("YW_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "yw-cache"))
