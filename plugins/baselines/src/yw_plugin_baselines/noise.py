"""Random-noise baselines against score-based query attacks: Gaussian noise on each query's input
(RND, Qin et al. 2021; AAA's inRND; UniG's RND) or on its output logits (AAA's outRND).

Every call draws fresh noise, so two identical queries get different answers: that randomness is
the whole defense. The noise comes from the wrapper's own torch.Generator, seeded with
`runtime.seed` at protect() time (one stream per device, created on the input's device at first
use), so a protected model gives the same sequence of outputs for the same seed and sequence of
calls, independently of the global RNG.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from yw_core.interfaces import Capabilities, Defense, MethodConfig, Paper
from yw_core.models import eval_mode
from yw_core.runtime import Runtime


class NoisyModel(nn.Module):
    """A frozen model whose input or output gets sigma * N(0, I) added on every forward."""

    def __init__(
        self,
        model: nn.Module,
        *,
        sigma: float,
        where: Literal["input", "output"],
        clip: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        if where not in ("input", "output"):
            raise ValueError(f"where must be 'input' or 'output', got {where!r}")
        if not sigma >= 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.model = model
        self.sigma = float(sigma)
        self.where = where
        self.clip = bool(clip)
        self.seed = int(seed)
        self._generators: dict[torch.device, torch.Generator] = {}

    def _noise(self, like: torch.Tensor) -> torch.Tensor:
        """sigma * N(0, I) shaped like `like`, from this wrapper's stream on `like`'s device."""
        if like.device not in self._generators:
            self._generators[like.device] = torch.Generator(like.device).manual_seed(self.seed)
        gen = self._generators[like.device]
        noise = torch.randn(like.shape, generator=gen, device=like.device, dtype=like.dtype)
        return self.sigma * noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Defended logits: the model in eval mode on the (noisy) input, plus any output noise."""
        if self.where == "input":
            if self.clip and x.numel() and (x.min() < 0 or x.max() > 1):
                lo, hi = x.min().item(), x.max().item()
                raise ValueError(
                    f"x must lie in [0, 1] when clip=True, got [{lo:.3g}, {hi:.3g}]; keep the "
                    "input normalisation inside the model, or set clip=False"
                )
            if self.sigma > 0:
                x = x + self._noise(x)
                if self.clip:
                    x = x.clamp(0, 1)
        with eval_mode(self.model):
            logits = self.model(x)
        if torch.isnan(logits).any():
            raise ValueError("the wrapped model returned NaN logits")
        if self.where == "output" and self.sigma > 0:
            logits = logits + self._noise(logits)
        return logits

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, where={self.where!r}, clip={self.clip}, seed={self.seed}"


class RND(Defense):
    """Random Noise Defense: each query x is answered with model(clip(x + sigma*N(0, I), 0, 1))."""

    name = "rnd"
    summary = "RND: Gaussian noise on each query's input (a baseline against score-based attacks)"
    paper = Paper(
        title="Random Noise Defense Against Query-Based Black-Box Attacks",
        authors=("Qin", "Fan", "Zha", "Wu"),
        year=2021,
        venue="NeurIPS",
        arxiv_id="2104.11470",
    )
    status = "baseline"
    capabilities = Capabilities(post_hoc=True, deterministic=True, randomized=True)

    class Config(MethodConfig):
        sigma: float = Field(
            0.02,
            ge=0,
            le=1,
            description="std of the Gaussian noise added to inputs in [0, 1] (0.02: AAA's inRND "
            "for standard models and UniG's RND; AAA uses 0.05 for robust models)",
        )
        clip: bool = Field(
            True,
            description="clip the noisy input to [0, 1], as AAA's inRND and UniG's RND do; "
            "inputs must then lie in [0, 1]",
        )

    def protect(self, model: nn.Module, *, data=None, runtime: Runtime) -> nn.Module:
        """Wrap `model` (left unchanged) so every forward adds fresh input noise; `data` unused."""
        c = self.config
        return NoisyModel(model, sigma=c.sigma, where="input", clip=c.clip, seed=runtime.seed)


class OutputNoise(Defense):
    """outRND: each query x is answered with model(x) + sigma * N(0, I) on the logits."""

    name = "out-rnd"
    summary = "outRND: Gaussian noise on the output logits (AAA's baseline)"
    paper = Paper(
        title="Adversarial Attack on Attackers: Post-Process to Mitigate Black-Box Score-Based "
        "Query Attacks",
        authors=("Chen", "Huang", "Tao", "Wu", "Xie", "Huang"),  # as registry.toml lists them
        year=2022,
        venue="NeurIPS",
        arxiv_id="2205.12134",
        code_url="https://github.com/Sizhe-Chen/AAA",
    )
    status = "baseline"
    capabilities = Capabilities(post_hoc=True, deterministic=True, randomized=True)

    class Config(MethodConfig):
        sigma: float = Field(
            1.0,
            ge=0,
            le=100,
            description="std of the Gaussian noise added to every logit (1.0: AAA's outRND for "
            "standard models; AAA uses 0.3 for robust models)",
        )

    def protect(self, model: nn.Module, *, data=None, runtime: Runtime) -> nn.Module:
        """Wrap `model` (left unchanged) so every forward adds fresh logit noise; `data` unused."""
        return NoisyModel(model, sigma=self.config.sigma, where="output", seed=runtime.seed)
