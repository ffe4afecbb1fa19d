"""SAM (Foret et al., ICLR 2021): step with the gradient taken at the worst nearby point.

One update on a batch: g = ∇L(w); e = rho g / (||g|| + 1e-12) (global L2 norm over all
parameters); a second forward/backward at w + e on the same batch, with BatchNorm running stats
left alone; w is restored exactly and the base optimizer steps with the second gradient. Two
passes per update, so a step costs about 2x SGD.

Under DDP the first backward runs in `no_sync()`: each rank perturbs along its own gradient and
only the second gradients are averaged, as the paper does across accelerators ("we divide each
data batch evenly among the accelerators, independently compute the SAM gradient on each
accelerator, and average the resulting sub-batch SAM gradients").
"""

from __future__ import annotations

import contextlib

import torch
from pydantic import Field
from torch import nn

from yw_core.interfaces import Capabilities, MethodConfig, Paper, TrainStep, WeightOptimizer
from yw_core.runtime import Runtime

EPS = 1e-12  # added to ||g|| so a zero gradient gives e = 0, as in the common implementation


def ascent_(
    params: list[torch.Tensor], grads: list[torch.Tensor], rho: float, adaptive: bool = False
) -> list[torch.Tensor]:
    """Turn the gradients, in place, into SAM's e = rho g / ||g|| (ASAM: rho w² g / ||w g||)."""
    if adaptive:
        torch._foreach_mul_(grads, torch._foreach_abs(params))  # |w| g, whose norm is ||w g||
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    if adaptive:
        torch._foreach_mul_(grads, torch._foreach_abs(params))  # w² g
    torch._foreach_mul_(grads, rho / (norm + EPS))
    return grads


@contextlib.contextmanager
def frozen_bn_stats(bns: list[nn.modules.batchnorm._BatchNorm]):
    """BatchNorm layers normalise with batch statistics but do not update running stats (nor
    num_batches_tracked) inside the block: the forward is the training-mode one."""
    for m in bns:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in bns:
            m.track_running_stats = True


class SAMStep(TrainStep):
    """One SAM update per batch: ascent pass, perturbed pass, exact restore, base step."""

    def __init__(self, model, optimizer, runtime: Runtime, *, rho: float, adaptive: bool):
        super().__init__(model, optimizer, runtime)
        self.rho = float(rho)
        self.adaptive = bool(adaptive)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.saved = [torch.empty_like(p) for p in self.params]  # reused every step
        self.bns = [
            m
            for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        ]

    def step(self, batch, loss_fn):
        """SAM update on `batch`; returns the loss at the unperturbed weights."""
        self.optimizer.zero_grad(set_to_none=True)
        no_sync = getattr(self.model, "no_sync", contextlib.nullcontext)
        with no_sync():  # DDP: each rank's own ascent direction, as in the paper
            loss = loss_fn(self.model, batch)
            loss.backward()
        with torch.no_grad():
            params = [p for p in self.params if p.grad is not None]
            e = ascent_(params, [p.grad for p in params], self.rho, self.adaptive)
            torch._foreach_copy_(self.saved, self.params)
            torch._foreach_add_(params, e)
        self.optimizer.zero_grad(set_to_none=True)
        with frozen_bn_stats(self.bns):
            loss_fn(self.model, batch).backward()
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.saved)
        self.optimizer.step()
        return loss.detach()


class SAM(WeightOptimizer):
    """Sharpness-Aware Minimization: descend with the gradient at w + rho g/||g||."""

    name = "sam"
    summary = "SAM: step with the gradient at the worst point within rho (2 passes per update)"
    paper = Paper(
        title="Sharpness-Aware Minimization for Efficiently Improving Generalization",
        authors=("Foret", "Kleiner", "Mobahi", "Neyshabur"),
        year=2021,
        venue="ICLR",
        arxiv_id="2010.01412",
        code_url="https://github.com/google-research/sam",
    )
    status = "baseline"
    capabilities = Capabilities(training=True, distributed=True, deterministic=True)

    class Config(MethodConfig):
        rho: float = Field(
            0.05,
            ge=0,
            le=100,
            description="radius of the ascent step e = rho g/||g|| (0.05: the paper's CIFAR "
            "value; 0 gives plain SGD; ASAM's authors suggest about 10x larger with adaptive)",
        )
        adaptive: bool = Field(
            False,
            description="ASAM (Kwon et al. 2021): e = rho w² g/||w g||, scale-invariant radius",
        )

    def attach(self, model: nn.Module, base_optimizer, *, runtime: Runtime, **kwargs) -> SAMStep:
        """Wrap `model` and its base optimizer into a SAM TrainStep; takes no extra inputs."""
        if kwargs:
            raise ValueError(f"SAM takes no attach inputs, got {', '.join(sorted(kwargs))}")
        c = self.config
        return SAMStep(model, base_optimizer, runtime, rho=c.rho, adaptive=c.adaptive)
