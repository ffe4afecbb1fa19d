"""Keep BatchNorm running statistics out of a perturbed pass."""

from __future__ import annotations

from contextlib import contextmanager

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@contextmanager
def frozen_bn_stats(model: nn.Module):
    """Inside the block, BatchNorm layers in training mode still normalise with the batch's
    statistics but leave `running_mean`, `running_var` and `num_batches_tracked` untouched.

    It switches `track_running_stats` off for the block (BatchNorm then passes no running
    buffers to `F.batch_norm`), which is exact, unlike a momentum of 0.
    """
    tracked = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    for m in tracked:
        m.track_running_stats = False
    try:
        yield model
    finally:
        for m in tracked:
            m.track_running_stats = True
