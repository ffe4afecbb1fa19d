"""Shared by the TWA tests."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one intra-op thread is faster than two, more so on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _perturbed(model, n: int = 3, scale: float = 0.05, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    return [
        {
            name: p.detach().cpu() + scale * torch.randn(p.shape, generator=g)
            for name, p in model.named_parameters()
        }
        for _ in range(n)
    ]


@pytest.fixture
def perturbed():
    """perturbed(model, n=3, scale=0.05, seed=0): n noisy copies of the model's parameters,
    which are linearly independent checkpoints."""
    return _perturbed
