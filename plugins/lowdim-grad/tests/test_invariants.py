"""Spec §1 (g): every piece equals its explicit counterpart on a small problem, where the
per-sample gradients Φ (n x p, 80 x 4,485) can be formed: the JVPs and VJPs, the NFK statistics
and the rule for infinite scales, the power-iteration subspace against numpy's SVD, the chunked
features against Φ V, the average-gradient columns against class means."""

import numpy as np
import pytest
import torch
from torch import nn

from yw_core.models import SplitClassifier
from yw_plugin_lowdim_grad import (
    FitJacobian,
    GradientMap,
    LowDimGrad,
    Normalisation,
    avg_grad_basis,
    explicit_pca_basis,
    fill_infinite,
    pca_basis,
    project,
    select_parameters,
)
from yw_plugin_lowdim_grad import params as params_module


@pytest.fixture(scope="module")
def problem(trained_mlp, digits_ood):
    """(gmap, x, y, raw Φ): all parameters of the trained MLP, 80 fit inputs, their gradients."""
    fit, _, _ = digits_ood
    x, y = fit.tensors[0][:80], fit.tensors[1][:80]
    gmap = GradientMap(trained_mlp, select_parameters(trained_mlp, "all"))
    return gmap, x, y, explicit_gradients(trained_mlp, gmap.names, x)


def explicit_gradients(model, names, x) -> torch.Tensor:
    """Each input's gradient of logsumexp(logits) by plain autograd, one input at a time."""
    params = dict(model.named_parameters())
    rows = []
    for xi in x:
        y = torch.logsumexp(model(xi[None]), dim=1).sum()
        grads = torch.autograd.grad(y, [params[n] for n in names])
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows)


def assert_near(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-4):
    """Elementwise close, with an absolute slack of rtol x the largest expected magnitude: the
    float32 sums of thousands of terms cancel, so small entries carry the large ones' error."""
    expected = expected.to(actual.dtype)
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * expected.abs().max().item())


def explicit_phi(raw: torch.Tensor, mode: str) -> torch.Tensor:
    """φ from Φ_raw in float64: s ⊙ (g − mean) with s = var^(-1/2), or g itself."""
    raw = raw.double()
    if mode == "ntk":
        return raw
    mean = raw.mean(0)
    scale = fill_infinite((raw - mean).square().mean(0).rsqrt())
    return (raw - mean) * scale


