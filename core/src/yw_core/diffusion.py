"""Conditional diffusion models as concept-erasure methods see them, and a small one on digits.

`ConditionalDiffusion` is the contract: noise prediction `eps(x_t, t, cond)`, the condition of
concepts (class indices or prompts) and of the empty prompt, the forward noising, and the
parameters that read the condition (the U-Net's cross-attention). Two models fulfil it:

- `DigitsDDPM`: a class-conditional DDPM on 8x8 digits (an MLP denoiser; the frozen class
  embedding plays the text encoder, per-block FiLM projections of it the cross-attention). It
  trains in about 40 s on two CPU cores (2,500 steps) and is cached like the zoo's classifiers:
  `reference_ddpm(seed=0)`.
- `DiffusersConditional`: a `diffusers` UNet2DConditionModel, its scheduler, text encoder and
  tokenizer (Stable Diffusion's parts); nothing is imported from diffusers here.

Why not diffusers' UNet for the digits model: 8x8 digits are 64 numbers, and an MLP learns them
in about a minute on two CPU cores; a U-Net adds convolutions and attention for nothing at this
size and would make diffusers a dependency of every erasure test and of `bench erase`.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

DDPM_FORMAT = 1  # bump when DigitsDDPM's layout or training changes: old cache files are unused


class ConditionalDiffusion(nn.Module, ABC):
    """A conditional noise predictor ε(x_t, t, c) with a null condition ∅ (classifier-free).

    Conditions are what `condition(concepts)` returns (a tensor whose first dimension is the
    batch); erasure methods never look inside them. Timesteps are integers in
    [0, num_timesteps)."""

    num_timesteps: int

    @abstractmethod
    def eps(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The predicted noise, shaped like x_t."""

    @abstractmethod
    def condition(self, concepts) -> torch.Tensor:
        """The condition of each concept (a class index or a prompt); a ValueError names an
        unknown concept."""

    @abstractmethod
    def null_condition(self, n: int) -> torch.Tensor:
        """The unconditional (empty-prompt) condition, n times."""

    @abstractmethod
    def alphas_cumprod(self) -> torch.Tensor:
        """ᾱ_t for t = 0..num_timesteps-1, on the model's device."""

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) ε: the forward process at step t."""
        a = self.alphas_cumprod().to(x0.device)[t].reshape(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    @abstractmethod
    def conditioning_parameters(self) -> list[nn.Parameter]:
        """The parameters that read the condition (cross-attention); empty when there are none."""

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The parameters of the frozen condition encoder (the text encoder), which erasure
        never trains; none by default."""
        return []

    def forward(self, x_t, t, cond):
        return self.eps(x_t, t, cond)


def check_conditional(model: Any, name: str) -> ConditionalDiffusion:
    """`model` if it is a ConditionalDiffusion with conditioning parameters, else a clear error."""
    if not isinstance(model, ConditionalDiffusion):
        hint = ""
        kind = type(model).__name__
        if kind == "UNet2DConditionModel" or kind.endswith("Pipeline"):  # diffusers' parts
            hint = (
                "; wrap a diffusers UNet as DiffusersConditional(unet, scheduler, text_encoder, "
                "tokenizer) from yw_core.diffusion, e.g. of a StableDiffusionPipeline: "
                "DiffusersConditional(pipe.unet, pipe.scheduler, pipe.text_encoder, pipe.tokenizer)"
            )
        raise TypeError(
            f"{name}: erases concepts from a conditional diffusion model "
            f"(yw_core.diffusion.ConditionalDiffusion), got {type(model).__name__}{hint}"
        )
    if not model.conditioning_parameters():
        raise ValueError(
            f"{name}: the model has no conditioning parameters (no cross-attention reads the "
            "condition), so there is no concept to erase: an unconditional model?"
        )
    return model


# ---- the digits model -----------------------------------------------------------------------


