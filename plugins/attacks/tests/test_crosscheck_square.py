"""Square against torchattacks.Square (an AutoAttack port) on a small model trained on digits.

Setup: `tiny_classifier(64, 10)` trained 200 full-batch Adam steps on 1400 sklearn digits (x/16 as
1x8x8 images, seeded); both attacks run on the other 397 digits with a budget of Q = 200 queries
per sample. torchattacks runs `n_queries = Q - 1` steps after its initial query and rescales its
p schedule to them (`resc_schedule=True`), so ours uses `n_iters = Q - 1` to follow the same
schedule. Robust accuracy is over all 397 points.

Tolerance. torchattacks draws one window position per batch, so its robust accuracy moves with
the seed more than ours (measured over 8 seeds, std 1.8 points for L2 vs 1.2 for ours): we compare
ours (seed 0) with torchattacks' mean over 3 seeds, and allow 5 points (about 3 standard
deviations of that difference; the spec's 3 points are against the original, not this port).
- L2: the algorithms agree up to per-image vs per-batch windows, so robust accuracy must be
  within the tolerance (measured: ours 0.448, torchattacks 0.424 mean over seeds 0-2; over
  8 seeds both average 0.44).
- L-inf: the original redraws a window's signs while the candidate would equal the current best;
  torchattacks does not, and on 1-channel images half its late 1-pixel proposals are no-ops. Ours
  is therefore stronger (measured: ours 0.469, torchattacks 0.564; without the redraw ours gives
  0.55), so here we only require ours to be at least as strong, within the tolerance.
"""

import pytest
import torch

from yw_core.runtime import Runtime
from yw_core.testing import tiny_classifier
from yw_plugin_attacks.square import Square

torchattacks = pytest.importorskip("torchattacks", reason="cross-check needs torchattacks 3.5.1")
datasets = pytest.importorskip("sklearn.datasets", reason="the digits data come from scikit-learn")

BUDGET = 200
TOLERANCE = 0.05
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def digits(one_thread):
    """A small classifier trained on 1400 digits, and the 397 held-out digits to attack."""
    data = datasets.load_digits()
    x = torch.tensor(data.data / 16, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(data.target)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = order[:1400], order[1400:]
    model = tiny_classifier(64, 10, seed=0).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x[train]), y[train]).backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        assert (model(x[test]).argmax(1) == y[test]).float().mean() > 0.9
    return model, x[test], y[test]


def ours(model, x, y, norm, eps, p_init):
    attack = Square(p_init=p_init, n_iters=BUDGET - 1)
    runtime = Runtime(device="cpu", seed=0, distributed=False)
    result = attack.run(model, x, y, eps=eps, norm=norm, budget=BUDGET, runtime=runtime)
    assert (result.total_queries <= BUDGET).all()
    return 1 - result.success.float().mean().item()


def theirs(model, x, y, norm, eps, p_init):
    accuracies = []
    for seed in SEEDS:
        attack = torchattacks.Square(
            model,
            norm={"linf": "Linf", "l2": "L2"}[norm],
            eps=eps,
            n_queries=BUDGET - 1,
            p_init=p_init,
            loss="margin",
            resc_schedule=True,
            seed=seed,
        )
        x_adv = attack(x, y)
        with torch.no_grad():
            accuracies.append((model(x_adv).argmax(1) == y).float().mean().item())
    return sum(accuracies) / len(accuracies)


def test_l2_robust_accuracy_matches_torchattacks(digits):
    model, x, y = digits
    a, b = ours(model, x, y, "l2", 0.75, 0.1), theirs(model, x, y, "l2", 0.75, 0.1)
    assert 0.1 < b < 0.9, "eps should leave the robust accuracy away from 0 and 1"
    assert abs(a - b) <= TOLERANCE, f"ours {a:.3f} vs torchattacks {b:.3f}"


def test_linf_is_at_least_as_strong_as_torchattacks(digits):
    model, x, y = digits
    a, b = ours(model, x, y, "linf", 0.1, 0.05), theirs(model, x, y, "linf", 0.1, 0.05)
    assert 0.1 < b < 0.9, "eps should leave the robust accuracy away from 0 and 1"
    assert a <= b + TOLERANCE, f"ours {a:.3f} vs torchattacks {b:.3f}"


class FirstFooled(torch.nn.Module):
    """Answers with `model` and records, per point of `x`, whether any answer misclassified it
    and whether the last one did (each query row is matched to its nearest point in L-inf)."""

    def __init__(self, model, x, y):
        super().__init__()
        self.model, self.x, self.y = model, x.flatten(1), y
        self.ever_wrong = torch.zeros(len(y), dtype=torch.bool)
        self.last_wrong = torch.zeros(len(y), dtype=torch.bool)

    def forward(self, q):
        out = self.model(q)
        who = (q.flatten(1)[:, None] - self.x[None]).abs().amax(2).argmin(1)
        wrong = out.argmax(1) != self.y[who]
        self.ever_wrong[who] |= wrong
        self.last_wrong[who] = wrong
        return out


def test_first_fooled_and_final_recheck_agree_on_a_deterministic_model(digits):
    """On a deterministic, batch-independent model a point fooled once stays fooled, so the two
    counting rules give the same robust accuracy: torchattacks' first fooled query and its final
    re-check of x_adv, and our `success` and a re-query of our x_adv (issue 20: on UniG, which
    is randomized and batch-dependent, they differ)."""
    model, x, y = digits
    x, y = x[:100], y[:100]
    recorder = FirstFooled(model, x, y)
    attack = torchattacks.Square(
        recorder, norm="Linf", eps=0.1, n_queries=BUDGET - 1, p_init=0.05, seed=0
    )
    with torch.no_grad():
        attack(x, y)
    assert recorder.ever_wrong.any() and not recorder.ever_wrong.all()
    assert torch.equal(recorder.ever_wrong, recorder.last_wrong)

    runtime = Runtime(device="cpu", seed=0, distributed=False)
    result = Square(p_init=0.05, n_iters=BUDGET - 1).run(
        model, x, y, eps=0.1, norm="linf", budget=BUDGET, runtime=runtime
    )
    with torch.no_grad():
        assert torch.equal(result.success, model(result.x_adv).argmax(1) != y)
