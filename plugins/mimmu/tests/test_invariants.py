"""The spec's invariants of MiM-MU (shared/methods/unlearning-mumis-mimmu.md §2.2, §2.4): the
target is the frozen unconditional prediction, only the cross-attention moves, a model whose
prediction ignores the concept has nothing to erase, retain data is never read, and on the digits
DDPM class 3's mutual information falls to near zero while the other classes keep theirs."""

from __future__ import annotations

import statistics

import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from yw_core.diffusion import to_unit
from yw_core.erasure import mi_proxy, timestep_weights
from yw_core.testing import tiny_ddpm
from yw_plugin_mimmu import MiMMU

CONCEPT = 3  # the class the conftest forget set holds

RECIPE = {"lr": 1e-3, "epochs": 100, "batch_size": 32}  # bench erase's recipe for the digits DDPM


def mi_per_class(model, real_test) -> list[float]:
    x, y = real_test
    return [
        mi_proxy(model, x[y == k], y[y == k], torch.Generator().manual_seed(k)) for k in range(10)
    ]


def accuracy_per_class(model, classifier, n: int = 50) -> list[float]:
    labels = torch.arange(10).repeat_interleave(n)
    samples = model.sample(labels, 2.0, torch.Generator().manual_seed(5))
    with torch.no_grad():
        pred = classifier(to_unit(samples)).argmax(1)
    return [float((pred[labels == k] == k).float().mean()) for k in range(10)]


@pytest.fixture(scope="module")
def erased(ddpm, forget, runtime):
    runtime.seed_everything()
    return MiMMU(**RECIPE).unlearn(ddpm, forget, runtime=runtime)


def test_the_target_is_the_frozen_models_unconditional_prediction():
    model = tiny_ddpm()
    x_t, t = torch.randn(6, 1, 8, 8), torch.arange(6)
    cond = model.condition(torch.tensor([0, 1, 2, 3, 0, 1]))
    expected = model.eps(x_t, t, model.null_condition(6))
    torch.testing.assert_close(MiMMU().target(model, x_t, t, cond), expected)


def test_only_the_cross_attention_moves_and_the_callers_model_is_kept(ddpm, forget, runtime):
    before = {k: v.clone() for k, v in ddpm.state_dict().items()}
    flags = {n: p.requires_grad for n, p in ddpm.named_parameters()}
    out = MiMMU(lr=1e-3, epochs=1).unlearn(ddpm, forget, runtime=runtime)
    assert all(torch.equal(before[k], v) for k, v in ddpm.state_dict().items())
    cond = {n for n, _ in out.named_parameters() if ".cond." in n}
    assert cond, "DigitsDDPM's FiLM projections are its cross-attention"
    for name, value in out.state_dict().items():
        if name in cond:
            assert not torch.equal(value, before[name]), f"{name} did not move"
        else:
            assert torch.equal(value, before[name]), f"{name} moved"
    assert {n: p.requires_grad for n, p in out.named_parameters()} == flags
    assert not out.training


def test_a_model_that_ignores_the_concept_has_nothing_to_erase(runtime):
    model = tiny_ddpm()
    with torch.no_grad():
        for p in model.conditioning_parameters():
            p.zero_()  # FiLM scale and shift 0 for every concept: ε(c) = ε(∅)
    data = TensorDataset(torch.rand(8, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 3] * 2))
    assert mi_proxy(model, *data.tensors, torch.Generator().manual_seed(0)) == 0.0
    method = MiMMU(lr=1e-2, epochs=3, batch_size=4)
    out = method.unlearn(model, data, runtime=runtime)
    assert [row["loss"] for row in method.trace] == [0.0, 0.0, 0.0]
    assert all(torch.equal(a, b) for a, b in zip(out.parameters(), model.parameters(), strict=True))


