"""What LogitNoise promises beyond the conformance suite."""

import torch
from yw_core.cli import main
from yw_core.testing import tiny_classifier

from yw_plugin_logit_noise import LogitNoise


def test_noise_has_the_configured_scale(yw_runtime):
    model = yw_runtime.to(tiny_classifier())
    x = yw_runtime.to(torch.rand(4096, 1, 8, 8))
    protected = LogitNoise(sigma=0.5).protect(model, runtime=yw_runtime)
    with torch.no_grad():
        noise = protected(x) - model(x)
    assert abs(noise.mean().item()) < 0.02
    assert abs(noise.std().item() - 0.5) < 0.02


def test_sigma_zero_returns_the_model_logits(yw_runtime):
    model = yw_runtime.to(tiny_classifier())
    x = yw_runtime.to(torch.rand(8, 1, 8, 8))
    protected = LogitNoise(sigma=0.0).protect(model, runtime=yw_runtime)
    assert torch.equal(protected(x), model(x))


def test_same_seed_same_noise_and_fresh_noise_per_query(yw_runtime):
    model = yw_runtime.to(tiny_classifier())
    x = yw_runtime.to(torch.rand(8, 1, 8, 8))
    first = LogitNoise().protect(model, runtime=yw_runtime)
    second = LogitNoise().protect(model, runtime=yw_runtime)
    a = first(x)
    assert torch.equal(a, second(x))
    assert not torch.equal(a, first(x))


def test_info_shows_the_config(yw_registry, capsys):
    yw_registry(LogitNoise)
    assert main(["info", "logit-noise"]) == 0
    out = capsys.readouterr().out
    assert "logit-noise (defense)" in out
    assert "sigma" in out
