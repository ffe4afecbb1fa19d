"""Our PGD against torchattacks' independent PGD / PGDL2 on a small trained digits model."""

from __future__ import annotations

import pytest
import torch

from yw_core.runtime import Runtime
from yw_core.testing import tiny_classifier
from yw_plugin_attacks.whitebox import PGD

torchattacks = pytest.importorskip("torchattacks")
datasets = pytest.importorskip("sklearn.datasets")

STEPS = 10


@pytest.fixture(scope="module")
def digits_model():
    """tiny_classifier after 300 seeded Adam steps (batch 128) on sklearn digits; 597 held out."""
    digits = datasets.load_digits()
    x = torch.tensor(digits.data / 16, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(digits.target)
    model = tiny_classifier(num_classes=10, seed=0).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        batch = torch.randint(0, 1200, (128,), generator=g)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        optimizer.step()
    model.eval()
    x_test, y_test = x[1200:], y[1200:]
    with torch.no_grad():
        assert (model(x_test).argmax(1) == y_test).float().mean() > 0.85
    return model, x_test, y_test


@pytest.mark.parametrize(
    ("norm", "eps", "oracle"), [("linf", 0.1, "PGD"), ("l2", 0.5, "PGDL2")], ids=["linf", "l2"]
)
def test_robust_accuracy_matches_torchattacks(digits_model, norm, eps, oracle):
    model, x, y = digits_model
    alpha = eps / 4
    result = PGD(steps=STEPS, step_ratio=0.25).run(
        model,
        x,
        y,
        eps=eps,
        norm=norm,
        budget=STEPS + 1,
        runtime=Runtime(device="cpu", seed=0, distributed=False),
    )
    ours = 1 - result.success.float().mean().item()

    torch.manual_seed(0)  # torchattacks draws its random start from the global generator
    attack = getattr(torchattacks, oracle)(
        model, eps=eps, alpha=alpha, steps=STEPS, random_start=True
    )
    x_adv = attack(x, y)
    with torch.no_grad():
        theirs = (model(x_adv).argmax(1) == y).float().mean().item()

    assert len(x) >= 300
    assert 0.1 < theirs < 0.9  # an informative operating point, not all-robust or all-broken
    assert abs(ours - theirs) <= 0.02, (
        f"robust accuracy: ours {ours:.4f}, torchattacks {theirs:.4f}"
    )
