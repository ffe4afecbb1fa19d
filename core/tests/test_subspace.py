"""yw_core.subspace: flat vectors, orthonormal bases, projections, quantisation, checkpoints."""

import pytest
import torch
from torch import nn

from yw_core.subspace import (
    ProjectedOptimizer,
    Projector,
    assign_,
    flatten,
    gram_schmidt,
    pca_directions,
    quantize,
    shard_rows,
    stack_checkpoints,
    unflatten,
    validate_checkpoints,
)


def trajectory(n: int, d: int, step: float = 0.01, seed: int = 0) -> torch.Tensor:
    """n weight vectors along a random walk from a random start: highly correlated rows."""
    g = torch.Generator().manual_seed(seed)
    start = torch.randn(d, generator=g)
    return start + step * torch.randn(n, d, generator=g).cumsum(0)


def residual(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """The relative norm of the part of w (rows) outside span(basis)."""
    outside = w - (w @ basis.T) @ basis
    return torch.linalg.vector_norm(outside) / torch.linalg.vector_norm(w)


def mlp(width: int = 8) -> nn.Module:
    return nn.Sequential(nn.Linear(4, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, 3))


# ------------------------------------------------------------------------------ flat vectors


def test_flatten_unflatten_round_trip_and_assign():
    model = mlp()
    params = list(model.parameters())
    flat = flatten(params)
    assert flat.shape == (sum(p.numel() for p in params),)
    for a, b in zip(unflatten(flat, [p.shape for p in params]), params):
        assert torch.equal(a, b)
    assert torch.equal(flatten(dict(model.named_parameters())), flat)

    assign_(params, torch.arange(flat.numel(), dtype=flat.dtype))
    assert torch.equal(flatten(params), torch.arange(flat.numel(), dtype=flat.dtype))
    assert params[0].requires_grad  # assigned in place: still the model's parameters


def test_unflatten_rejects_a_vector_of_the_wrong_length():
    with pytest.raises(ValueError, match="does not hold 6 values"):
        unflatten(torch.zeros(5), [(2, 3)])


# ------------------------------------------------------------------------------ bases


@pytest.mark.parametrize("n", [2, 50, 300])
def test_gram_schmidt_rows_are_orthonormal_on_a_correlated_trajectory(n):
    rows = trajectory(n, 3000)
    basis = gram_schmidt(rows)
    assert basis.shape == rows.shape and basis.dtype == torch.float32
    err = (basis @ basis.T - torch.eye(n)).abs().max()
    assert err < 1e-5
    assert residual(rows, basis) < 1e-5  # P spans the rows


def test_gram_schmidt_keeps_the_order_of_the_rows():
    rows = trajectory(6, 200)
    basis = gram_schmidt(rows)
    for j in range(1, 7):  # the first j rows of P span the first j inputs
        assert residual(rows[:j], basis[:j]) < 1e-5
    assert torch.allclose(basis[0], rows[0] / rows[0].norm())


def test_gram_schmidt_drops_dependent_and_zero_rows():
    rows = trajectory(4, 100)
    dependent = torch.stack([rows[0], rows[1], rows[0], 2 * rows[0] - rows[1], 0 * rows[0]])
    dependent = torch.cat([dependent, rows[2:]])
    basis = gram_schmidt(dependent)
    assert basis.shape == (4, 100)
    assert (basis @ basis.T - torch.eye(4)).abs().max() < 1e-5
    assert residual(dependent, basis) < 1e-5


def test_gram_schmidt_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D float tensor"):
        gram_schmidt(torch.zeros(5))
    with pytest.raises(ValueError, match="NaN or inf"):
        gram_schmidt(torch.tensor([[1.0, float("nan")]]))


def test_pca_directions_find_the_axes_of_largest_variance():
    g = torch.Generator().manual_seed(0)
    axes = gram_schmidt(torch.randn(3, 50, generator=g))
    spread = torch.randn(400, 3, generator=g) * torch.tensor([10.0, 3.0, 1.0])
    rows = 5.0 + spread @ axes + 0.01 * torch.randn(400, 50, generator=g)
    directions = pca_directions(rows, 2)
    assert (directions @ directions.T - torch.eye(2)).abs().max() < 1e-5
    assert (directions @ axes.T).abs().diagonal().min() > 0.999  # the two largest, in order
    peak = directions.gather(1, directions.abs().argmax(1, keepdim=True))
    assert (peak > 0).all()  # deterministic signs


def test_pca_directions_rejects_k_beyond_the_rank():
    with pytest.raises(ValueError, match=r"k must be in \[1, 3\].*centring"):
        pca_directions(torch.randn(4, 10), 4)
    assert pca_directions(torch.randn(4, 10), 4, center=False).shape == (4, 10)


# ------------------------------------------------------------------------------ projection


def test_projected_sgd_with_momentum_and_weight_decay_stays_in_the_span():
    rows = trajectory(8, 500)
    basis = gram_schmidt(rows)
    w = nn.Parameter(rows.mean(0).clone())  # TWA's start: the mean, inside the uncentred span
    sgd = torch.optim.SGD([w], lr=0.5, momentum=0.9, weight_decay=1e-3)
    opt = ProjectedOptimizer(sgd, Projector(basis), [w])
    g = torch.Generator().manual_seed(1)
    start = w.detach().clone()
    for _ in range(20):
        opt.zero_grad()
        w.grad = torch.randn(500, generator=g)
        raw = w.grad.clone()
        opt.step()
        assert torch.allclose(w.grad, basis.T @ (basis @ raw), atol=1e-5)
    assert (w.detach() - start).norm() > 1.0  # it moved
    assert residual(w.detach(), basis) < 1e-6


def test_projected_optimizer_fills_missing_gradients_and_checks_the_size():
    a, b = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2))
    basis = torch.eye(5)[[0, 4]]  # coordinates 0 (in a) and 4 (in b)
    opt = ProjectedOptimizer(torch.optim.SGD([a, b], lr=1.0), Projector(basis), [a, b])
    a.grad = torch.tensor([1.0, 2.0, 3.0])
    opt.step()  # b had no gradient: it counts as zero and gets its projected part
    assert torch.equal(a.detach(), torch.tensor([-1.0, 0.0, 0.0]))
    assert torch.equal(b.detach(), torch.zeros(2))
    with pytest.raises(ValueError, match="hold 3 values but the projector's basis has length 5"):
        ProjectedOptimizer(torch.optim.SGD([a], lr=1.0), Projector(basis), [a])


