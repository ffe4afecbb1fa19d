"""The multi-head network: the sum of head logits from one trunk pass, fresh heads, and the
split it needs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from yw_core.models import build_model
from yw_core.testing import tiny_classifier
from yw_plugin_some import MultiHeadClassifier, build_multihead


def test_forward_is_the_sum_of_the_heads_from_one_trunk_pass():
    net = build_multihead(tiny_classifier(), 3)
    calls = []
    net.features.register_forward_hook(lambda *_: calls.append(1))
    x = torch.rand(5, 1, 8, 8)
    out = net(x)
    assert len(calls) == 1
    heads = net.heads(x)
    assert len(calls) == 2 and len(heads) == 3 == net.num_heads
    torch.testing.assert_close(out, heads[0] + heads[1] + heads[2])
    torch.testing.assert_close(net.head(net.features(x)), out)


def test_heads_are_fresh_independent_copies_and_the_model_is_left_unchanged():
    model = tiny_classifier()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    net = build_multihead(model, 3, seed=0)
    weights = [h.weight for h in net.head.members]
    assert all(isinstance(h, nn.Linear) for h in net.head.members)
    assert not torch.equal(weights[0], weights[1]) and not torch.equal(weights[1], weights[2])
    assert not any(torch.equal(w, model.head.weight) for w in weights)
    torch.testing.assert_close(net.features[1].weight, model.features[1].weight)
    assert net.features[1].weight is not model.features[1].weight
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    again = build_multihead(model, 3, seed=0)
    assert all(
        torch.equal(a.weight, b.weight) for a, b in zip(net.head.members, again.head.members)
    )


def test_private_layers_move_the_end_of_the_features_into_every_head():
    model = build_model("digits-cnn", 10, batchnorm=True)
    net = build_multihead(model, 2, private_layers=2)  # the 128-unit Linear + ReLU
    assert len(net.features) == len(model.features) - 2
    head = net.head.members[0]
    assert [type(m) for m in head] == [nn.Linear, nn.ReLU, nn.Linear]
    assert not torch.equal(head[0].weight, net.head.members[1][0].weight)
    assert net(torch.rand(4, 1, 8, 8)).shape == (4, 10)


def test_a_model_without_the_split_fails_clearly():
    with pytest.raises(ValueError, match=r"\.features.*\.head.*SplitClassifier.*has no \.features"):
        build_multihead(nn.Sequential(nn.Flatten(), nn.Linear(64, 4)), 3)
    with pytest.raises(ValueError, match=r"private_layers=9.*nn.Sequential of more than 9"):
        build_multihead(tiny_classifier(), 2, private_layers=9)
    with pytest.raises(ValueError, match="heads must be >= 1"):
        build_multihead(tiny_classifier(), 0)


def test_multihead_classifier_takes_any_trunk_and_heads():
    net = MultiHeadClassifier(nn.Flatten(), [nn.Linear(64, 3), nn.Linear(64, 3)])
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, 3)
