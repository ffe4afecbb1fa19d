"""Concept erasure by fine-tuning a diffusion model's conditioning: the loop MiM-MU, ESD and
concept ablation share, and the mutual-information proxy that tells how much a concept is left.

Each method regresses the working model's ε_θ(x_t, t, c) for the forgotten concept c onto a
target computed by the frozen original φ at the same x_t, with x_t the forward-noised forget
images (no gradient through how x_t was made); the methods differ only in the target:

    MiM-MU      ε_φ(x_t, t, ∅)                              (the unconditional branch)
    ESD         ε_φ(x_t, t, ∅) − η (ε_φ(x_t, t, c) − ε_φ(x_t, t, ∅))   (negative guidance)
    ablation    ε_φ(x_t, t, c*)                             (another, anchor concept)
"""

from __future__ import annotations

import copy
import math
from abc import abstractmethod
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from yw_core.diffusion import ConditionalDiffusion, check_conditional
from yw_core.interfaces import Capabilities, MethodConfig, Unlearner
from yw_core.interfaces.unlearner import forget_set, working_model
from yw_core.runtime import Runtime


class ConceptErasure(Unlearner):
    """Erases the forget set's concepts from a ConditionalDiffusion by training only the
    parameters that read the condition (the cross-attention) towards `target`; never reads
    retain data. `self.trace` holds the mean loss of every epoch."""

    model_kind: ClassVar[Literal["classifier", "diffusion"]] = "diffusion"
    remaining_data_free = True
    capabilities = Capabilities(training=True, deterministic=True)

    class Config(MethodConfig):
        lr: float = Field(
            1e-5,
            gt=0,
            le=1,
            description="AdamW learning rate (the paper: a small one; 1e-5 is Stable "
            "Diffusion's usual fine-tuning rate [I]; bench erase uses 1e-3 on the digits DDPM)",
        )
        weight_decay: float = Field(
            0.0,
            ge=0,
            le=1,
            description="AdamW weight decay (0: decay would move the weights of every concept)",
        )
        epochs: int = Field(30, ge=1, le=100_000, description="passes over the forget set")
        batch_size: int = Field(8, ge=1, le=65536, description="forget samples per step [I]")
        weighting: Literal["uniform", "log-snr"] = Field(
            "uniform",
            description="w_t: uniform [I], or Δlog-SNR_t (the I-MMSE weights of the MI), "
            "normalised to mean 1",
        )
        trainable: Literal["conditioning", "all"] = Field(
            "conditioning",
            description="conditioning: only the cross-attention (the paper); all: every "
            "parameter but the frozen text encoder",
        )
        progress: bool = Field(False, description="show a tqdm bar over epochs")

    def __init__(self, config=None, /, **overrides):
        super().__init__(config, **overrides)
        self.trace: list[dict[str, Any]] = []

    @abstractmethod
    def target(self, frozen: ConditionalDiffusion, x_t, t, cond) -> torch.Tensor:
        """What ε_θ(x_t, t, cond) is trained towards, from the frozen original (no gradient)."""

    def unlearn(self, model, forget, retain=None, *, runtime: Runtime, in_place: bool = False):
        """Return the erased model in eval mode (a copy unless `in_place`); `forget` holds
        (x0, concept) pairs: images (or latents) of the concept and its class index or prompt.
        `retain` is never read."""
        from tqdm.auto import tqdm

        forget = forget_set(forget)
        model = check_conditional(model, self.name)
        self.check_concepts(model, forget)
        c = self.config
        frozen = copy.deepcopy(model).eval().requires_grad_(False)
        work = working_model(model, in_place).eval()
        trainable = self._trainable(work)
        flags = {p: p.requires_grad for p in work.parameters()}
        for p in work.parameters():
            p.requires_grad_(False)
        for p in trainable:
            p.requires_grad_(True)
        weights = timestep_weights(work, c.weighting)
        optimizer = torch.optim.AdamW(trainable, lr=c.lr, weight_decay=c.weight_decay)
        generator = runtime.generator(device="cpu")
        loader = runtime.loader(forget, c.batch_size, shuffle=True)
        self.trace = []
        bar = tqdm(
            range(c.epochs),
            desc=f"{self.name}: erasing",
            disable=not (c.progress and runtime.is_main),
        )
        try:
            step = 0
            for epoch in bar:
                runtime.set_epoch(loader, epoch)
                total, count = 0.0, 0
                for batch in loader:
                    x0, concepts = runtime.to(batch[0]), batch[1]
                    step += 1
                    loss = self._loss(work, frozen, x0, concepts, weights, generator, step)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total, count = total + loss.item() * len(x0), count + len(x0)
                self.trace.append({"epoch": epoch + 1, "loss": total / count})
                bar.set_postfix(loss=f"{total / count:.4f}")
        finally:
            for p, flag in flags.items():
                p.requires_grad_(flag)
        return work.eval()

    def check_concepts(self, model: ConditionalDiffusion, forget) -> None:
        """Every forget concept must be one the model knows (its `condition` says which)."""
        concepts = [forget[i][1] for i in range(len(forget))]
        if all(isinstance(v, str) for v in concepts):
            model.condition(sorted(set(concepts))[:1])
            return
        try:
            model.condition(torch.as_tensor([int(v) for v in concepts]).unique())
        except ValueError as e:
            raise ValueError(f"{self.name}: {e}") from None

    def _trainable(self, model: ConditionalDiffusion) -> list[torch.nn.Parameter]:
        if self.config.trainable == "conditioning":
            return list(model.conditioning_parameters())
        frozen = set(model.encoder_parameters())
        return [p for p in model.parameters() if p not in frozen]

    def _loss(self, work, frozen, x0, concepts, weights, generator, step):
        n = x0.shape[0]
        t = torch.randint(0, work.num_timesteps, (n,), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        x_t = work.add_noise(x0, noise, t)
        cond = work.condition(concepts)
        with torch.no_grad():
            target = self.target(frozen, x_t, t, cond)
        pred = work.eps(x_t, t, cond)
        if not torch.isfinite(pred).all():
            raise FloatingPointError(
                f"{self.name}: the model's noise prediction is NaN or inf at step {step} "
                "(a learning rate too high, or NaN in the forget set or the weights?)"
            )
        per_sample = (pred - target).pow(2).flatten(1).mean(1)
        return (weights[t] * per_sample).mean()


def timestep_weights(model: ConditionalDiffusion, weighting: str) -> torch.Tensor:
    """w_t per timestep, mean 1: all ones, or Δlog-SNR_t = log SNR_{t-1} − log SNR_t with
    SNR = ᾱ/(1 − ᾱ) (log SNR at t = -1 taken one step above t = 0's, extrapolated)."""
    a = model.alphas_cumprod().double()
    if weighting == "uniform":
        return torch.ones_like(a, dtype=torch.float32)
    log_snr = torch.log(a / (1 - a))
    previous = torch.cat([(2 * log_snr[0] - log_snr[1]).reshape(1), log_snr[:-1]])
    w = (previous - log_snr).clamp_min(0)
    return (w / w.mean()).float()


@torch.no_grad()
def mi_proxy(
    model: ConditionalDiffusion,
    x0: torch.Tensor,
    concepts,
    generator: torch.Generator,
    draws: int = 4,
    batch_size: int = 512,
) -> float:
    """Î = E‖ε(x_t, t, c) − ε(x_t, t, ∅)‖² (summed over pixels, mean over samples, t uniform
    and `draws` noise draws): the mutual information between concept and image, up to w_t, on
    images x0 of concepts c. Near 0 when the condition no longer changes the prediction."""
    model = model.eval()
    total, count = 0.0, 0
    cond_all = model.condition(concepts)
    for _ in range(draws):
        for start in range(0, x0.shape[0], batch_size):
            x = x0[start : start + batch_size]
            cond = cond_all[start : start + batch_size]
            n = x.shape[0]
            t = torch.randint(0, model.num_timesteps, (n,), generator=generator).to(x.device)
            noise = torch.randn(x.shape, generator=generator).to(x)
            x_t = model.add_noise(x, noise, t)
            gap = model.eps(x_t, t, cond) - model.eps(x_t, t, model.null_condition(n))
            total += float(gap.pow(2).flatten(1).sum(1).sum())
            count += n
    value = total / count
    if not math.isfinite(value):
        raise FloatingPointError("mi_proxy: the model's noise prediction is NaN or inf")
    return value
