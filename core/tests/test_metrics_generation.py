"""frechet_distance against the closed form for Gaussians with known moments."""

import numpy as np
import pytest

from yw_core.metrics import frechet_distance


def test_identical_sets_are_at_distance_zero():
    a = np.random.default_rng(0).normal(size=(50, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_a_shift_adds_its_squared_length():
    a = np.random.default_rng(0).normal(size=(200, 4))
    assert frechet_distance(a, a + [1.0, 2.0, 0.0, 0.0]) == pytest.approx(5.0, rel=1e-6)


def test_diagonal_covariances_match_the_closed_form():
    """For diagonal Σ_a, Σ_b: FD = Σ_i (σ_ai − σ_bi)² (plus the mean term, 0 here): the sample
    moments of two whitened sets scaled per axis."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(400, 3))
    z = (z - z.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    sa, sb = np.array([1.0, 2.0, 0.5]), np.array([3.0, 1.0, 0.5])
    expected = float(((sa - sb) ** 2).sum())
    assert frechet_distance(z * sa, z * sb) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.zeros((1, 2)), np.zeros((3, 2)), "a must be .* n >= 2"),
        (np.zeros((3, 2)), np.zeros((3, 3)), "same feature width"),
        (np.full((3, 2), np.nan), np.zeros((3, 2)), "a holds NaN"),
    ],
)
def test_bad_features_are_named(a, b, message):
    with pytest.raises(ValueError, match=message):
        frechet_distance(a, b)