@pytest.mark.parametrize("world", [2, 3, 10])
def test_sharded_projections_sum_to_the_unsharded_one(world):
    basis = gram_schmidt(trajectory(7, 300))
    g = torch.randn(300, generator=torch.Generator().manual_seed(2))
    shards = [Projector(basis, shard=(r, world)) for r in range(world)]
    held = [i for s in shards for i in range(s.total_rows)[s.rows]]
    assert held == list(range(7))  # disjoint, contiguous, all rows
    assert not any(s.reduce for s in shards)  # no process group: each returns its own part
    total = sum(s.project(g) for s in shards)
    assert torch.allclose(total, Projector(basis).project(g), atol=1e-6)


def test_shard_rows_and_projector_reject_bad_input():
    assert [shard_rows(5, r, 2) for r in range(2)] == [slice(0, 3), slice(3, 5)]
    with pytest.raises(ValueError, match="0 <= rank < world"):
        shard_rows(5, 2, 2)
    with pytest.raises(ValueError, match="vector of length 4"):
        Projector(torch.eye(4)).project(torch.zeros(3))


# ------------------------------------------------------------------------------ quantisation


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_dequantisation_error_is_at_most_half_a_step(bits):
    x = torch.randn(6, 1000, generator=torch.Generator().manual_seed(bits)) * 0.05
    q = quantize(x, bits)
    assert q.codes.dtype == torch.uint8 and q.codes.shape == x.shape
    assert int(q.codes.max()) <= 2**bits - 1
    assert q.scale.shape == (6, 1)
    error = (q.dequantize() - x).abs()
    assert (error <= q.scale / 2 * (1 + 1e-5) + 1e-7).all()
    # the bound is attained: with few levels some entries really are about scale/2 off
    assert (error.amax(-1) > 0.4 * q.scale.squeeze(-1)).all()