class DDPMRecipe(BaseModel):
    """Everything that decides a DigitsDDPM's weights; its hash names the cache file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    data_seed: int = Field(0, description="seed of the digits train split it learns")
    timesteps: int = Field(100, gt=1, description="T, the number of noise levels")
    beta_start: float = Field(1e-3, gt=0, lt=1, description="β_1 of the linear schedule")
    beta_end: float = Field(0.1, gt=0, lt=1, description="β_T of the linear schedule")
    hidden: int = Field(256, gt=0, description="width of the MLP denoiser")
    blocks: int = Field(3, gt=0, description="residual FiLM blocks")
    embed: int = Field(32, gt=0, description='width of the class ("text") embedding')
    p_uncond: float = Field(0.1, ge=0, lt=1, description="classifier-free label dropout")
    steps: int = Field(
        2500,
        gt=0,
        description="Adam steps (2,500, about 40 s on two CPU cores: every sample of ours "
        "was read as its class by the zoo's digits classifier)",
    )
    batch_size: int = Field(256, gt=0)
    lr: float = Field(1e-3, gt=0, description="Adam learning rate (cosine to 0)")

    def key(self) -> str:
        import hashlib
        import json

        text = json.dumps({"ddpm_format": DDPM_FORMAT, **self.model_dump()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


class _FiLMBlock(nn.Module):
    def __init__(self, hidden: int, embed: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.time = nn.Linear(hidden, hidden)
        self.cond = nn.Linear(embed, 2 * hidden)  # the "cross-attention": reads the condition

    def forward(self, h, t_emb, c_emb):
        scale, shift = self.cond(c_emb).chunk(2, dim=1)
        z = self.norm(h) * (1 + scale) + shift + self.time(t_emb)
        return h + self.fc2(F.silu(self.fc1(F.silu(z))))


class DigitsDDPM(ConditionalDiffusion):
    """A class-conditional DDPM on 8x8 digits scaled to [-1, 1], shape (N, 1, 8, 8).

    Conditions are class indices; index `num_classes` is ∅. The class embedding is frozen (the
    "text encoder"); each block's FiLM projection `blocks.i.cond` is the cross-attention."""

    def __init__(self, recipe: DDPMRecipe | None = None, num_classes: int = 10):
        super().__init__()
        self.recipe = recipe = recipe or DDPMRecipe()
        self.num_classes = num_classes
        self.num_timesteps = recipe.timesteps
        betas = torch.linspace(recipe.beta_start, recipe.beta_end, recipe.timesteps)
        self.register_buffer("betas", betas)
        self.register_buffer("alpha_bar", torch.cumprod(1 - betas, 0))
        self.embedding = nn.Embedding(num_classes + 1, recipe.embed)
        self.embedding.weight.requires_grad_(False)
        h = recipe.hidden
        self.inp = nn.Linear(64, h)
        self.time_mlp = nn.Sequential(nn.Linear(h, h), nn.SiLU(), nn.Linear(h, h))
        self.blocks = nn.ModuleList(_FiLMBlock(h, recipe.embed) for _ in range(recipe.blocks))
        self.out = nn.Sequential(nn.LayerNorm(h), nn.Linear(h, 64))

    def eps(self, x_t, t, cond):
        n = x_t.shape[0]
        h = self.inp(x_t.reshape(n, 64))
        t_emb = self.time_mlp(_sinusoid(t, h.shape[1]))
        c_emb = self.embedding(cond)
        for block in self.blocks:
            h = block(h, t_emb, c_emb)
        return self.out(h).reshape(x_t.shape)

    def condition(self, concepts) -> torch.Tensor:
        if isinstance(concepts, str) or (
            isinstance(concepts, (list, tuple)) and any(isinstance(c, str) for c in concepts)
        ):
            raise ValueError(
                f"unknown concept {concepts!r}: the model is conditioned on class indices "
                f"0..{self.num_classes - 1}, not prompts"
            )
        labels = torch.as_tensor(concepts, device=self.betas.device).long().reshape(-1)
        bad = sorted({int(v) for v in labels[(labels < 0) | (labels >= self.num_classes)]})
        if bad:
            raise ValueError(
                f"unknown concept {', '.join(map(str, bad[:10]))}: the model knows the classes "
                f"0..{self.num_classes - 1}"
            )
        return labels

    def null_condition(self, n: int) -> torch.Tensor:
        return torch.full((n,), self.num_classes, dtype=torch.long, device=self.betas.device)

    def alphas_cumprod(self) -> torch.Tensor:
        return self.alpha_bar

    def conditioning_parameters(self) -> list[nn.Parameter]:
        return [p for b in self.blocks for p in b.cond.parameters()]

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.embedding.parameters())

    @torch.no_grad()
    def sample(
        self,
        concepts,
        guidance: float = 2.0,
        generator: torch.Generator | None = None,
        batch_size: int = 1024,
    ) -> torch.Tensor:
        """DDPM ancestral samples (σ_t² = β_t) with classifier-free guidance
        ε̃ = ε(∅) + w (ε(c) − ε(∅)), one per concept, in [-1, 1]; noise is drawn on the cpu from
        `generator`, so a seed (and batch size) gives the same samples on any device."""
        labels = self.condition(concepts)
        return torch.cat(
            [self._sample(chunk, guidance, generator) for chunk in labels.split(batch_size)]
        )

    def _sample(self, cond, guidance, generator):
        n, device = cond.shape[0], self.betas.device

        def noise():
            return torch.randn(n, 1, 8, 8, generator=generator).to(device)

        null = self.null_condition(n)
        x = noise()
        for step in reversed(range(self.num_timesteps)):
            t = torch.full((n,), step, dtype=torch.long, device=device)
            e = self.eps(x, t, cond)
            if guidance != 1:
                e_null = self.eps(x, t, null)
                e = e_null + guidance * (e - e_null)
            beta, a_bar = self.betas[step], self.alpha_bar[step]
            x = (x - beta / (1 - a_bar).sqrt() * e) / (1 - beta).sqrt()
            if step > 0:
                x = x + beta.sqrt() * noise()
        return x.clamp(-1, 1)