def test_the_remaining_data_is_never_read(runtime):
    class Untouchable(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            raise AssertionError("MiM-MU read the remaining data")

    data = TensorDataset(torch.rand(8, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 3] * 2))
    MiMMU(epochs=1, batch_size=4).unlearn(tiny_ddpm(), data, Untouchable(), runtime=runtime)


def test_log_snr_weights_are_the_steps_of_log_snr_with_mean_one():
    model = tiny_ddpm()
    assert torch.equal(timestep_weights(model, "uniform"), torch.ones(model.num_timesteps))
    w = timestep_weights(model, "log-snr")
    a = model.alphas_cumprod().double()
    log_snr = torch.log(a / (1 - a))
    steps = (log_snr[:-1] - log_snr[1:]).float()
    torch.testing.assert_close(w[1:] / w[1:].sum(), steps / steps.sum())
    assert (w >= 0).all() and float(w.mean()) == pytest.approx(1.0)


def test_class_3_loses_its_information_and_the_others_keep_theirs(ddpm, erased, real_test):
    """The spec's §2.4 bounds, one seed (bench erase runs three): Î(3) falls below a fifth of
    the original's; the other classes' Î stays within [0.8, 1.3] of theirs on average (class 1
    rose by 37% here: the entangled concepts the paper names as a limit, so each class only
    within [0.7, 1.5])."""
    before, after = mi_per_class(ddpm, real_test), mi_per_class(erased, real_test)
    ratio = [a / b for a, b in zip(after, before, strict=True)]
    others = [r for k, r in enumerate(ratio) if k != CONCEPT]
    assert ratio[CONCEPT] <= 0.2
    assert 0.8 <= statistics.fmean(others) <= 1.3
    assert all(0.7 <= r <= 1.5 for r in others), ratio


def test_class_3_is_generated_far_less_and_the_others_stay_recognisable(ddpm, erased, classifier):
    """UA(3) >= 60% (its ceiling is about 90%: with no information left, the concept's samples
    are unconditional ones, a tenth of which are 3s); mean other-class accuracy >= 97%."""
    before, after = accuracy_per_class(ddpm, classifier), accuracy_per_class(erased, classifier)
    assert before[CONCEPT] >= 0.95
    assert 1 - after[CONCEPT] >= 0.6
    others = [a for k, a in enumerate(after) if k != CONCEPT]
    assert statistics.fmean(others) >= 0.97


def test_mim_lowers_the_concepts_information_where_the_baselines_do_not(
    ddpm, erased, forget, runtime, real_test
):
    """Concept ablation raises Î(3) (3 now means the anchor, 8) and ESD leaves most of it
    (3 now means 'away from 3'); only MiM-MU takes the information itself away."""
    baselines = pytest.importorskip("yw_plugin_baselines")
    x, y = real_test
    threes = x[y == CONCEPT], y[y == CONCEPT]

    def mi3(model):
        return mi_proxy(model, *threes, torch.Generator().manual_seed(0))

    runtime.seed_everything()
    ablated = baselines.ConceptAblation(anchor=8, **RECIPE).unlearn(ddpm, forget, runtime=runtime)
    runtime.seed_everything()
    esd = baselines.ESD(**RECIPE).unlearn(ddpm, forget, runtime=runtime)
    assert mi3(erased) < 0.2 * mi3(ddpm)
    assert mi3(ablated) > mi3(ddpm)
    assert mi3(esd) > 0.3 * mi3(ddpm)


def test_trainable_all_moves_everything_but_the_frozen_class_embedding(runtime):
    model = tiny_ddpm()
    model.embedding.weight.requires_grad_(True)  # frozen by the contract, not by the flag
    data = TensorDataset(torch.rand(8, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 3] * 2))
    out = MiMMU(lr=1e-3, epochs=1, trainable="all").unlearn(model, data, runtime=runtime)
    before, after = model.state_dict(), out.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert "embedding.weight" not in moved
    assert {"inp.weight", "blocks.0.cond.weight", "out.1.weight"} <= moved
