"""SignHunter: sign-flip schedule, exact sign recovery, query arithmetic, the attack contract."""

import pytest
import torch

from yw_plugin_attacks.queries import cross_entropy
from yw_plugin_attacks.signhunter import SignFlipState, SignHunter, chunk_bounds, sign_probe


class Linear(torch.nn.Module):
    """z = W·flatten(x) + b, recording every input it is queried with."""

    def __init__(self, weight, bias):
        super().__init__()
        self.weight, self.bias = weight, bias
        self.inputs = []

    def forward(self, x):
        self.inputs.append(x.clone())
        return x.flatten(1) @ self.weight.T + self.bias


def linear_problem(n=16, seed=0):
    """10 classes on (n, 3, 8, 8) inputs in [0.3, 0.7]; labels are the model's own predictions."""
    g = torch.Generator().manual_seed(seed)
    model = Linear(torch.randn(10, 192, generator=g) * 0.1, torch.zeros(10))
    x = 0.3 + 0.4 * torch.rand(n, 3, 8, 8, generator=g)
    y = model(x).argmax(1)
    model.inputs.clear()
    return model, x, y


def monotone_problem(eps, norm="linf", n=4, seed=0):
    """2 classes, z = (0, a·x + b), y = 0: CE = softplus(a·x + b) rises with a·x, and b keeps
    every point of the eps-ball just correctly classified: a loss monotone in a·x, never fooled."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(64, generator=g)
    x = 0.3 + 0.4 * torch.rand(n, 1, 8, 8, generator=g)
    reach = eps * (a.abs().sum() if norm == "linf" else a.norm())  # max of a·delta over the ball
    b = -(x.flatten(1) @ a).max() - reach - 1.0
    model = Linear(torch.stack([torch.zeros(64), a]), torch.tensor([0.0, b.item()]))
    return model, x, torch.zeros(n, dtype=torch.long), a


def run(model, x, y, runtime, eps=0.05, norm="linf", budget=300, **config):
    return SignHunter(**config).run(model, x, y, eps=eps, norm=norm, budget=budget, runtime=runtime)


@pytest.mark.parametrize("n,flips", [(1, 1), (64, 127), (100, 1 + 2 + 4 + 8 + 15 + 25 + 50 + 100)])
def test_a_round_visits_levels_of_halving_chunks(n, flips):
    state = SignFlipState(1, n)
    visited = []
    while True:
        visited.append((state.h, *chunk_bounds(state.h, state.i, n)))
        if state.advance():
            break
    assert len(visited) == flips
    last = [(start, end) for h, start, end in visited if h == visited[-1][0]]
    assert last == [(j, j + 1) for j in range(n)]  # the last level has chunk length 1
    for h in range(visited[-1][0] + 1):  # every level covers all coordinates once
        chunks = [(start, end) for level, start, end in visited if level == h]
        assert chunks[0][0] == 0 and chunks[-1][1] == n
        assert all(prev[1] == nxt[0] for prev, nxt in zip(chunks, chunks[1:]))
    assert (state.h, state.i) == (0, 0)


@pytest.mark.parametrize("n", [64, 100, 192])
def test_signs_of_a_linear_loss_are_recovered_within_one_round(n):
    """Keep-iff->= on L(s) = a·s gives s = sign(a) once the chunk-length-1 level is done (< 4n)."""
    a = torch.randn(1, n, generator=torch.Generator().manual_seed(n))
    state = SignFlipState(1, n)
    best, queries, done = (a * state.s).sum(), 1, False
    while not done:
        state.flip(torch.tensor([0]))
        value, queries = (a * state.s).sum(), queries + 1
        if value >= best:
            best = value
        else:
            state.flip(torch.tensor([0]))
        done = state.advance()
    assert torch.equal(state.s, a.sign())
    assert queries < 4 * n


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_attack_recovers_sign_of_gradient_with_vertex_probes(yw_runtime, norm):
    eps = 0.05 if norm == "linf" else 0.3
    model, x, y, a = monotone_problem(eps, norm)
    out = run(model, x, y, yw_runtime, eps=eps, norm=norm, budget=128)  # 1 + 127 flips for n=64
    assert not out.success.any() and (out.total_queries == 128).all()
    step = a.sign() if norm == "linf" else a.sign() / 8
    torch.testing.assert_close(out.x_adv, x + eps * step.view(1, 1, 8, 8).expand_as(x))
    for probe in model.inputs[1:]:  # every probe of the first round is on the sphere/vertex set
        delta = (probe - x).flatten(1)
        if norm == "linf":
            torch.testing.assert_close(delta.abs(), torch.full_like(delta, eps))
        else:
            torch.testing.assert_close(delta.norm(dim=1), torch.full((len(x),), eps))


def test_iterate_loss_never_decreases_within_a_round(yw_runtime):
    model, x, y, _ = monotone_problem(0.05)
    losses = [
        cross_entropy(model(run(model, x, y, yw_runtime, budget=b).x_adv), y)
        for b in (1, 2, 3, 5, 9, 17, 33, 65, 128)
    ]
    steps = torch.stack(losses).diff(dim=0)
    assert (steps >= 0).all() and (steps > 0).any()


def test_a_new_round_starts_from_the_iterate_with_all_plus_signs(yw_runtime):
    model, x, y, _ = monotone_problem(0.05)
    first_round = run(model, x, y, yw_runtime, budget=128).x_adv
    model.inputs.clear()
    run(model, x, y, yw_runtime, budget=129)
    restart_probe = model.inputs[-1]
    expected = sign_probe(first_round, torch.ones(len(x), 64), x, 0.05, "linf")
    torch.testing.assert_close(restart_probe, expected)


@pytest.mark.parametrize("count_clean_query", [False, True])
def test_every_query_is_one_loss_query_and_the_check(yw_runtime, count_clean_query):
    model, x, y = linear_problem(n=4)
    model.bias[y] += 100.0  # unfoolable: every sample spends its whole budget
    out = run(model, x, y, yw_runtime, budget=50, count_clean_query=count_clean_query)
    assert (out.total_queries == 50).all()
    assert (out.loss_queries == 50 - int(count_clean_query)).all()
    assert len(model.inputs) == 1 + out.loss_queries[0]  # the clean forward, then 1 per step
