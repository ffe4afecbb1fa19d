"""Temperature for AAA's calibration term, tuned on held-out data (spec §1(b) step 7).

AAA pulls the top-1 probability of its output towards p_ref = max softmax(z0 / T). The reference
tunes T by the ECE of AAA's outputs but never calls the tuning in its released run (spec §1(f)),
so T stays 1 there. Here T is picked from TEMPERATURE_GRID by the ECE (15 bins) of AAA's outputs
on labelled calibration data; T = 1 is tried first and kept unless another T is strictly better,
so the chosen T never has a higher calibration-set ECE than T = 1.
"""

from __future__ import annotations

import torch

from yw_core.metrics import expected_calibration_error
from yw_plugin_aaa.postprocessing import postprocess

# 2^(k/3) for k = -18..18: 37 log-spaced values from 1/64 to 64, ratio 1.26 between neighbours,
# with 1 in the middle (the reference searches t and 1/t for t in {0.001, ..., 0.999}: 2000 runs
# of AAA). At T = 64, p_ref is within a few percent of 1/C for logit gaps up to about 5.
TEMPERATURE_GRID = tuple(2.0 ** (k / 3) for k in range(-18, 19))


def tune_temperature(
    z0: torch.Tensor, y: torch.Tensor, grid=TEMPERATURE_GRID, **settings
) -> tuple[float, dict[float, float]]:
    """The T in `grid` whose AAA outputs on clean logits z0 have the lowest ECE against labels y.

    Returns (T, {T: ECE}); ties and non-improvements keep T = 1 (tried first when in the grid).
    """
    if len(z0) != len(y) or len(y) == 0:
        raise ValueError(f"need as many labels as logits (>0), got {len(y)} and {len(z0)}")
    ordered = sorted(grid, key=lambda t: (t != 1.0, t))
    ece = {}
    for t in ordered:
        out = postprocess(z0, temperature=t, **settings)
        ece[t] = expected_calibration_error(out.float().softmax(1), y)
    best = min(ordered, key=ece.__getitem__)  # min keeps the first of equal values
    return best, ece


def calibration_tensors(data, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n (x, y) of a TensorDataset-like object (`.tensors`) or an indexable of pairs."""
    if hasattr(data, "tensors"):
        if len(data.tensors) < 2:
            raise ValueError("calibration data must hold labels: a (x, y) TensorDataset")
        x, y = data.tensors[0][:n], data.tensors[1][:n]
    else:
        try:
            pairs = [data[i] for i in range(min(n, len(data)))]
            x = torch.stack([torch.as_tensor(p[0]) for p in pairs]) if pairs else None
            y = torch.as_tensor([int(p[1]) for p in pairs])
        except (TypeError, IndexError, ValueError) as exc:
            raise ValueError(
                "calibration data must be a TensorDataset or an indexable of (x, y) pairs "
                f"with integer labels ({exc})"
            ) from exc
    if x is None or len(x) == 0:
        raise ValueError("calibration data is empty")
    y = torch.as_tensor(y)
    if y.dim() != 1 or y.is_floating_point() or len(y) != len(x):
        raise ValueError(
            f"calibration labels must be integer class indices of shape ({len(x)},), "
            f"got {y.dtype} of shape {tuple(y.shape)}"
        )
    return x, y