def test_per_sample_gradients_equal_autograd(problem):
    gmap, x, _, raw = problem
    assert gmap.p == 4485 == raw.shape[1]
    torch.testing.assert_close(gmap.flatten(gmap.per_sample(x)), raw, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("prefixes", [None, ("head",), ("features.1",)], ids=str)
def test_jvp_and_vjp_equal_explicit_products(trained_mlp, problem, prefixes):
    _, x, _, _ = problem
    names = select_parameters(trained_mlp, prefixes or "all")
    gmap = GradientMap(trained_mlp, names)
    raw = explicit_gradients(trained_mlp, names, x)
    g = torch.Generator().manual_seed(0)
    tangents, cotangents = torch.randn(gmap.p, 3, generator=g), torch.randn(len(x), 3, generator=g)
    raw, tangents, cotangents = raw.double(), tangents.double(), cotangents.double()
    assert_near(gmap.jvp(x, tangents.float()), raw @ tangents)
    assert_near(gmap.vjp(x, cotangents.float()), raw.T @ cotangents)


def test_parameters_outside_the_set_are_constants(trained_mlp, problem):
    _, x, _, raw = problem
    gmap = GradientMap(trained_mlp, ["head.weight", "head.bias"])
    assert gmap.p == 5 * 64 + 5
    torch.testing.assert_close(gmap.flatten(gmap.per_sample(x)), raw[:, -gmap.p :])


@pytest.mark.parametrize("mode", ["nfk", "ntk"])
def test_phi_products_equal_explicit_products(problem, mode):
    gmap, x, _, raw = problem
    norm = Normalisation.fit(gmap, x, mode=mode, chunk_size=16, batch_size=32)
    phi = explicit_phi(raw, mode)
    op = FitJacobian(gmap, norm, x, batch_size=24)  # 80 inputs: batches of 24, 24, 24, 8
    g = torch.Generator().manual_seed(1)
    y, w = torch.randn(gmap.p, 4, generator=g), torch.randn(len(x), 4, generator=g)
    assert_near(op.matvec(y), phi @ y.double())
    assert_near(op.rmatvec(w), phi.T @ w.double())
    assert_near(op.gram(y), phi.T @ (phi @ y.double()))


@pytest.mark.parametrize("chunk_size", [1, 7, 80])
def test_nfk_statistics_equal_explicit_mean_and_variance(problem, chunk_size):
    gmap, x, _, raw = problem
    norm = Normalisation.fit(gmap, x, mode="nfk", chunk_size=chunk_size, batch_size=33)
    raw = raw.double()
    mean, var = raw.mean(0), (raw - raw.mean(0)).square().mean(0)
    torch.testing.assert_close(norm.mean.double(), mean, rtol=1e-5, atol=1e-7)
    finite = var > 0
    torch.testing.assert_close(norm.scale.double()[finite], var[finite].rsqrt(), rtol=1e-4, atol=0)
    # dead hidden units give exactly zero variance: their scale is the largest finite one
    assert (~finite).any()
    assert torch.all(norm.scale[~finite] == norm.scale[finite].max())
    assert Normalisation.fit(gmap, x, mode="ntk", chunk_size=8, batch_size=8).mean is None


@pytest.mark.parametrize(
    "scale,expected",
    [
        ([float("inf"), 0.5, 2.0, float("inf")], [2.0, 0.5, 2.0, 2.0]),  # max finite > 1
        ([float("inf"), 0.5, 0.25], [1.0, 0.5, 0.25]),  # max finite < 1: 1
        ([float("inf"), float("inf")], [1.0, 1.0]),  # nothing finite: 1
        ([0.5, 1.0, 3.0], [0.5, 1.0, 3.0]),  # nothing infinite: unchanged (1.0 included)
    ],
)
def test_infinite_scales_become_max_of_largest_finite_and_1(scale, expected):
    assert fill_infinite(torch.tensor(scale)).tolist() == expected


def test_a_parameter_the_output_ignores_gets_a_finite_scale_and_zero_phi(problem):
    """Its gradient is 0 for every input (vmap may hand it back expanded): variance 0, scale
    filled, φ = 0 there, and the chunked feature still works."""
    _, x, _, _ = problem
    torch.manual_seed(0)
    model = SplitClassifier(
        nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU()), nn.Linear(8, 3)
    )
    model.unused = nn.Linear(2, 2)
    gmap = GradientMap(model, select_parameters(model, "all"))
    norm = Normalisation.fit(gmap, x, mode="nfk", chunk_size=16, batch_size=16)
    rows = gmap.slices["unused.weight"]
    assert torch.isfinite(norm.scale).all() and (norm.scale[rows] >= 1).all()
    basis = torch.linalg.qr(torch.randn(gmap.p, 3)).Q
    h = project(gmap, norm, basis, x[:10], chunk_size=4)
    phi = norm.phi(gmap.flatten(gmap.per_sample(x[:10])))
    assert (phi[:, rows] == 0).all()
    assert_near(h, phi.double() @ basis.double())


@pytest.mark.parametrize("mode", ["nfk", "ntk"])
def test_power_iteration_spans_the_top_singular_vectors_of_explicit_phi(problem, mode):
    gmap, x, _, raw = problem
    norm = Normalisation.fit(gmap, x, mode=mode, chunk_size=16, batch_size=32)
    op = FitJacobian(gmap, norm, x, batch_size=32)
    k = 10
    basis, sigma = pca_basis(
        op, k, block_size=5, iterations=10, generator=torch.Generator().manual_seed(0)
    )
    assert basis.shape == (gmap.p, k)
    torch.testing.assert_close(basis.T @ basis, torch.eye(k), rtol=0, atol=1e-5)
    _, s, vt = np.linalg.svd(explicit_phi(raw, mode).numpy(), full_matrices=False)
    v, ours = vt[:k].T, basis.double().numpy()
    np.testing.assert_allclose(sigma.numpy()[:7], s[:7], rtol=1e-3)
    gapped = [m for m in range(1, 8) if s[m - 1] / s[m] > 1.1]
    assert gapped, f"no spectral gap among the top components: {s[:8]}"
    for m in gapped:  # cosines of the principal angles between the two top-m subspaces
        cosines = np.linalg.svd(ours[:, :m].T @ v[:, :m], compute_uv=False)
        assert cosines.min() > 0.999, (m, cosines)


@pytest.mark.parametrize("mode", ["nfk", "ntk"])
def test_explicit_solver_gives_the_top_singular_vectors_of_phi(problem, mode):
    gmap, x, _, raw = problem
    norm = Normalisation.fit(gmap, x, mode=mode, chunk_size=16, batch_size=32)
    k = 10
    basis, sigma = explicit_pca_basis(gmap, norm, x, k, chunk_size=7)
    torch.testing.assert_close(basis.T @ basis, torch.eye(k), rtol=0, atol=1e-5)
    _, s, vt = np.linalg.svd(explicit_phi(raw, mode).numpy(), full_matrices=False)
    np.testing.assert_allclose(sigma.numpy(), s[:k], rtol=1e-4)
    for m in [m for m in range(1, k) if s[m - 1] / s[m] > 1.01]:
        cosines = np.linalg.svd(basis.double().numpy()[:, :m].T @ vt[:m].T, compute_uv=False)
        assert cosines.min() > 0.999, (m, cosines)


