"""The Sub-AT method class: sample an adversarial-training trajectory, take its principal
subspace, and retrain from the initial weights with FGSM-RS at a larger radius, projected onto it.

1. Sampling: Fast-AT (or PGD-AT) from yw-plugin-baselines, recording w0 and two parameter
   vectors per epoch (`SamplingStep`).
2. DLDR: PCA of the trajectory, `n_components` directions P (k x D).
3. Subspace AT: reload w0 (parameters and BN buffers), then projected SGD (lr 1, momentum 0.9, no
   weight decay, constant lr) on FGSM-RS at `train_eps_ratio` times eps, attacked in train mode.
4. Selection: PGD-20 on the validation split after each subspace epoch; the best is returned.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from typing import Any, Literal

from pydantic import Field, model_validator
from torch import nn

from yw_core.interfaces import Capabilities, Defense, MethodConfig, Paper
from yw_core.runtime import Runtime
from yw_core.subspace import (
    ProjectedOptimizer,
    Projector,
    momentum_lr_bound,
    subspace_sharpness,
)
from yw_core.train import TrainConfig, fit
from yw_plugin_baselines.adversarial_training import (
    PGDAT,
    AdversarialTraining,
    FastAT,
    RobustValidator,
    adversarial_loss,
    check_training_inputs,
    split_validation,
)
from yw_plugin_subat.steps import (
    SamplingStep,
    StepMethod,
    SubspaceStep,
    checkpoints_taken,
    dldr,
)

PAPER_RECIPE = {"fast": (65, 80), "pgd": (100, 100)}  # sampler: (sample_epochs, n_components)
PAPER_SUBSPACE_EPOCHS = 40


class SubAT(Defense):
    """Subspace Adversarial Training: single-step AT inside the principal subspace of an AT run."""

    name = "subat"
    summary = (
        "Subspace adversarial training: FGSM-RS at twice the radius, projected onto the principal "
        "subspace of a short AT trajectory, restarting from the initial weights"
    )
    paper = Paper(
        title="Subspace Adversarial Training",
        authors=("Li", "Wu", "Chen", "Fang", "Huang"),
        year=2022,
        venue="CVPR",
        arxiv_id="2111.12229",
        code_url="https://github.com/nblt/Sub-AT",
    )
    status = "experimental"
    capabilities = Capabilities(training=True)
    bench_fields = {"epochs": "sample_epochs"}  # a protocol's epochs are the sampling run's

    class Config(MethodConfig):
        sampler: Literal["fast", "pgd"] = Field(
            "fast",
            description="AT run that samples the trajectory: Fast-AT (FGSM-RS, step 1.25 eps) or "
            "PGD-AT (10 steps of eps/4)",
        )
        eps: float = Field(
            8 / 255,
            gt=0,
            le=1,
            description="L-inf radius of the sampling run and of validation (8/255: CIFAR)",
        )
        sample_epochs: int | None = Field(
            None,
            ge=1,
            le=100_000,
            description="epochs of the sampling run; None: the paper's 65 (fast) or 100 (pgd)",
        )
        n_components: int | None = Field(
            None,
            ge=1,
            le=100_000,
            description="subspace dimension k, below the number of checkpoints (2 per epoch + w0);"
            " None: the paper's 80 (fast) or 100 (pgd), in proportion to the checkpoints when "
            "sample_epochs is not the paper's",
        )
        subspace_epochs: int | None = Field(
            None,
            ge=1,
            le=100_000,
            description="epochs of projected AT; None: the paper's 40 per 65 fast / 100 pgd "
            "sampling epochs, raised to at least min_steps_per_dim * n_components updates",
        )
        min_steps_per_dim: float = Field(
            20.0,
            ge=0,
            le=10_000,
            description="floor of the default subspace_epochs, in updates per subspace dimension "
            "(the paper's 40 epochs give 176 on CIFAR-10; its ratio of epochs leaves 5 on "
            "digits, too few to converge); 0: the paper's ratio alone",
        )
        train_eps_ratio: float = Field(
            2.0,
            gt=0,
            le=100,
            description="subspace stage's FGSM-RS radius / eps, step 1.25x that (2: 16/255, step "
            "20/255 at 8/255)",
        )
        sample_lr: float = Field(
            0.1, gt=0, le=10, description="constant SGD lr of the sampling run"
        )
        subspace_lr: float = Field(
            1.0, gt=0, le=100, description="constant lr of projected SGD (the paper's 1)"
        )
        momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum of both stages")
        sample_weight_decay: float = Field(
            5e-4,
            ge=0,
            le=1,
            description="weight decay of the sampling run (the subspace stage has none)",
        )
        batch_size: int = Field(128, ge=1, le=1_000_000, description="mini-batch size")
        val_fraction: float = Field(
            0.1,
            ge=0,
            lt=1,
            description="fraction of data held out for validation (0.1: CIFAR-10's 45k/5k)",
        )
        val_steps: int = Field(20, ge=1, le=10_000, description="validation PGD steps (PGD-20)")
        val_step_ratio: float = Field(
            0.25, gt=0, le=10, description="validation PGD step / eps (2/255 at 8/255)"
        )
        select: Literal["best", "last"] = Field(
            "best",
            description="return the subspace epoch with the best validation PGD accuracy (the "
            "paper's reported model) or the last",
        )
        lr_guard: bool = Field(
            True,
            description="estimate the sharpest curvature λ of the loss in the subspace at w0 "
            "(20 Hessian-vector products on one batch) and warn when subspace_lr exceeds "
            "momentum SGD's stability bound 2(1 + momentum)/λ",
        )
        progress: bool = Field(True, description="show progress bars while training")

        @model_validator(mode="after")
        def _best_needs_validation(self):
            if self.select == "best" and self.val_fraction == 0:
                raise ValueError("select='best' needs validation data: set val_fraction > 0")
            return self

        @model_validator(mode="after")
        def _resolve_recipe(self):
            """Fill None sample_epochs and n_components with the paper's values at its sampling
            epochs, k in proportion to the 2E + 1 checkpoints at other sampling epochs (at most
            their number less one), so the config (and a benchmark's results.json) says what
            runs. subspace_epochs depends on the data's size and is resolved by `recipe`."""
            paper_epochs, paper_k = PAPER_RECIPE[self.sampler]
            epochs = self.sample_epochs or paper_epochs
            checkpoints = 2 * epochs + 1
            k = self.n_components or max(
                1, min(checkpoints - 1, round(checkpoints * paper_k / (2 * paper_epochs + 1)))
            )
            for name, value in {"sample_epochs": epochs, "n_components": k}.items():
                object.__setattr__(self, name, value)  # frozen model: resolved once, here
            return self

    def recipe(self, batches_per_epoch: int) -> tuple[int, int, int]:
        """(sample_epochs, n_components, subspace_epochs) for data of `batches_per_epoch`.

        A None subspace_epochs is the paper's 40 per 65 (fast) or 100 (pgd) sampling epochs,
        raised to ceil(min_steps_per_dim * k / batches_per_epoch) epochs. The paper counts
        epochs, but projected SGD converges in updates: 40 epochs of 352 batches are 176 updates
        per dimension on CIFAR-10, while the same ratio on digits (10 sampling epochs, k = 13,
        11 batches) leaves 66 updates, 5 per dimension, and validation PGD still rising at the
        last epoch. The floor is our inference (PGD-20 plateaus after about 15 to 20 updates per
        dimension on digits, docs/methods/subat.md); at the paper's sizes it is 5 epochs and the
        paper's 40 stand."""
        c = self.config
        paper_epochs = PAPER_RECIPE[c.sampler][0]
        subspace_epochs = c.subspace_epochs or max(
            1,
            round(c.sample_epochs * PAPER_SUBSPACE_EPOCHS / paper_epochs),
            math.ceil(c.min_steps_per_dim * c.n_components / batches_per_epoch),
        )
        return c.sample_epochs, c.n_components, subspace_epochs

    def sampler(self) -> AdversarialTraining:
        """The baseline whose attack and SGD run sample the trajectory."""
        c = self.config
        cls = FastAT if c.sampler == "fast" else PGDAT
        return cls(
            eps=c.eps,
            epochs=c.sample_epochs,
            batch_size=c.batch_size,
            lr=c.sample_lr,
            momentum=c.momentum,
            weight_decay=c.sample_weight_decay,
            progress=c.progress,
        )

    def subspace_attack(self, model: nn.Module, x, y, *, generator):
        """The subspace stage's FGSM-RS: radius train_eps_ratio * eps, step 1.25x that, run in
        the model's current (train) mode."""
        wide = FastAT(eps=self.config.train_eps_ratio * self.config.eps)
        return wide.attack(model, x, y, generator=generator)

    def sharpness_at(self, model, w0, train, params, runtime, generator) -> float:
        """λ_max of the subspace stage's loss (cross-entropy on its FGSM-RS examples, train
        mode) restricted to span(basis), at w0, on the first `batch_size` training samples; the
        forward passes' BatchNorm statistics are undone."""
        import torch
        import torch.nn.functional as F

        model.load_state_dict(w0)
        model.train()
        first = next(iter(torch.utils.data.DataLoader(train, batch_size=self.config.batch_size)))
        x, y = runtime.to(first[0]), runtime.to(first[1])
        x_adv = self.subspace_attack(model, x, y, generator=generator).detach()
        sharpness = subspace_sharpness(
            lambda: F.cross_entropy(model(x_adv), y),
            params,
            self.basis,
            generator=torch.Generator().manual_seed(runtime.seed),
        )
        model.load_state_dict(w0)
        return sharpness

    def protect(self, model: nn.Module, *, data: Any = None, runtime: Runtime) -> nn.Module:
        """Train a copy of `model` with Sub-AT on `data`; the input model is left unchanged.

        Sets `self.history` (one row per epoch of each stage, `stage` 'sample' or 'subspace',
        with val_pgd_acc / val_clean_acc), `self.selected_epoch` (a subspace epoch),
        `self.subspace_epochs` (the epochs run, see `recipe`), `self.train_seconds` (both
        stages and the PCA, validation excluded), `self.basis`, and
        with `lr_guard` `self.sharpness` (λ at w0) and `self.lr_bound` (2(1 + momentum)/λ)."""
        c = self.config
        check_training_inputs(model, data, self.name)
        train, val = split_validation(data, c.val_fraction, runtime.seed)
        per_epoch = math.ceil(len(train) / c.batch_size)
        sample_epochs, k, subspace_epochs = self.recipe(per_epoch)
        taken = checkpoints_taken(sample_epochs, per_epoch)
        if k >= taken:
            raise ValueError(
                f"n_components {k} must be below the {taken} checkpoints that {sample_epochs} "
                f"sampling epochs of {per_epoch} batches give (PCA of n points spans at most "
                f"n - 1 directions): use n_components <= {taken - 1} or more sample_epochs"
            )
        model = runtime.to(copy.deepcopy(model))
        w0 = copy.deepcopy(model.state_dict())
        params = [p for p in model.parameters() if p.requires_grad]
        generator = runtime.generator()

        def validator():
            if val is None:
                return None
            step = c.val_step_ratio * c.eps
            return RobustValidator(
                model, val, eps=c.eps, step=step, steps=c.val_steps, runtime=runtime
            )

        # 1. the trajectory
        sampler = self.sampler()
        sampling = StepMethod(
            "subat-sample",
            lambda net, opt, rt: SamplingStep(
                net, opt, rt, params=params, batches_per_epoch=per_epoch
            ),
        )
        sampled = fit(
            model,
            train,
            runtime=runtime,
            method=sampling,
            config=sampler.train_config(),
            loss_fn=adversarial_loss(lambda m, x, y: sampler.attack(m, x, y, generator=generator)),
            on_epoch_end=validator(),
        )

        # 2. the subspace
        started = time.perf_counter()
        self.basis = dldr(sampling.step.checkpoints, k, device=runtime.device)
        sampling.step.checkpoints.clear()  # the trajectory is not needed any more
        dldr_seconds = time.perf_counter() - started

        # 3. projected AT from w0, warned when its lr is above the stability bound there
        self.sharpness = self.lr_bound = None
        if c.lr_guard:
            self.sharpness = self.sharpness_at(model, w0, train, params, runtime, generator)
            self.lr_bound = momentum_lr_bound(self.sharpness, c.momentum)
            if c.subspace_lr > self.lr_bound:
                warnings.warn(
                    f"{self.name}: subspace_lr {c.subspace_lr:g} is above the stability bound "
                    f"2(1 + momentum)/λ = {self.lr_bound:.3g} of momentum SGD at w0 (λ = "
                    f"{self.sharpness:.3g}, the sharpest curvature of the adversarial loss in "
                    "the subspace): projected SGD will likely diverge; lower subspace_lr or "
                    "train_eps_ratio, or normalise the network (BatchNorm before the last ReLU)",
                    stacklevel=2,
                )
        model.load_state_dict(w0)
        projecting = StepMethod(
            "subat",
            lambda net, opt, rt: SubspaceStep(
                net, opt, rt, ProjectedOptimizer(opt, Projector(self.basis), params)
            ),
        )
        selection = validator()
        trained = fit(
            model,
            train,
            runtime=runtime,
            method=projecting,
            config=TrainConfig(
                epochs=subspace_epochs,
                batch_size=c.batch_size,
                lr=c.subspace_lr,
                momentum=c.momentum,
                weight_decay=0.0,
                schedule="constant",
                progress=c.progress,
            ),
            loss_fn=adversarial_loss(
                lambda m, x, y: self.subspace_attack(m, x, y, generator=generator)
            ),
            on_epoch_end=selection,
        )

        # 4. selection
        self.subspace_epochs = self.selected_epoch = subspace_epochs
        if c.select == "best":
            model.load_state_dict(selection.best_state)
            self.selected_epoch = selection.best_epoch
        self.history = [{**row, "stage": "sample"} for row in sampled.history] + [
            {**row, "stage": "subspace"} for row in trained.history
        ]
        self.train_seconds = sampled.train_seconds + dldr_seconds + trained.train_seconds
        return model.eval()
