"""Reference models trained on first use and cached on disk, keyed by their training config.

    model = reference_model("digits", "digits-cnn", seed=0)   # ~1-2 s on a CPU the first time
    model.zoo_info["test_accuracy"]                           # measured on the test split

Files live in `cache_dir` if given, else in <user cache>/models, where <user cache> is
$YW_CACHE_DIR, else $XDG_CACHE_HOME/yw, else ~/.cache/yw. The file name carries a hash of the
full training config (dataset, arch, seed, every hyper-parameter and ZOO_FORMAT), so changing any
of them trains a new model. A file holds the state dict, the config, the measured test accuracy
and a sha256 checksum over all of it; it is written atomically (temp file + os.replace) and read
with `torch.load(weights_only=True)`. A file that is unreadable, fails its checksum or does not
match the config is reported with a warning and retrained; weights are never half-loaded.

Training is deterministic for a seed on a given device: the model is initialised from `seed` and
the shuffling and augmentation use their own seeded generators. The train/test split is
`load_dataset(dataset, split, seed=data_seed)` with `data_seed` defaulting to `seed`; evaluate a
zoo model on `load_dataset(dataset, "test", seed=model.zoo_info["config"]["data_seed"])`, since
the digits test split of another seed overlaps its training images (CIFAR and SVHN have fixed
splits and ignore the seed).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from yw_core.atomic import atomic_write
from yw_core.data import dataset_info, load_dataset, user_cache_dir
from yw_core.models import build_model

ZOO_FORMAT = 1  # bump when the training code or file layout changes: old files are then unused

_DEFAULTS = {  # Adam for small inputs; the digits CNN reaches ~98% test accuracy in ~1 s
    "epochs": 10,
    "batch_size": 64,
    "optimizer": "adam",
    "lr": 3e-3,
    "momentum": 0.9,
    "weight_decay": 0.0,
    "schedule": "cosine",
    "augment": "none",
}
_CIFAR_LIKE = {  # the usual SGD recipe for 32x32 images; not measured in this repository
    "epochs": 30,
    "batch_size": 128,
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "schedule": "cosine",
    "augment": "crop-flip",
}
DATASET_DEFAULTS = {
    "digits": _DEFAULTS,
    "cifar10": _CIFAR_LIKE,
    "cifar100": _CIFAR_LIKE,
    "svhn": {**_CIFAR_LIKE, "epochs": 15, "lr": 0.05, "augment": "crop"},  # digits: no flips
}


class Recipe(BaseModel):
    """Everything that decides a reference model's weights; its hash names the cache file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    arch: str
    seed: int
    data_seed: int = Field(description="seed of the train/test split given to load_dataset")
    epochs: int = Field(gt=0, description="passes over the training split")
    batch_size: int = Field(gt=0, description="training batch size")
    optimizer: Literal["adam", "sgd"] = Field(description="adam, or sgd with momentum")
    lr: float = Field(gt=0, description="peak learning rate")
    momentum: float = Field(ge=0, lt=1, description="sgd momentum (unused by adam)")
    weight_decay: float = Field(ge=0, description="L2 weight decay")
    schedule: Literal["cosine", "constant"] = Field(description="per-step lr schedule")
    augment: Literal["none", "crop", "crop-flip"] = Field(
        description="random 4-pixel-padded crops, and horizontal flips for crop-flip"
    )

    def key(self) -> str:
        """sha256 of the config and ZOO_FORMAT: equal keys mean interchangeable weights."""
        text = json.dumps({"zoo_format": ZOO_FORMAT, **self.model_dump()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def recipe(dataset: str, arch: str, seed: int = 0, **overrides) -> Recipe:
    """The dataset's default recipe with overrides; an unknown key or bad value is a ValueError."""
    defaults = {**DATASET_DEFAULTS.get(dataset, _DEFAULTS), "data_seed": seed}
    return Recipe(dataset=dataset, arch=arch, seed=seed, **{**defaults, **overrides})


def reference_model(
    dataset: str = "digits",
    arch: str = "digits-cnn",
    seed: int = 0,
    runtime=None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    **train_overrides,
) -> nn.Module:
    """A trained reference model in eval mode, from the cache or trained now and cached.

    The model carries `zoo_info`: config, test_accuracy, train_seconds and the cache path. It is
    on `runtime.device` when a runtime is given, else on the cpu. Training without a runtime
    makes `Runtime(seed=seed)`, which (like every Runtime) seeds the global RNGs.
    """
    cfg = recipe(dataset, arch, seed, **train_overrides)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else user_cache_dir() / "models"
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{dataset}_{arch}_seed{seed}")
    path = folder / f"{slug}_{cfg.key()[:16]}.pt"

    model = _fresh_model(cfg)

    def train() -> dict:
        accuracy, seconds = _train(model, cfg, runtime or default_runtime(seed), progress)
        return {"test_accuracy": float(accuracy), "train_seconds": float(seconds)}

    record = cached_weights(path, cfg, model, train, runtime)
    model = (runtime.to(model) if runtime is not None else model.cpu()).eval()
    model.zoo_info = {
        "config": record["config"],
        "test_accuracy": record["test_accuracy"],
        "train_seconds": record["train_seconds"],
        "path": str(path),
    }
    return model


def default_runtime(seed: int):
    """The Runtime a cache trains with when the caller gives none (it seeds the global RNGs)."""
    from yw_core.runtime import Runtime

    return Runtime(seed=seed, distributed=False)


def _fresh_model(cfg: Recipe) -> nn.Module:
    info = dataset_info(cfg.dataset)
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the global RNG
        torch.manual_seed(cfg.seed)
        return build_model(cfg.arch, info["num_classes"], in_channels=info["input_shape"][0])


# ---- training -------------------------------------------------------------------------------


def _train(model: nn.Module, cfg: Recipe, runtime, progress: bool) -> tuple[float, float]:
    """Train in place with cross-entropy; returns (test accuracy, training seconds)."""
    from tqdm.auto import tqdm

    train = load_dataset(cfg.dataset, "train", seed=cfg.data_seed)
    test = load_dataset(cfg.dataset, "test", seed=cfg.data_seed)
    loader = runtime.loader(
        train, cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed)
    )
    aug_gen = torch.Generator().manual_seed(cfg.seed + 1)
    model = runtime.to(model).train()
    net = runtime.wrap_ddp(model)
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    steps = cfg.epochs * len(loader)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    scaler = runtime.grad_scaler()
    bar = tqdm(
        total=steps,
        desc=f"yw zoo: training {cfg.arch} on {cfg.dataset}",
        unit="batch",
        disable=not (progress and runtime.is_main),
    )
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        runtime.set_epoch(loader, epoch)
        for x, y in loader:
            x, y = runtime.to(_augment(x, cfg.augment, aug_gen)), runtime.to(y)
            with runtime.autocast():
                loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            bar.update(1)
        bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    bar.close()
    seconds = time.perf_counter() - start
    model.eval()
    return _accuracy(model, test, runtime), seconds


def _augment(x: torch.Tensor, mode: str, gen: torch.Generator) -> torch.Tensor:
    """Random crops of the 4-pixel zero-padded batch, plus horizontal flips for crop-flip."""
    if mode == "none":
        return x
    n, _, h, w = x.shape
    pad = 4
    padded = F.pad(x, (pad, pad, pad, pad))
    top = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    left = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    rows = (top[:, None] + torch.arange(h))[:, :, None]
    cols = (left[:, None] + torch.arange(w))[:, None, :]
    out = padded[torch.arange(n)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    if mode == "crop-flip":
        flip = torch.rand(n, generator=gen) < 0.5
        out = torch.where(flip[:, None, None, None], out.flip(3), out)
    return out.contiguous()


@torch.no_grad()
def _accuracy(model: nn.Module, data, runtime, batch_size: int = 512) -> float:
    correct = 0
    for x, y in torch.utils.data.DataLoader(data, batch_size=batch_size):
        with runtime.autocast():
            pred = model(runtime.to(x)).argmax(1)
        correct += int((pred.cpu() == y).sum())
    return correct / len(data)


# ---- the cache file -------------------------------------------------------------------------


def cached_weights(path: Path, cfg: BaseModel, model: nn.Module, train, runtime) -> dict:
    """Load `model`'s weights for `cfg` (a frozen pydantic model with `key()`) from `path`, or
    call `train()` (which trains `model` in place and returns its measured facts, at least
    train_seconds) and save them atomically. Returns the record; a bad file is retrained."""
    record = _load(path, cfg, model)
    if record is not None:
        model.load_state_dict(record["state_dict"])
        return record
    record = _record(model, cfg, train(), runtime)
    if runtime is None or runtime.is_main:
        _save(record, path)
    if runtime is not None:
        runtime.barrier()
    return record


def _record(model: nn.Module, cfg: BaseModel, facts: dict, runtime) -> dict:
    record = {
        "zoo_format": ZOO_FORMAT,
        "config": cfg.model_dump(),
        "key": cfg.key(),
        **facts,
        "device": str(next(iter(model.state_dict().values())).device),
        "torch_version": str(torch.__version__),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    record["checksum"] = _checksum(record)
    return record


def _checksum(record: dict) -> str:
    """sha256 over the metadata (as sorted JSON) and every tensor's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    meta = {k: v for k, v in record.items() if k not in ("state_dict", "checksum")}
    digest.update(json.dumps(meta, sort_keys=True).encode())
    for name in sorted(record["state_dict"]):
        t = record["state_dict"][name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _save(record: dict, path: Path) -> None:
    """Write atomically, so a crash never leaves a truncated model behind."""
    atomic_write(path, lambda f: torch.save(record, f))


def _load(path: Path, cfg: BaseModel, model: nn.Module) -> dict | None:
    """The verified record at `path`, or None (with a warning if the file exists but is bad)."""
    if not path.exists():
        return None
    try:
        record = torch.load(path, weights_only=True, map_location="cpu")
        problem = _problem(record, cfg, model)
    except Exception as e:  # truncated, garbage, or objects weights_only refuses
        problem = f"unreadable: {type(e).__name__}: {e}"
    if problem:
        warnings.warn(
            f"yw zoo: cached model {path} is unusable ({problem}); retraining it", stacklevel=3
        )
        return None
    return record


def _problem(record, cfg: BaseModel, model: nn.Module) -> str | None:
    needed = ("zoo_format", "config", "state_dict", "checksum", "train_seconds")
    if not isinstance(record, dict) or any(k not in record for k in needed):
        return "not a yw zoo record"
    if record["zoo_format"] != ZOO_FORMAT or record["config"] != cfg.model_dump():
        return "written for another config or zoo format"
    if record["checksum"] != _checksum(record):
        return "checksum mismatch"
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in record["state_dict"].items()}
    if found != expected:
        return "weights do not fit the architecture"
    return None