def test_quantize_reconstructs_a_constant_row_exactly_and_rejects_bad_bits():
    q = quantize(torch.full((2, 5), 0.25), 3)
    assert torch.equal(q.dequantize(), torch.full((2, 5), 0.25))
    for bits in (0, 9, 2.5):
        with pytest.raises(ValueError, match="bits must be an integer in"):
            quantize(torch.zeros(4), bits)


# ------------------------------------------------------------------------------ checkpoints


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_validate_checkpoints_keeps_parameters_in_model_order():
    model = mlp()
    full = {k: v.clone() for k, v in reversed(model.state_dict().items())}  # with BN buffers
    kept = validate_checkpoints([full, snapshot(model)], model)
    names = [n for n, _ in model.named_parameters()]
    assert [list(c) for c in kept] == [names, names]
    rows = stack_checkpoints(kept)
    assert rows.shape == (2, sum(p.numel() for p in model.parameters()))
    assert torch.equal(rows[0], flatten(model.parameters()))


def test_validate_checkpoints_needs_two():
    with pytest.raises(ValueError, match="at least 2 checkpoints.*got 1"):
        validate_checkpoints([snapshot(mlp())])
    with pytest.raises(ValueError, match="list of state dicts"):
        validate_checkpoints(snapshot(mlp()))


def test_validate_checkpoints_names_the_first_differing_key_and_both_shapes():
    narrow, wide = mlp(8), mlp(16)
    message = r"checkpoint 1 does not match the model at '0.weight': shape \(16, 4\) in the "
    with pytest.raises(ValueError, match=message + r"checkpoint, \(8, 4\) in the model"):
        validate_checkpoints([snapshot(narrow), snapshot(wide)], narrow)
    with pytest.raises(ValueError, match=r"checkpoint 1 does not match checkpoint 0 at '0.weight'"):
        validate_checkpoints([snapshot(narrow), snapshot(wide)])


def test_validate_checkpoints_rejects_missing_and_unknown_keys():
    model = mlp()
    missing = snapshot(model)
    del missing["3.bias"]
    with pytest.raises(ValueError, match="checkpoint 1 lacks parameter '3.bias'"):
        validate_checkpoints([snapshot(model), missing], model)
    extra = {**snapshot(model), "4.weight": torch.zeros(3, 3)}
    with pytest.raises(ValueError, match="checkpoint 0 has '4.weight'.*different architecture"):
        validate_checkpoints([extra, snapshot(model)], model)
    with pytest.raises(ValueError, match="checkpoint 1 is a list"):
        validate_checkpoints([snapshot(model), [1, 2]], model)


def test_subspace_sharpness_is_the_top_eigenvalue_of_the_restricted_hessian():
    """A quadratic ½ wᵀ A w has Hessian A: the estimate is λ_max(P A Pᵀ), also when A's
    eigenvalue of largest magnitude is negative; the lr bound is 2 (1 + momentum) / λ."""
    from yw_core.subspace import gram_schmidt, momentum_lr_bound, subspace_sharpness

    g = torch.Generator().manual_seed(0)
    q = torch.linalg.qr(torch.randn(6, 6, generator=g))[0]
    for eigenvalues in ([3.0, 1.0, 0.5, 0.2, 0.1, 0.0], [0.8, 0.3, 0.1, 0.0, -0.5, -4.0]):
        a = q @ torch.diag(torch.tensor(eigenvalues)) @ q.t()
        w = torch.zeros(6, requires_grad=True)
        basis = gram_schmidt(torch.randn(4, 6, generator=g))
        expected = float(torch.linalg.eigvalsh(basis @ a @ basis.t())[-1])
        found = subspace_sharpness(lambda: 0.5 * w @ a @ w, [w], basis, iters=200, generator=g)
        assert found == pytest.approx(expected, rel=1e-3, abs=1e-4)
    assert momentum_lr_bound(3.8, 0.9) == pytest.approx(1.0)
    assert momentum_lr_bound(-1.0, 0.9) == float("inf")
