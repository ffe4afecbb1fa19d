"""Training-time FGSM-RS and PGD: the ball, the range, no parameter gradients, bad input."""

import pytest
import torch
import torch.nn.functional as F

from yw_core.adversarial import fgsm_rs, pgd
from yw_core.testing import tiny_classifier, tiny_dataset


@pytest.fixture
def problem():
    model = tiny_classifier()
    x, y = tiny_dataset(32).tensors
    return model, x, y


@pytest.mark.parametrize("attack", ["fgsm_rs", "pgd"])
def test_outputs_stay_in_the_ball_and_range_and_raise_the_loss(problem, attack):
    model, x, y = problem
    g = torch.Generator().manual_seed(0)
    if attack == "fgsm_rs":
        x_adv = fgsm_rs(model, x, y, eps=0.1, step=0.125, generator=g)
    else:
        x_adv = pgd(model, x, y, eps=0.1, step=0.025, steps=10, generator=g)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert not x_adv.requires_grad
    with torch.no_grad():
        assert F.cross_entropy(model(x_adv), y) > F.cross_entropy(model(x), y)
    assert all(p.grad is None for p in model.parameters())


def test_pgd_without_random_start_is_deterministic_and_fgsm_rs_is_seeded(problem):
    model, x, y = problem
    a = pgd(model, x, y, eps=0.1, step=0.02, steps=3, random_start=False)
    b = pgd(model, x, y, eps=0.1, step=0.02, steps=3, random_start=False)
    assert torch.equal(a, b)
    c = fgsm_rs(model, x, y, eps=0.1, step=0.1, generator=torch.Generator().manual_seed(1))
    d = fgsm_rs(model, x, y, eps=0.1, step=0.1, generator=torch.Generator().manual_seed(1))
    assert torch.equal(c, d)


def test_model_mode_is_left_alone(problem):
    model, x, y = problem
    model.train()
    fgsm_rs(model, x, y, eps=0.1, step=0.1)
    assert model.training


def test_bad_input(problem):
    model, x, y = problem
    with pytest.raises(ValueError, match="eps and step must be > 0"):
        fgsm_rs(model, x, y, eps=0, step=0.1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pgd(model, x * 2, y, eps=0.1, step=0.1, steps=1)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        pgd(model, x, y, eps=0.1, step=0.1, steps=0)


def test_pgd_accuracy_is_at_most_clean_and_restores_mode(problem):
    from yw_core.adversarial import pgd_accuracy

    model, x, y = problem
    model.train()
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
    robust = pgd_accuracy(model, x, y, eps=0.2, step=0.05, steps=10, batch_size=7)
    assert 0 <= robust <= clean and model.training
