"""The OOD sets of `yw-core bench ood`, built offline, seeded, in the ID images' shape.

Every set is a float32 tensor (N, C, H, W) in [0, 1], N the requested size (fewer only when the
source has fewer images: digits-5-9, cifar100, svhn), in the shape of the ID images (1x8x8 for
digits, 3x32x32 for CIFAR-10). A set's images depend only on its name, the seed and the size:
each set draws from its own generator, so adding or dropping a set changes no other.

near-OOD (same kind of image, unseen classes):
- `digits-5-9`: scikit-learn's digits of classes 5-9 (the ID classifier sees only 0-4): the test
  split's first (random order), then the train split's, which the classifier never saw either;
- `cifar100`: the CIFAR-100 test split (for CIFAR-10 as ID, as OpenOOD), when on disk.

far-OOD (other image sources):
- `photos`: random square crops of scikit-learn's two sample photos (`load_sample_images`: a
  temple and a flower, 427x640), alternating, the crop side uniform in [4, 16] x the ID size
  (capped by the photo), greyscale (ITU-R 601 luma) for 1-channel ID, resized with antialiased
  bilinear interpolation, pixel values / 255;
- `textures`: the same crops of scikit-image's textures `brick`, `grass` and `gravel` (512x512,
  greyscale; copied into 3 channels for colour ID), in turn; needs scikit-image
  (`pip install 'yw-bench[ood]'`) and is skipped with a note without it;
- `svhn`: the SVHN test split (for CIFAR-10 as ID), when on disk;
- `gaussian`: i.i.d. pixels N(0.5, 0.25^2) clipped to [0, 1] (about 5% of pixels clip);
- `uniform`: i.i.d. pixels U[0, 1]. The two noise sets are the sanity floor: any scorer worth
  its name separates them from real images.

A set whose source is absent (scikit-image, or a CIFAR/SVHN file) raises `Unavailable`, whose
message says how to get it; the protocol skips that set with the message as a note.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch


class Unavailable(Exception):
    """An OOD set whose source is not installed or not on disk; the message says how to get it."""


@dataclass(frozen=True)
class OODSetSpec:
    """One OOD set: near or far, what it is, the ID datasets it applies to, its builder."""

    kind: Literal["near", "far"]
    description: str
    datasets: tuple[str, ...] | None  # ID datasets it is defined for; None: any
    build: Callable[[int, tuple[int, int, int], np.random.Generator, int], torch.Tensor]


# ---- builders: (n, shape (C, H, W), rng, seed) -> (N, C, H, W) float32 in [0, 1] -------------


def _digits_5_9(n, shape, rng, seed):
    from yw_core.data import load_dataset

    parts = []
    for split in ("test", "train"):  # the split of the ID data's seed, so test stays test
        x, y = load_dataset("digits", split, seed=seed).tensors
        held_out = x[y >= 5]
        parts.append(held_out[torch.from_numpy(rng.permutation(len(held_out)))])
    return torch.cat(parts)[:n]


def _resize(images: torch.Tensor, shape) -> torch.Tensor:
    """(N, c, h, w) in [0, 1] to (N, C, H, W): greyscale or replicated channels, then resized."""
    channels, height, width = shape
    if images.shape[1] == 3 and channels == 1:
        luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        images = (images * luma).sum(1, keepdim=True)
    elif images.shape[1] == 1 and channels != 1:
        images = images.expand(-1, channels, -1, -1)
    if images.shape[1] != channels:
        raise ValueError(f"cannot make {channels}-channel images from {images.shape[1]} channels")
    out = torch.nn.functional.interpolate(
        images, size=(height, width), mode="bilinear", antialias=True, align_corners=False
    )
    return out.clamp(0, 1)


def crops(sources: list[np.ndarray], n: int, shape, rng: np.random.Generator) -> torch.Tensor:
    """n random square crops of uint8 images (H, W) or (H, W, 3), taken from each source in turn,
    of a side uniform in [4, 16] x the target size (capped by the source), resized to `shape`."""
    size = max(shape[1:])
    out = []
    for i in range(n):
        image = sources[i % len(sources)]
        limit = min(image.shape[:2])
        lo, hi = min(4 * size, limit), min(16 * size, limit)
        side = int(rng.integers(lo, hi + 1))
        top = int(rng.integers(0, image.shape[0] - side + 1))
        left = int(rng.integers(0, image.shape[1] - side + 1))
        crop = torch.from_numpy(np.ascontiguousarray(image[top : top + side, left : left + side]))
        crop = crop.float().div(255.0)
        crop = crop[None] if crop.dim() == 2 else crop.permute(2, 0, 1)
        out.append(_resize(crop[None], shape))
    if not out:
        return torch.zeros((0, *shape))
    return torch.cat(out)


def _photos(n, shape, rng, seed):
    from sklearn.datasets import load_sample_images

    return crops(list(load_sample_images().images), n, shape, rng)


TEXTURES = ("brick", "grass", "gravel")


def _textures(n, shape, rng, seed):
    try:
        import skimage.data
    except ImportError:
        raise Unavailable(
            "scikit-image is not installed: pip install 'yw-bench[ood]' (or scikit-image)"
        ) from None
    return crops([getattr(skimage.data, name)() for name in TEXTURES], n, shape, rng)


def _gaussian(n, shape, rng, seed):
    return torch.from_numpy(rng.normal(0.5, 0.25, (n, *shape)).clip(0, 1).astype(np.float32))


def _uniform(n, shape, rng, seed):
    return torch.from_numpy(rng.uniform(0.0, 1.0, (n, *shape)).astype(np.float32))


def _on_disk(name: str):
    def build(n, shape, rng, seed):
        from yw_core.data import load_dataset

        try:
            x = load_dataset(name, "test").tensors[0]
        except FileNotFoundError as exc:
            raise Unavailable(str(exc)) from None
        x = x[torch.from_numpy(rng.permutation(len(x))[:n])]
        return x if tuple(x.shape[1:]) == tuple(shape) else _resize(x, shape)

    return build


OOD_SETS: dict[str, OODSetSpec] = {
    "digits-5-9": OODSetSpec("near", "digits of the unseen classes 5-9", ("digits",), _digits_5_9),
    "cifar100": OODSetSpec("near", "CIFAR-100 test split", ("cifar10",), _on_disk("cifar100")),
    "photos": OODSetSpec("far", "crops of scikit-learn's two sample photos", None, _photos),
    "textures": OODSetSpec("far", "crops of scikit-image's brick, grass, gravel", None, _textures),
    "svhn": OODSetSpec("far", "SVHN test split", ("cifar10",), _on_disk("svhn")),
    "gaussian": OODSetSpec("far", "pixels N(0.5, 0.25^2) clipped to [0, 1]", None, _gaussian),
    "uniform": OODSetSpec("far", "pixels U[0, 1]", None, _uniform),
}

DEFAULT_SETS = {
    "digits": ("digits-5-9", "photos", "textures", "gaussian", "uniform"),
    "cifar10": ("cifar100", "svhn", "photos", "textures", "gaussian", "uniform"),
}


def check_names(names, dataset: str | None = None) -> None:
    """Unknown set names, or sets not defined for `dataset` (when given), are a ValueError naming
    the known ones."""
    unknown = [name for name in names if name not in OOD_SETS]
    if unknown:
        raise ValueError(
            f"unknown OOD set {', '.join(unknown)}; known OOD sets: {', '.join(OOD_SETS)}"
        )
    for name in names:
        allowed = OOD_SETS[name].datasets
        if dataset is not None and allowed is not None and dataset not in allowed:
            usable = [n for n, s in OOD_SETS.items() if s.datasets is None or dataset in s.datasets]
            raise ValueError(
                f"OOD set {name} is defined for ID dataset {', '.join(allowed)}, not {dataset}; "
                f"OOD sets for {dataset}: {', '.join(usable)}"
            )


def make_ood_set(name: str, n: int, shape: tuple[int, int, int], seed: int) -> torch.Tensor:
    """The OOD set `name`: (N, C, H, W) float32 in [0, 1], N = n unless the source has fewer.

    Raises `Unavailable` when its source is absent, ValueError for an unknown name."""
    if name not in OOD_SETS:
        raise ValueError(f"unknown OOD set {name}; known OOD sets: {', '.join(OOD_SETS)}")
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    x = OOD_SETS[name].build(n, tuple(shape), rng, seed)
    return x.float().contiguous()
