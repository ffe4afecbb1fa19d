"""The AAA defense end to end: the wrapper's contract, temperature tuning, and spec §1(g)'s toy
attack (a greedy random search succeeds much less often against AAA)."""

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from yw_core.data import load_dataset
from yw_core.metrics import expected_calibration_error
from yw_core.runtime import Runtime
from yw_core.testing import linear_problem, tiny_classifier, tiny_dataset
from yw_core.zoo import reference_model
from yw_plugin_aaa import AAA, TEMPERATURE_GRID, AAAWrapper
from yw_plugin_aaa.postprocessing import postprocess


def cpu(seed: int = 0) -> Runtime:
    return Runtime(device="cpu", seed=seed, distributed=False)


class Scaled(nn.Module):
    """A model whose logits are another's times k (k > 1: over-confident)."""

    def __init__(self, model: nn.Module, k: float):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x):
        return self.model(x) * self.k


class Constant(nn.Module):
    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits.expand(len(x), -1)


# ------------------------------------------------------------------ the wrapper


def test_wrapper_keeps_top1_model_weights_and_mode():
    model = nn.Sequential(tiny_classifier(), nn.Dropout(0.5)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = tiny_dataset(16).tensors[0]
    wrapper = AAA().protect(model, runtime=cpu())
    assert isinstance(wrapper, AAAWrapper) and wrapper.temperature == 1.0
    with torch.no_grad():
        out, again = wrapper(x), wrapper(x)
    assert torch.equal(out, again)  # the model ran in eval mode: no dropout noise
    assert model.training and model[1].training  # ... and its mode was restored
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    model.eval()
    with torch.no_grad():
        clean = model(torch.floor(x * 255) / 255)
    assert torch.equal(wrapper.forward_undefended(x), clean)
    assert torch.equal(out.argmax(1), clean.argmax(1))
    assert torch.equal(out, postprocess(clean))


def test_quantisation_is_floor_255():
    model = tiny_classifier()
    x = torch.tensor([0.0, 0.5, 1.0, 0.999]).repeat(16)[:64].reshape(1, 1, 8, 8)
    on = AAA().protect(model, runtime=cpu())
    off = AAA(quantize=False).protect(model, runtime=cpu())
    with torch.no_grad():
        assert torch.equal(on.forward_undefended(x), model(torch.floor(x * 255) / 255))
        assert torch.equal(off.forward_undefended(x), model(x))


def test_nan_logits_from_the_model_are_a_clear_error():
    wrapper = AAA().protect(Constant(torch.tensor([[0.0, float("nan"), 1.0]])), runtime=cpu())
    with pytest.raises(ValueError, match="NaN"):
        wrapper(torch.zeros(2, 1, 8, 8))
    wrapper = AAA().protect(Constant(torch.tensor([[2.0]])), runtime=cpu())
    with pytest.raises(ValueError, match="at least 2 classes"):
        wrapper(torch.zeros(2, 1, 8, 8))


def test_fixed_temperature_is_used_and_data_is_then_ignored():
    wrapper = AAA(temperature=2.5).protect(tiny_classifier(), data=object(), runtime=cpu())
    assert wrapper.temperature == 2.5 and wrapper.calibration == {}


def test_temperature_is_tuned_on_the_first_calibration_samples():
    seen = []
    model = tiny_classifier()
    model.register_forward_hook(lambda m, i, o: seen.append(len(i[0])))
    data = tiny_dataset(50)
    wrapper = AAA(calibration_samples=20).protect(model, data=data, runtime=cpu())
    assert sum(seen) == 20
    assert wrapper.temperature in TEMPERATURE_GRID
    assert set(wrapper.calibration) == set(TEMPERATURE_GRID)
    assert wrapper.calibration[wrapper.temperature] <= wrapper.calibration[1.0]
    pairs = [data[i] for i in range(50)]  # any indexable of (x, y) pairs gives the same T
    same = AAA(calibration_samples=20).protect(model, data=pairs, runtime=cpu())
    assert same.calibration == wrapper.calibration


def test_calibration_data_without_integer_labels_is_rejected():
    x = torch.rand(8, 1, 8, 8)
    with pytest.raises(ValueError, match="labels"):
        AAA().protect(tiny_classifier(), data=TensorDataset(x), runtime=cpu())
    with pytest.raises(ValueError, match="labels"):
        AAA().protect(tiny_classifier(), data=TensorDataset(x, torch.rand(8)), runtime=cpu())
    with pytest.raises(ValueError, match="empty"):
        AAA().protect(tiny_classifier(), data=[], runtime=cpu())


def test_tuned_temperature_lowers_ece_of_an_over_confident_model():
    """Digits CNN, logits x5, inputs with Gaussian noise (sigma 0.4): accuracy 73%, over-confident.
    Measured: T = 64 (the grid's top); calibration-set ECE 0.213 (T = 1) -> 0.185; held-out test
    ECE of AAA's outputs 0.239 (T = 1) -> 0.206 (the undefended model's is 0.239)."""
    runtime = cpu()
    model = Scaled(
        reference_model("digits", "digits-cnn", seed=0, runtime=runtime, progress=False), 5
    )
    g = torch.Generator().manual_seed(0)

    def noisy(split):
        x, y = load_dataset("digits", split, seed=0).tensors
        return (x + 0.4 * torch.randn(x.shape, generator=g)).clamp(0, 1), y

    calibration = TensorDataset(*noisy("train"))
    x, y = noisy("test")
    tuned = AAA().protect(model, data=calibration, runtime=runtime)
    plain = AAA(temperature=1.0).protect(model, runtime=runtime)
    assert tuned.temperature > 1  # over-confident: softened
    assert tuned.calibration[tuned.temperature] < tuned.calibration[1.0]
    with torch.no_grad():
        ece_tuned = expected_calibration_error(tuned(x).softmax(1), y)
        ece_plain = expected_calibration_error(plain(x).softmax(1), y)
    assert ece_tuned < ece_plain - 0.02


# ------------------------------------------------------------------ toy attacks (spec §1(g))


def margin(z, y):
    return z.gather(1, y[:, None]).squeeze(1) - z.scatter(1, y[:, None], -torch.inf).max(1).values


def random_search(model, x, y, eps, queries, seed=0, frac=0.05):
    """Greedy L-inf random search: re-draw ~5% of the +-eps signs, keep a strictly lower margin;
    a sample succeeds at its first misclassified query."""
    g = torch.Generator().manual_seed(seed)

    def signs():
        return eps * (torch.randint(0, 2, x.shape, generator=g) * 2 - 1).to(x.dtype)

    delta = signs()
    with torch.no_grad():
        z = model(x + delta)
    best, success = margin(z, y), z.argmax(1) != y
    for _ in range(queries - 1):
        mask = torch.rand(x.shape, generator=g) < frac
        candidate = torch.where(mask, signs(), delta)
        with torch.no_grad():
            z = model(x + candidate)
        loss, live = margin(z, y), ~success
        better = live & (loss < best)
        delta[better], best[better] = candidate[better], loss[better]
        success |= live & (z.argmax(1) != y)
    return success.float().mean().item()


def test_greedy_random_search_succeeds_much_less_often_against_aaa():
    """64 points of the linear test bed, eps 0.05, 100 queries. Measured: 86% success on the
    undefended model, 17% against AAA."""
    model, x, y = linear_problem(n=64, seed=0)
    defended = AAA(quantize=False).protect(model, runtime=cpu())
    undefended_rate = random_search(model, x, y, 0.05, 100)
    aaa_rate = random_search(defended, x, y, 0.05, 100)
    assert undefended_rate >= 0.75
    assert aaa_rate <= undefended_rate / 3


def test_square_attack_succeeds_much_less_often_against_aaa():
    """The same with yw-plugin-attacks' Square (when installed). Measured: 75% vs 12.5%."""
    attacks = pytest.importorskip("yw_plugin_attacks")
    model, x, y = linear_problem(n=64, seed=0)
    defended = AAA(quantize=False).protect(model, runtime=cpu())
    rates = [
        attacks.Square()
        .run(m, x, y, eps=0.05, norm="linf", budget=100, runtime=cpu())
        .success.float()
        .mean()
        .item()
        for m in (model, defended)
    ]
    assert rates[0] >= 0.5
    assert rates[1] <= rates[0] / 3
