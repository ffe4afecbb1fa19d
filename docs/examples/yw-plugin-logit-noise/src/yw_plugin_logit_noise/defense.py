"""LogitNoise: add Gaussian noise to a classifier's logits, a random-noise defense.

Score-based query attacks (Square, SimBA, NES, ...) compare the scores of nearby inputs to pick
the next step. Noise on the scores makes those comparisons unreliable, so the attack spends its
query budget following noise. The defense needs no training and leaves the model's weights alone.
Its cost: a prediction whose margin is small next to sigma can flip.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch import nn
from yw_core.interfaces import Capabilities, Defense, MethodConfig
from yw_core.runtime import Runtime


class NoisyLogits(nn.Module):
    """Wraps a classifier: forward returns its logits plus N(0, sigma^2) noise per logit.

    The wrapper owns its generator, so its noise does not depend on (or disturb) the global RNG:
    two wrappers made with the same seed give the same noise for the same sequence of calls.
    """

    def __init__(self, model: nn.Module, sigma: float, generator: torch.Generator):
        super().__init__()
        self.model = model
        self.sigma = sigma
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        if self.sigma == 0.0:
            return logits
        # Draw on the generator's device (the runtime's), then move to the logits' device and
        # dtype; .to() copies nothing when they already match.
        noise = torch.randn(logits.shape, generator=self.generator, device=self.generator.device)
        return logits + self.sigma * noise.to(logits)


class LogitNoise(Defense):
    """Post-hoc random-noise defense against score-based query attacks (no paper of its own)."""

    name = "logit-noise"
    summary = "Adds Gaussian noise to the logits so score-based query attacks see noisy scores."
    paper = None
    status = "experimental"
    capabilities = Capabilities(post_hoc=True, randomized=True)

    class Config(MethodConfig):
        sigma: float = Field(
            0.1,
            ge=0.0,
            le=10.0,
            description="standard deviation of the Gaussian noise added to each logit",
        )

    def protect(self, model: nn.Module, *, data: Any = None, runtime: Runtime) -> nn.Module:
        """Wrap `model`; `data` is not used (the defense needs no calibration)."""
        return NoisyLogits(model, self.config.sigma, runtime.generator())
