"""The yw-core weight-optimizer conformance suite for both TWA variants."""

import torch

from yw_core.testing import conformance_suite
from yw_plugin_twa import TWA


def _checkpoints(self, model):
    """Three noisy copies of the tiny model's parameters."""
    g = torch.Generator().manual_seed(0)
    noisy = [
        {
            n: p.detach().cpu() + 0.05 * torch.randn(p.shape, generator=g)
            for n, p in model.named_parameters()
        }
        for _ in range(3)
    ]
    return {"checkpoints": noisy}


TestTWA = conformance_suite(TWA, attach_kwargs=_checkpoints)
TestTWAJournal = conformance_suite(
    TWA, attach_kwargs=_checkpoints, config_overrides={"variant": "journal"}
)
