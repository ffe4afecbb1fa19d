"""Generative-model metrics: the Fréchet distance between two sets of features (FID's formula)."""

from __future__ import annotations

import numpy as np

from ._arrays import to_numpy


def frechet_distance(a, b) -> float:
    """‖μ_a − μ_b‖² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½) of the Gaussians fitted to the rows of `a`
    and `b` (n × d features; FID when the features are Inception's). Needs 2+ finite rows each."""
    from scipy import linalg

    a, b = _features(a, "a"), _features(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b need the same feature width, got {a.shape[1]} and {b.shape[1]}")
    mu = a.mean(0) - b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # singular product: the usual FID fix, a small ridge
        ridge = np.eye(cov_a.shape[0]) * 1e-6
        root = linalg.sqrtm((cov_a + ridge) @ (cov_b + ridge))
    value = float(mu @ mu + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root.real))
    return max(value, 0.0)


def _features(x, name: str) -> np.ndarray:
    arr = to_numpy(x, name).astype(np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"{name} must be (n, d) features with n >= 2, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or inf")
    return arr
