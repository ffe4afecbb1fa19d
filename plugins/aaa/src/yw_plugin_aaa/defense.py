"""The AAA defense: `AAA.protect(model)` returns an `AAAWrapper` whose logits mislead SQAs."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from yw_core.interfaces import Capabilities, Defense, MethodConfig, Paper
from yw_core.models import eval_mode
from yw_plugin_aaa.postprocessing import postprocess
from yw_plugin_aaa.temperature import calibration_tensors, tune_temperature

CALIBRATION_BATCH = 256  # images per forward while collecting calibration logits


class AAAWrapper(nn.Module):
    """A frozen classifier whose logits go through AAA's post-processing on every query."""

    def __init__(
        self,
        model: nn.Module,
        *,
        settings: dict[str, Any],
        temperature: float = 1.0,
        quantize: bool = True,
        cuda_graph: bool = False,
    ):
        super().__init__()
        self.model = model
        self.settings = dict(settings)
        self.temperature = float(temperature)
        self.quantize = quantize
        self.cuda_graph = cuda_graph
        self.calibration: dict[float, float] = {}  # {T: ECE} when T was tuned, else empty

    def forward_undefended(self, x: torch.Tensor) -> torch.Tensor:
        """The model's own logits (after the 8-bit quantisation, when on), in eval mode."""
        if self.quantize:
            x = torch.floor(x * 255) / 255
        with torch.no_grad(), eval_mode(self.model):
            return self.model(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """AAA's defended logits: same shape, dtype and top-1 class as `forward_undefended(x)`."""
        z0 = self.forward_undefended(x)
        return postprocess(
            z0, temperature=self.temperature, cuda_graph=self.cuda_graph, **self.settings
        )

    def extra_repr(self) -> str:
        return f"temperature={self.temperature:.4g}, quantize={self.quantize}, {self.settings}"


class AAA(Defense):
    """Adversarial Attack on Attackers: optimise each query's logits to reverse the margin trend."""

    name = "aaa"
    summary = (
        "Post-processes logits so score-based query attacks see a reversed margin trend; "
        "predictions are kept and confidence calibrated"
    )
    paper = Paper(
        title=(
            "Adversarial Attack on Attackers: Post-Process to Mitigate Black-Box Score-Based "
            "Query Attacks"
        ),
        authors=("Chen", "Huang", "Tao", "Wu", "Xie", "Huang"),
        year=2022,
        venue="NeurIPS",
        arxiv_id="2205.12134",
        code_url="https://github.com/Sizhe-Chen/AAA",
    )
    status = "stable"
    capabilities = Capabilities(post_hoc=True, batch_dependence="scores")

    class Config(MethodConfig):
        variant: Literal["linear", "sine"] = Field(
            "linear", description="target margin: linear reflection about the attractor, or sine"
        )
        interval: float = Field(
            6.0, gt=0, le=1e4, description="attractor interval I: width of the margin bins"
        )
        reverse_step: float = Field(
            1.0,
            ge=0,
            le=1,
            description="kappa: t = a - kappa*(m0 - a); 1 mirrors m0 about the attractor a, and "
            "kappa <= 1 keeps the target inside m0's bin",
        )
        calibration_weight: float = Field(
            5.0, ge=0, le=1e4, description="weight of |softmax(z)[c] - p_ref| in the loss"
        )
        iterations: int = Field(
            100, ge=0, le=100_000, description="Adam steps on the logits per query"
        )
        lr: float = Field(0.1, gt=0, le=100, description="Adam learning rate on the logits")
        quantize: bool = Field(
            True, description="quantise inputs to 8 bits, floor(255x)/255, as the reference run"
        )
        temperature: float | None = Field(
            None,
            gt=0,
            le=1e4,
            description="T of p_ref = max softmax(z0/T); None = tune on `data` in protect() "
            "(T = 1 without data)",
        )
        calibration_samples: int = Field(
            1000, ge=1, le=10_000_000, description="how many items of `data` tune T"
        )
        cuda_graph: bool = Field(
            False,
            description="on CUDA, capture the optimisation as a CUDA graph per batch shape and "
            "replay it (ignored elsewhere)",
        )

    def settings(self) -> dict[str, Any]:
        """The post-processing settings that `postprocess` takes."""
        keys = ("variant", "interval", "reverse_step", "calibration_weight", "iterations", "lr")
        return {k: getattr(self.config, k) for k in keys}

    def protect(self, model: nn.Module, *, data: Any = None, runtime) -> AAAWrapper:
        """Wrap `model`; with `data` and no fixed temperature, tune T on its first items."""
        cfg = self.config
        wrapper = AAAWrapper(
            model, settings=self.settings(), quantize=cfg.quantize, cuda_graph=cfg.cuda_graph
        )
        if cfg.temperature is not None:
            wrapper.temperature = cfg.temperature
        elif data is not None:
            x, y = calibration_tensors(data, cfg.calibration_samples)
            z0 = torch.cat(
                [
                    wrapper.forward_undefended(runtime.to(x[i : i + CALIBRATION_BATCH]))
                    for i in range(0, len(x), CALIBRATION_BATCH)
                ]
            )
            wrapper.temperature, wrapper.calibration = tune_temperature(
                z0, runtime.to(y), **self.settings()
            )
        return wrapper
