"""RND and outRND: the noise they add, their seeding, what they leave alone, and their bad input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from yw_core.runtime import Runtime
from yw_core.testing import tiny_classifier, tiny_dataset
from yw_plugin_baselines import RND, OutputNoise

BOTH = [RND, OutputNoise]


class FixedLogits(nn.Module):
    """Returns the same (n, classes) logits for any batch of n inputs: isolates output noise."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[: len(x)]


class NaNModel(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((len(x), 4), float("nan"), device=x.device)


def inputs(runtime, n: int = 8, seed: int = 0) -> torch.Tensor:
    return runtime.to(tiny_dataset(n, seed=seed).tensors[0])


def calls(method, model, x, runtime, times: int = 2) -> list[torch.Tensor]:
    protected = method.protect(model, runtime=runtime)
    with torch.no_grad():
        return [protected(x) for _ in range(times)]


# ---- the noise ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("sigma", "clip"), [(0.02, True), (0.1, False)])
def test_rnd_input_noise_has_std_sigma_and_mean_zero(yw_runtime, sigma, clip):
    """At x = 0.5 clipping never binds for sigma = 0.02 (25 sigma away from 0 and 1)."""
    x = torch.full((64, 3, 32, 32), 0.5, device=yw_runtime.device)
    (out,) = calls(RND(sigma=sigma, clip=clip), nn.Flatten(), x, yw_runtime, times=1)
    noise = out - x.flatten(1)
    assert abs(noise.std().item() / sigma - 1) < 0.02
    assert abs(noise.mean().item()) < 10 * sigma / noise.numel() ** 0.5


def test_rnd_clip_is_the_unclipped_noisy_input_clamped_to_0_1(yw_runtime):
    """Same seed, same draws: with clip=True the model sees exactly clamp(x + noise, 0, 1)."""
    g = torch.Generator().manual_seed(0)
    x = yw_runtime.to(torch.randint(0, 3, (16, 1, 8, 8), generator=g) / 2)  # 0, 0.5, 1 like digits
    (clipped,) = calls(RND(sigma=0.1), nn.Flatten(), x, yw_runtime, times=1)
    (raw,) = calls(RND(sigma=0.1, clip=False), nn.Flatten(), x, yw_runtime, times=1)
    assert raw.min() < 0 and raw.max() > 1
    assert torch.equal(clipped, raw.clamp(0, 1))


@pytest.mark.parametrize("sigma", [1.0, 0.3])
def test_output_noise_has_std_sigma_and_mean_zero(yw_runtime, sigma):
    logits = yw_runtime.to(torch.randn(20000, 10, generator=torch.Generator().manual_seed(1)) * 5)
    x = torch.zeros(20000, 1, device=yw_runtime.device)
    (out,) = calls(OutputNoise(sigma=sigma), FixedLogits(logits), x, yw_runtime, times=1)
    noise = out - logits
    assert abs(noise.std().item() / sigma - 1) < 0.02
    assert abs(noise.mean().item()) < 10 * sigma / noise.numel() ** 0.5


@pytest.mark.parametrize("method", BOTH)
def test_sigma_zero_gives_the_undefended_model_exactly(yw_runtime, method):
    model = yw_runtime.to(tiny_classifier())
    x = inputs(yw_runtime)
    with torch.no_grad():
        clean = model(x)
    for out in calls(method(sigma=0), model, x, yw_runtime):
        assert torch.equal(out, clean)


# ---- seeding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", BOTH)
def test_same_seed_same_outputs_different_seed_different_outputs(yw_runtime, method):
    """Each query gets fresh noise from the wrapper's own stream, seeded by runtime.seed at
    protect() time and untouched by the global RNG."""
    model = yw_runtime.to(tiny_classifier())
    x = inputs(yw_runtime)
    first = calls(method(), model, x, yw_runtime)
    torch.manual_seed(123)  # the global RNG does not feed the wrapper
    again = calls(method(), model, x, yw_runtime)
    other = calls(method(), model, x, Runtime(device=yw_runtime.device, seed=1, distributed=False))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], first[1]), "a repeated query got the same noise"
    assert not torch.equal(first[0], other[0])


# ---- the wrapped model --------------------------------------------------------------------------


@pytest.mark.parametrize("method", BOTH)
def test_model_weights_and_mode_are_left_alone_and_it_runs_in_eval_mode(yw_runtime, method):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Dropout(0.5), nn.Linear(16, 4))
    model = yw_runtime.to(model).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = inputs(yw_runtime)
    out = calls(method(sigma=0), model, x, yw_runtime)
    assert model.training, "the wrapper did not restore the model's training mode"
    with torch.no_grad():
        eval_out = model.eval()(x)
    assert all(torch.equal(o, eval_out) for o in out), "dropout was active inside the wrapper"
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"protect() changed the model's {k}"


@pytest.mark.parametrize("method", BOTH)
def test_gradients_flow_to_the_input_when_enabled(yw_runtime, method):
    """White-box attacks (PGD in the benchmark) differentiate through the noisy forward."""
    model = yw_runtime.to(tiny_classifier())
    x = inputs(yw_runtime).requires_grad_()
    method().protect(model, runtime=yw_runtime)(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# ---- clean accuracy on the digits CNN ----------------------------------------------------------


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The reference digits CNN (trained into a temporary cache) and its test split."""
    from yw_core.data import load_dataset
    from yw_core.zoo import reference_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YW_CACHE_DIR", str(tmp_path_factory.mktemp("yw-cache")))
        runtime = Runtime(device="cpu", seed=0, distributed=False)
        model = reference_model("digits", "digits-cnn", seed=0, runtime=runtime, progress=False)
    x, y = load_dataset("digits", "test", seed=model.zoo_info["config"]["data_seed"]).tensors
    return model, x, y


@pytest.mark.parametrize("method", [RND(), OutputNoise()], ids=["rnd-0.02", "out-rnd-1.0"])
def test_default_noise_costs_at_most_two_points_of_clean_accuracy(digits, method):
    """Measured (seed 0, 450 test digits): undefended 98.0%, rnd 98.2%, out-rnd 98.0%."""
    model, x, y = digits
    protected = method.protect(model, runtime=Runtime(device="cpu", seed=0, distributed=False))
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
        noisy = (protected(x).argmax(1) == y).float().mean().item()
    assert clean > 0.95
    assert abs(noisy - clean) <= 0.02


# ---- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", BOTH)
def test_nan_logits_are_a_clear_value_error(yw_runtime, method):
    protected = method().protect(NaNModel(), runtime=yw_runtime)
    with pytest.raises(ValueError, match="NaN logits"):
        protected(inputs(yw_runtime))


def test_rnd_with_clip_rejects_inputs_outside_0_1(yw_runtime):
    model = yw_runtime.to(tiny_classifier())
    x = inputs(yw_runtime) * 2 - 0.5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        RND().protect(model, runtime=yw_runtime)(x)
    assert RND(clip=False).protect(model, runtime=yw_runtime)(x).shape == (8, 4)


def test_noisy_model_rejects_a_bad_place_or_sigma():
    from yw_plugin_baselines import NoisyModel

    with pytest.raises(ValueError, match="where"):
        NoisyModel(nn.Flatten(), sigma=0.1, where="hidden")
    with pytest.raises(ValueError, match="sigma"):
        NoisyModel(nn.Flatten(), sigma=-0.1, where="input")