def _sinusoid(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """Model space [-1, 1] to the [0, 1] images the digits classifiers read."""
    return ((x + 1) / 2).clamp(0, 1)


def from_unit(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] digits images to the model space [-1, 1]."""
    return x * 2 - 1


def diffusion_loss(model: DigitsDDPM, x0, labels, generator, p_uncond: float) -> torch.Tensor:
    """The ε-prediction loss at uniform t, with the label dropped to ∅ at rate p_uncond."""
    n, device = x0.shape[0], x0.device
    t = torch.randint(0, model.num_timesteps, (n,), generator=generator).to(device)
    noise = torch.randn(x0.shape, generator=generator).to(device)
    drop = (torch.rand(n, generator=generator) < p_uncond).to(device)
    cond = torch.where(drop, model.null_condition(n), labels)
    return F.mse_loss(model.eps(model.add_noise(x0, noise, t), t, cond), noise)


def train_ddpm(model: DigitsDDPM, runtime, progress: bool = True) -> float:
    """Train in place on the digits train split of `recipe.data_seed`; returns seconds."""
    import time

    from tqdm.auto import tqdm

    from yw_core.data import load_dataset

    r = model.recipe
    x, y = load_dataset("digits", "train", seed=r.data_seed).tensors
    x, y = runtime.to(from_unit(x)), runtime.to(y.long())
    generator = torch.Generator().manual_seed(r.seed)
    model = runtime.to(model).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=r.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=r.steps)
    start = time.perf_counter()
    bar = tqdm(range(r.steps), desc="yw zoo: training the digits DDPM", disable=not progress)
    for step in bar:
        idx = torch.randint(0, x.shape[0], (r.batch_size,), generator=generator).to(x.device)
        loss = diffusion_loss(model, x[idx], y[idx], generator, r.p_uncond)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 200 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return time.perf_counter() - start


def reference_ddpm(
    seed: int = 0,
    runtime=None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    **recipe_overrides,
) -> DigitsDDPM:
    """A trained DigitsDDPM in eval mode, from the cache or trained now (about 40 s on two
    CPU cores at the default 2,500 steps) and cached like `yw_core.zoo.reference_model`,
    under <user cache>/models."""
    from yw_core.data import user_cache_dir
    from yw_core.zoo import cached_weights, default_runtime

    recipe = DDPMRecipe(seed=seed, **{"data_seed": seed, **recipe_overrides})
    folder = Path(cache_dir).expanduser() if cache_dir is not None else user_cache_dir() / "models"
    path = folder / f"digits_ddpm_seed{seed}_{recipe.key()[:16]}.pt"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.seed)
        model = DigitsDDPM(recipe)

    def train() -> dict:
        return {"train_seconds": train_ddpm(model, runtime or default_runtime(seed), progress)}

    record = cached_weights(path, recipe, model, train, runtime)
    model = (runtime.to(model) if runtime is not None else model.cpu()).eval()
    model.zoo_info = {
        "config": record["config"],
        "train_seconds": record["train_seconds"],
        "path": str(path),
    }
    return model


# ---- Stable Diffusion through diffusers -----------------------------------------------------


class DiffusersConditional(ConditionalDiffusion):
    """A diffusers UNet2DConditionModel with its scheduler, text encoder and tokenizer, e.g.
    `DiffusersConditional(pipe.unet, pipe.scheduler, pipe.text_encoder, pipe.tokenizer)` of a
    StableDiffusionPipeline. Conditions are the text encoder's last hidden states for prompts
    padded to `tokenizer.model_max_length`; the cross-attention (`attn2` in every transformer
    block) reads them. x are VAE latents (the pipeline's `output_type="latent"`).

    The wrapper holds the parts, it does not copy them, and it changes nothing on them: the
    text encoder keeps its `requires_grad` flags but never gets a gradient (conditions are
    computed under `torch.no_grad()`, and the erasure loop never trains it). Move the wrapper
    (`runtime.to(model)`) to move the U-Net and the text encoder together; the scheduler's ᾱ
    and the conditions follow the U-Net's device."""

    def __init__(self, unet, scheduler, text_encoder, tokenizer):
        super().__init__()
        self.unet, self.text_encoder = unet, text_encoder
        self.scheduler, self.tokenizer = scheduler, tokenizer
        self.num_timesteps = int(scheduler.config.num_train_timesteps)

    def eps(self, x_t, t, cond):
        return self.unet(x_t, t, encoder_hidden_states=cond).sample

    def condition(self, concepts) -> torch.Tensor:
        prompts = [concepts] if isinstance(concepts, str) else list(concepts)
        if not all(isinstance(p, str) for p in prompts):
            raise ValueError("DiffusersConditional: concepts are prompts (str)")
        ids = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )["input_ids"]
        encoder = next(self.text_encoder.parameters())
        unet = next(self.unet.parameters())
        with torch.no_grad():
            hidden = self.text_encoder(ids.to(encoder.device))[0]
        return hidden.to(unet.device, unet.dtype)

    def null_condition(self, n: int) -> torch.Tensor:
        return self.condition([""]).expand(n, -1, -1)

    def alphas_cumprod(self) -> torch.Tensor:
        return self.scheduler.alphas_cumprod.to(next(self.unet.parameters()).device)

    def conditioning_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.unet.named_parameters() if ".attn2." in name]

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.text_encoder.parameters())
