"""DIONet: a random path per call (the paper's inference), a fixed path on request."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from yw_plugin_dio import DIONet, OrthoHeads


def make_net(seed: int = 0, L: int = 5) -> DIONet:
    heads = OrthoHeads(16, 4, L, generator=torch.Generator().manual_seed(0))
    features = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU())
    return DIONet(features, heads, seed=seed).eval()


def draws(net: DIONet, x: torch.Tensor, n: int = 40) -> list[int]:
    sequence = []
    with torch.no_grad():
        for _ in range(n):
            out = net(x)
            sequence.append(net.last_path)
            assert torch.equal(out, net.paths(x)[net.last_path])
    return sequence


def test_each_call_draws_one_path_for_the_whole_batch_and_calls_differ():
    torch.manual_seed(0)
    net, x = make_net(), torch.rand(8, 1, 8, 8)
    sequence = draws(net, x)
    assert set(sequence) == set(range(5))  # 40 draws from 5 paths reach every path


def test_same_seed_same_path_sequence_and_another_seed_another():
    torch.manual_seed(0)
    x = torch.rand(8, 1, 8, 8)
    torch.manual_seed(1)
    first = draws(make_net(seed=3), x)
    torch.manual_seed(2)  # the global RNG does not matter: the net has its own generator
    assert draws(make_net(seed=3), x) == first
    assert draws(make_net(seed=4), x) != first


def test_a_fixed_path_mode_and_a_per_call_path():
    torch.manual_seed(0)
    net, x = make_net(), torch.rand(8, 1, 8, 8)
    all_paths = net.paths(x)
    assert all_paths.shape == (5, 8, 4)
    net.mode = 2
    assert draws(net, x, 5) == [2] * 5
    assert torch.equal(net(x, path=4), all_paths[4])
    assert torch.equal(net(x, path="all"), all_paths)
    net.mode = "random"
    assert net.mode == "random"


@pytest.mark.parametrize("mode", [5, -1, "all", "mean", 1.0, True])
def test_a_bad_mode_names_the_choices(mode):
    net = make_net()
    with pytest.raises(ValueError, match=r"path must be 'random' or a path index in \[0, 5\)"):
        net.mode = mode
