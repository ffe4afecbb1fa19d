"""Randomized smoothing: CERTIFY and PREDICT of Cohen et al. (ICML 2019), spec section 9.

The smoothed classifier g(x) = argmax_c P(f(x + delta) = c), delta ~ N(0, sigma^2 I), with the noise
added in [0, 1] input space (normalisation lives in the model). `model` maps a batch to logits and
f is their argmax. Both functions work on ONE input `x` given without its batch dimension, e.g.
(C, H, W); the noise samples are batched `batch_size` at a time on x's device. Put the model in eval
mode first. Torch and SciPy are imported inside the functions, to keep `yw_core.metrics` light.
"""

from __future__ import annotations

import numpy as np

from ._arrays import positive_int, vector

ABSTAIN = -1


def certify(
    model,
    x,
    sigma: float,
    *,
    n0: int = 100,
    n: int = 100_000,
    alpha: float = 0.001,
    batch_size: int = 400,
    generator,
) -> tuple[int, float]:
    """(class, L2 radius) in which g is certified constant w.p. >= 1 - alpha; (-1, 0.0) = abstain.

    n0 noisy samples pick the top class; n fresh ones bound its probability from below.
    """
    from scipy.stats import norm

    _check_sigma_alpha(sigma, alpha)
    n0, n = positive_int(n0, "n0"), positive_int(n, "n")
    if n0 > n:
        raise ValueError(
            f"n0 (selection samples, {n0}) must not exceed n (estimation samples, {n})"
        )
    guess = int(_noisy_counts(model, x, sigma, n0, batch_size, generator).argmax())
    n_a = int(_noisy_counts(model, x, sigma, n, batch_size, generator)[guess])
    p_a = lower_confidence_bound(n_a, n, alpha)
    if p_a < 0.5:
        return ABSTAIN, 0.0
    return guess, float(sigma * norm.ppf(p_a))


def predict(
    model,
    x,
    sigma: float,
    *,
    n: int = 100_000,
    alpha: float = 0.001,
    batch_size: int = 400,
    generator,
) -> int:
    """g's class at x, or -1 (abstain) when a two-sided binomial test of the top two counts fails.

    A returned class differs from g(x) with probability at most alpha.
    """
    from scipy.stats import binomtest

    _check_sigma_alpha(sigma, alpha)
    counts = _noisy_counts(model, x, sigma, positive_int(n, "n"), batch_size, generator)
    order = np.argsort(-counts, kind="stable")
    top = int(counts[order[0]])
    second = int(counts[order[1]]) if len(counts) > 1 else 0
    if binomtest(top, top + second, 0.5).pvalue > alpha:
        return ABSTAIN
    return int(order[0])


def lower_confidence_bound(n_a: int, n: int, alpha: float) -> float:
    """One-sided (1 - alpha) Clopper-Pearson lower bound on p from n_a successes in n trials."""
    from scipy.stats import beta

    n = positive_int(n, "n")
    if isinstance(n_a, bool) or not isinstance(n_a, (int, np.integer)) or not 0 <= n_a <= n:
        raise ValueError(f"n_a must be an integer in [0, n={n}], got {n_a!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if n_a == 0:
        return 0.0
    return float(beta.ppf(alpha, n_a, n - n_a + 1))


def certified_accuracy(predictions, radii, y, radius: float) -> float:
    """Fraction of samples correct with certified radius >= `radius` (abstain counts as wrong)."""
    if not radius >= 0:
        raise ValueError(f"radius must be >= 0, got {radius!r}")
    correct, r = _correct_and_radii(predictions, radii, y)
    return float(np.mean(correct & (r >= radius)))


def average_certified_radius(predictions, radii, y) -> float:
    """ACR (Zhai et al., MACER): mean over samples of the radius, counting wrong/abstain as 0."""
    correct, r = _correct_and_radii(predictions, radii, y)
    return float(np.mean(np.where(correct, r, 0.0)))


def _noisy_counts(model, x, sigma, num, batch_size, generator) -> np.ndarray:
    """How often f predicts each class over `num` Gaussian perturbations of x."""
    import torch

    batch_size = positive_int(batch_size, "batch_size")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError("x must be one floating-point input tensor, without the batch dimension")
    if not isinstance(generator, torch.Generator):
        raise ValueError("generator must be a seeded torch.Generator (e.g. runtime.generator())")
    if generator.device.type != x.device.type:
        raise ValueError(f"generator is on {generator.device} but x is on {x.device}")
    counts = None
    with torch.no_grad():
        for start in range(0, num, batch_size):
            size = min(batch_size, num - start)
            batch = x.unsqueeze(0).expand(size, *x.shape)
            noise = torch.randn(batch.shape, generator=generator, device=x.device, dtype=x.dtype)
            logits = model(batch + sigma * noise)
            if logits.ndim != 2 or logits.shape[0] != size:
                raise ValueError(
                    f"model must return logits of shape ({size}, C), got {logits.shape}"
                )
            if counts is None:
                counts = torch.zeros(logits.shape[1], dtype=torch.long, device=logits.device)
            counts += torch.bincount(logits.argmax(dim=1), minlength=logits.shape[1])
    return counts.cpu().numpy()


def _check_sigma_alpha(sigma, alpha) -> None:
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")


def _correct_and_radii(predictions, radii, y) -> tuple[np.ndarray, np.ndarray]:
    pred = vector(predictions, "predictions")
    r = vector(radii, "radii").astype(np.float64)
    target = vector(y, "y")
    if not (len(pred) == len(r) == len(target)):
        raise ValueError(
            f"predictions, radii and y must have the same length, got "
            f"{len(pred)}, {len(r)} and {len(target)}"
        )
    if np.isnan(r).any() or r.min() < 0:
        raise ValueError("radii must be >= 0")
    return pred == target, r
