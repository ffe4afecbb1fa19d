"""The spec's invariants: user tokens never see the items, serving equals full scoring, token
mixing is the head transpose, Information Compensation starts as plain UG-Sep, and W8A16
stays within its dequantisation bound."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from yw_core.testing.fixtures import random_features
from yw_plugin_ugsep import Int8PerTokenFFN, RankMixer, UGSep, quantize_int8
from yw_plugin_ugsep.mixer import PerTokenFFN, token_mix
from yw_plugin_ugsep.quant import fused_kernel_available

SIZES = {"tokens": 8, "width": 64, "layers": 2}  # the spec's Config S


def built(cls, schema, seed=0, dtype=torch.float32, **overrides):
    """An eval-mode network whose compensation maps are random (they start at zero), so that
    the tests see Information Compensation at work."""
    torch.manual_seed(seed)
    net = cls(**{**SIZES, **overrides}).build(schema).to(dtype).eval()
    for layer in net.layers:
        if layer.compensate is not None:
            torch.nn.init.normal_(layer.compensate.weight, std=0.05)
    return net


def request(schema, candidates, seed=0, dtype=torch.float32):
    user = random_features(schema, "user", 1, seed)
    items = random_features(schema, "item", candidates, seed + 1)
    for features in (user, items):
        for k, v in features.items():
            if v.dtype.is_floating_point:
                features[k] = v.to(dtype)
    return user, items


def repeated(user, n):
    return {k: v.expand(n, *v.shape[1:]) for k, v in user.items()}


UGSEP_VARIANTS = [
    {},
    {"compensation": False},
    {"ug_ratio": "3:1"},
    {"ug_ratio": "1:3"},
    {"ug_ratio": "3:1", "layers": 3},
]


@pytest.mark.parametrize("overrides", UGSEP_VARIANTS)
def test_user_tokens_do_not_depend_on_the_items(schema, overrides):
    net = built(UGSep, schema, **overrides)
    u = net.user_tokens
    user, items = request(schema, 16)
    other = random_features(schema, "item", 16, seed=99)
    with torch.no_grad():
        first = net.layer_states(repeated(user, 16), items)
        second = net.layer_states(repeated(user, 16), other)
    assert len(first) == net_layers(net)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a[:, :u], b[:, :u])
        assert not torch.equal(a[:, u:], b[:, u:])  # the item tokens do change


def net_layers(net):
    return len(net.layers)


@pytest.mark.parametrize("overrides", UGSEP_VARIANTS)
def test_nan_item_tokens_leave_the_user_tokens_exact(schema, overrides):
    """The mask is a where, not a product: NaN in every item token stays out of the user side."""
    net = built(UGSep, schema, **overrides)
    u = net.user_tokens
    user, items = request(schema, 8)
    with torch.no_grad():
        x = net.tokenize(repeated(user, 8), items)
        poisoned = x.clone()
        poisoned[:, u:] = float("nan")
        clean, dirty = net.encode(x), net.encode(poisoned)
    for a, b in zip(clean, dirty, strict=True):
        assert torch.equal(a[:, :u], b[:, :u])
        assert b[:, u:].isnan().all()


def test_user_states_have_zero_gradient_with_respect_to_the_items(schema):
    net = built(UGSep, schema)
    u = net.user_tokens
    user, items = request(schema, 8)
    x = net.tokenize(repeated(user, 8), items).detach().requires_grad_()
    states = net.encode(x)
    for state in states:
        (grad,) = torch.autograd.grad(state[:, :u].sum(), x, retain_graph=True)
        assert torch.count_nonzero(grad[:, u:]) == 0
        assert torch.count_nonzero(grad[:, :u]) > 0
    # and through the embeddings: no item table gets a gradient from the user side
    net.zero_grad()
    states = net.layer_states(repeated(user, 8), items)
    states[-1][:, :u].sum().backward()
    for name, table in net.item_embedding.tables.items():
        assert table.weight.grad is None or not table.weight.grad.any(), name
    assert net.user_embedding.tables["user_id"].weight.grad.any()


def test_negative_control_rankmixer_user_positions_see_the_items(schema):
    """Without the mask the first tokens depend on the items: the checks above would fail."""
    net = built(RankMixer, schema)
    user, items = request(schema, 8)
    other = random_features(schema, "item", 8, seed=99)
    with torch.no_grad():
        a = net.layer_states(repeated(user, 8), items)[0]
        b = net.layer_states(repeated(user, 8), other)[0]
    assert not torch.equal(a[:, :4], b[:, :4])


@pytest.mark.parametrize("cls, overrides", [(RankMixer, {})] + [(UGSep, o) for o in UGSEP_VARIANTS])
def test_serve_equals_full_scoring_fp32(schema, cls, overrides):
    net = built(cls, schema, **overrides)
    for candidates in (1, 7, 300):
        user, items = request(schema, candidates, seed=candidates)
        with torch.no_grad():
            served = net.serve(user, items)
            full = net(repeated(user, candidates), items)
        assert served.shape == (candidates,)
        torch.testing.assert_close(served, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("overrides", UGSEP_VARIANTS)
def test_serve_equals_full_scoring_fp64(schema, overrides):
    net = built(UGSep, schema, dtype=torch.float64, **overrides)
    user, items = request(schema, 50, dtype=torch.float64)
    with torch.no_grad():
        diff = (net.serve(user, items) - net(repeated(user, 50), items)).abs().max()
    assert diff < 1e-10


def test_token_mixing_is_the_head_transpose():
    t, head = 4, 3
    x = torch.arange(2 * t * t * head, dtype=torch.float32).view(2, t, t * head)
    mixed = token_mix(x)
    for h in range(t):
        expected = torch.cat([x[:, s, h * head : (h + 1) * head] for s in range(t)], 1)
        assert torch.equal(mixed[:, h], expected)
    assert torch.equal(token_mix(mixed), x)  # with H = T, mixing twice is the identity


def test_each_chunk_feeds_only_its_own_token(schema):
    net = built(RankMixer, schema)
    proj = net.projection
    e = torch.randn(3, proj.weight.shape[0] * proj.chunk - proj.pad)
    base = proj(e)
    bumped = e.clone()
    bumped[:, proj.chunk * 2] += 1.0  # the first value of chunk 2
    changed = (proj(bumped) - base).abs().sum((0, 2)) > 0
    assert changed.tolist() == [t == 2 for t in range(proj.tokens)]


def test_compensation_starts_as_plain_ugsep(schema):
    """W_c is zero-initialised: a fresh UG-Sep with compensation scores as without it."""
    torch.manual_seed(0)
    net = UGSep(**SIZES).build(schema).eval()
    user, items = request(schema, 20)
    with torch.no_grad():
        with_ic = net.serve(user, items)
        for layer in net.layers:
            layer.compensate = None
        without = net.serve(user, items)
    assert torch.equal(with_ic, without)


def test_compensation_is_trained(schema):
    """Zero-initialised W_c still gets a gradient from the task loss."""
    torch.manual_seed(0)
    net = UGSep(**SIZES).build(schema).train()
    user = random_features(schema, "user", 32, 1)
    items = random_features(schema, "item", 32, 2)
    labels = (items["item_id"] % 2).float()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(net(user, items), labels)
    loss.backward()
    assert all(layer.compensate.weight.grad.abs().sum() > 0 for layer in net.layers)


def test_serving_flops_fall_towards_the_item_share(schema):
    """Per request the blocks cost about C·c_g + c_u tokens instead of C·T: at 1:1 and 256
    candidates UG-Sep's counted FLOPs are a little over half of RankMixer's."""
    user, items = request(schema, 256)
    flops = {}
    for name, net in (("rankmixer", built(RankMixer, schema)), ("ugsep", built(UGSep, schema))):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net.serve(user, items)
        flops[name] = counter.get_total_flops()
    assert 0.45 < flops["ugsep"] / flops["rankmixer"] < 0.6


def test_w8a16_weights_are_within_half_a_step(schema):
    net = built(UGSep, schema)
    quantised = net.w8a16()
    for layer, qlayer in zip(net.layers, quantised.layers, strict=True):
        assert isinstance(qlayer.ffn, Int8PerTokenFFN)
        assert qlayer.ffn.q1.dtype == torch.int8 and qlayer.ffn.q2.dtype == torch.int8
        w1, w2 = qlayer.ffn.weights(slice(None), torch.float32)
        b1, b2 = qlayer.ffn.dequantisation_error_bound()
        # half a step, plus float32 rounding of q·s (an ulp of the weight)
        assert ((w1 - layer.ffn.w1).abs() <= b1 + 1e-7 * layer.ffn.w1.abs().max()).all()
        assert ((w2 - layer.ffn.w2).abs() <= b2 + 1e-7 * layer.ffn.w2.abs().max()).all()
    assert isinstance(net.layers[0].ffn, type(net.layers[0].ffn))  # the original is untouched
    assert not isinstance(net.layers[0].ffn, Int8PerTokenFFN)


@pytest.mark.parametrize("cls", [RankMixer, UGSep])
def test_w8a16_output_error_is_small(schema, cls):
    net = built(cls, schema)
    quantised = net.w8a16()
    user, items = request(schema, 200)
    with torch.no_grad():
        full, q = net.serve(user, items), quantised.serve(user, items)
        q_forward = quantised(repeated(user, 200), items)
    scale = full.abs().max()
    assert (q - full).abs().max() / scale <= 1e-2
    # the served user side runs with bf16 activations (fused kernel), the forward in fp32
    assert (q - q_forward).abs().max() / scale <= 1e-2


@pytest.mark.parametrize("cls", [RankMixer, UGSep])
def test_w8a16_serving_is_exact_without_the_fused_kernel(schema, cls, monkeypatch):
    monkeypatch.setattr(Int8PerTokenFFN, "fused_rows", 0)
    quantised = built(cls, schema).w8a16()
    user, items = request(schema, 50)
    with torch.no_grad():
        served, full = quantised.serve(user, items), quantised(repeated(user, 50), items)
    torch.testing.assert_close(served, full, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not fused_kernel_available(), reason="this torch has no _weight_int8pack_mm")
def test_the_fused_single_row_path_matches_the_dequantised_one(schema):
    ffn = built(UGSep, schema).w8a16().layers[0].ffn
    x = torch.randn(1, 3, ffn.q1.shape[2])  # q1 is (T, out, in)
    for tokens in (slice(0, 3), slice(5, 8)):
        fused = ffn(x, tokens)  # one row: the fused bf16 kernel
        dequantised = PerTokenFFN.forward(ffn, x, tokens)
        assert fused.dtype == torch.float32 and fused.shape == dequantised.shape
        assert (fused - dequantised).abs().max() <= 2e-2 * dequantised.abs().max()
        assert not torch.equal(fused, dequantised)  # it did take the other path


def test_int8_of_a_zero_channel_is_zero():
    w = torch.randn(2, 5, 3)
    w[1, :, 0] = 0
    q, scale = quantize_int8(w, reduce_dim=1)
    assert q.dtype == torch.int8 and q.abs().max() <= 127
    assert torch.equal(q[1, :, 0], torch.zeros(5, dtype=torch.int8))
    assert ((q.float() * scale - w).abs() <= scale / 2 + 1e-7).all()
