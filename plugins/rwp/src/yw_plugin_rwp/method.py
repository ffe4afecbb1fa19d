"""The RWP weight optimizer: the class `yw-core` lists and `fit` attaches."""

from __future__ import annotations

from pydantic import Field

from yw_core.interfaces import Capabilities, MethodConfig, Paper, TrainStep, WeightOptimizer
from yw_plugin_rwp.steps import parallel_recipe, rwp_step


class RWP(WeightOptimizer):
    """Random Weight Perturbation: descend (1 - alpha) L(w) + alpha E L(w + eps) with filter-wise
    Gaussian eps, the two gradients on different mini-batches."""

    name = "rwp"
    summary = "RWP: mix the clean gradient with one under filter-wise random weight noise"
    paper = Paper(
        title="Efficient Generalization Improvement Guided by Random Weight Perturbation",
        authors=("Li", "Yan", "Lei", "Wu", "Fang", "Yang", "Huang"),
        year=2022,
        venue="arXiv",
        arxiv_id="2211.11489",
        code_url="https://github.com/nblt/RWP",
    )
    status = "stable"
    capabilities = Capabilities(training=True, distributed=True, deterministic=True)

    class Config(MethodConfig):
        alpha: float = Field(
            0.5,
            ge=0,
            le=1,
            description="weight of the perturbed loss; 1 - alpha weighs the clean loss "
            "(0.5: the CIFAR CLI, recipes/run_rwp_ddp.sh)",
        )
        gamma: float = Field(
            0.01,
            ge=0,
            le=1,
            description="noise std relative to each filter's norm, gamma * ||W_i|| "
            "(0.01: the CIFAR CLI; the ImageNet CLI uses 0.005)",
        )

    def train_config(self, base, *, runtime):
        """Under torchrun, twice the epochs (see `parallel_recipe`); else the host's recipe."""
        return parallel_recipe(base, runtime)

    def attach(self, model, base_optimizer, *, runtime, **kwargs) -> TrainStep:
        """Two passes per update in one process; one pass per rank (even clean, odd perturbed)
        under torchrun, where `model` must be the DDP wrapper `fit` makes."""
        if kwargs:
            raise TypeError(f"RWP.attach takes no extra arguments, got {', '.join(kwargs)}")
        c = self.config
        return rwp_step(model, base_optimizer, runtime, alpha=c.alpha, gamma=c.gamma)