def test_auto_solver_holds_phi_only_under_the_limit(trained_mlp, digits_ood, runtime):
    from yw_plugin_lowdim_grad import LowDimGrad

    model, (train, _, _) = trained_mlp, digits_ood
    small = LowDimGrad(k=5, n_fit=60).fit(model, train, runtime=runtime)
    large = LowDimGrad(k=5, n_fit=60, explicit_limit=0, power_iterations=2).fit(
        model, train, runtime=runtime
    )
    assert (small.solver, large.solver) == ("explicit", "power")


@pytest.mark.parametrize("chunk_size", [1, 7, 32, 100])
def test_chunked_features_equal_explicit_phi_times_v(problem, chunk_size):
    gmap, x, _, raw = problem
    norm = Normalisation.fit(gmap, x, mode="nfk", chunk_size=32, batch_size=32)
    basis = torch.linalg.qr(torch.randn(gmap.p, 12, generator=torch.Generator().manual_seed(2))).Q
    expected = explicit_phi(raw, "nfk") @ basis.double()
    assert_near(project(gmap, norm, basis, x, chunk_size), expected)


@pytest.mark.parametrize("dtype,tolerance", [(torch.float16, 2e-3), (torch.bfloat16, 1e-2)])
def test_low_precision_basis_stays_close(problem, dtype, tolerance):
    gmap, x, _, raw = problem
    norm = Normalisation.fit(gmap, x, mode="nfk", chunk_size=32, batch_size=32)
    basis = torch.linalg.qr(torch.randn(gmap.p, 12, generator=torch.Generator().manual_seed(2))).Q
    expected = explicit_phi(raw, "nfk").float() @ basis
    h = project(gmap, norm, basis.to(dtype), x, chunk_size=16)
    assert h.dtype == torch.float32
    assert ((h - expected).norm() / expected.norm()).item() < tolerance


def test_avg_grad_columns_are_normalised_class_means(problem):
    gmap, x, y, raw = problem
    norm = Normalisation.fit(gmap, x, mode="nfk", chunk_size=32, batch_size=32)
    basis, classes = avg_grad_basis(FitJacobian(gmap, norm, x, batch_size=32), y)
    assert classes.tolist() == sorted(set(y.tolist()))
    raw = raw.double()
    scale = fill_infinite((raw - raw.mean(0)).square().mean(0).rsqrt())
    for j, c in enumerate(classes.tolist()):
        column = scale * (raw[y == c].mean(0) - raw.mean(0))
        torch.testing.assert_close(
            basis[:, j].double(), column / column.norm(), rtol=1e-3, atol=1e-5
        )
    assert basis.T @ basis != pytest.approx(torch.eye(len(classes)))  # not orthogonalised


def test_transform_is_explicit_phi_times_the_fitted_basis(trained_mlp, problem, runtime):
    from torch.utils.data import TensorDataset

    gmap, x, y, raw = problem
    scorer = LowDimGrad(k=10, chunk_size=9).fit(trained_mlp, TensorDataset(x, y), runtime=runtime)
    assert scorer.param_names == gmap.names
    expected = explicit_phi(raw, "nfk") @ scorer.basis.double()
    assert_near(scorer.transform(x), expected)


def test_auto_takes_every_parameter_up_to_the_limit_then_head_and_last_stage(
    trained_mlp, monkeypatch
):
    assert params_module.AUTO_LIMIT == 5_000_000
    everything = [n for n, _ in trained_mlp.named_parameters()]
    assert select_parameters(trained_mlp, "auto") == everything
    monkeypatch.setattr(params_module, "AUTO_LIMIT", 100)
    deep = SplitClassifier(
        nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU()),
        nn.Linear(8, 3),
    )
    assert select_parameters(deep, "auto") == [
        "features.3.weight",
        "features.3.bias",
        "head.weight",
        "head.bias",
    ]
    plain = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 3), nn.Identity())
    assert select_parameters(plain, "auto") == ["3.weight", "3.bias"]  # last parameterised child
    assert select_parameters(deep, "all") == [n for n, _ in deep.named_parameters()]


def test_prefixes_match_whole_name_components():
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(11)])
    assert select_parameters(model, ("1",)) == ["1.weight", "1.bias"]  # not 10.*
    assert select_parameters(model, ("10.bias", "0")) == ["0.weight", "0.bias", "10.bias"]
