"""Datasets as in-memory tensors: the embedded digits default and on-disk CIFAR-10/100 and SVHN.

Every loader returns a `torch.utils.data.TensorDataset` of images (N, C, H, W) float32 in [0, 1]
and labels (N,) int64; no normalisation is applied (models take [0, 1] inputs, as attacks assume).

- "digits": scikit-learn's 1,797 real 8x8 handwritten digits, shipped with scikit-learn, so no
  network is needed. Pixel values 0..16 are divided by 16. The train/test split is stratified by
  class with a fixed seed; a quarter of the images (450) are the test split.
- "cifar10", "cifar100", "svhn": read from the standard files (the layout torchvision uses, so an
  existing torchvision data folder works as `root`). torchvision is not needed to read them; with
  `download=True` and torchvision installed it downloads them first.

Plugins add datasets through the `yw_register_datasets` hook: `register(name, loader)`, where
`loader(split=..., root=..., download=..., seed=...)` returns a Dataset of (image, label) pairs.
"""

from __future__ import annotations

import functools
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

SPLITS = ("train", "test")
DIGITS_TEST_FRACTION = 0.25

# name -> (num_classes, input shape (C, H, W))
_BUILTIN_INFO = {
    "digits": (10, (1, 8, 8)),
    "cifar10": (10, (3, 32, 32)),
    "cifar100": (100, (3, 32, 32)),
    "svhn": (10, (3, 32, 32)),
}
BUILTIN_DATASETS = tuple(_BUILTIN_INFO)

_CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "label_key": b"labels",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "label_key": b"fine_labels",
        "url": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    },
}
_SVHN_URL = "http://ufldl.stanford.edu/housenumbers/"


def user_cache_dir() -> Path:
    """yw's cache folder: $YW_CACHE_DIR, else $XDG_CACHE_HOME/yw, else ~/.cache/yw."""
    if os.environ.get("YW_CACHE_DIR"):
        return Path(os.environ["YW_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "yw"


def default_data_root() -> Path:
    """Where on-disk datasets are looked for: $YW_DATA_DIR, else <user_cache_dir()>/data."""
    if os.environ.get("YW_DATA_DIR"):
        return Path(os.environ["YW_DATA_DIR"]).expanduser()
    return user_cache_dir() / "data"


def dataset_names() -> tuple[str, ...]:
    """Names `load_dataset` accepts: the built-ins, then those plugins register."""
    return BUILTIN_DATASETS + tuple(sorted(_plugin_datasets()))


def __getattr__(name):
    # DATASETS is computed on access, so plugins are collected only when someone asks.
    if name == "DATASETS":
        return dataset_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_dataset(
    name: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = False,
    seed: int = 0,
) -> Dataset:
    """One split of a dataset as (image, label) pairs; see the module docstring for formats."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    if name == "digits":
        return _digits(split, int(seed))
    if name in BUILTIN_DATASETS:
        root = Path(root).expanduser() if root is not None else default_data_root()
        if name == "svhn":
            return _svhn(root, split, download)
        return _cifar(name, root, split, download)
    plugins = _plugin_datasets()
    if name not in plugins:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(dataset_names())}")
    return plugins[name](split=split, root=root, download=download, seed=seed)


def dataset_info(name: str) -> dict:
    """num_classes and input_shape (C, H, W); for a plugin dataset, read off its train split."""
    if name in _BUILTIN_INFO:
        num_classes, shape = _BUILTIN_INFO[name]
    else:
        data = load_dataset(name, "train")
        x0, _ = data[0]
        if hasattr(data, "tensors"):
            labels = data.tensors[1]
        else:
            labels = torch.as_tensor([int(data[i][1]) for i in range(len(data))])
        num_classes, shape = int(labels.max()) + 1, tuple(x0.shape)
    return {"name": name, "num_classes": num_classes, "input_shape": shape}


def _plugin_datasets() -> dict:
    from yw_core.hooks import collect

    found = collect("yw_register_datasets")
    for name, loader in found.items():
        if name in BUILTIN_DATASETS:
            who = f"{getattr(loader, '__module__', '?')}.{getattr(loader, '__qualname__', loader)}"
            raise ValueError(
                f"dataset {name!r} registered by a plugin ({who}) collides with the built-in "
                f"dataset {name!r} of yw_core.data; the plugin must use another name"
            )
    return found


# ---- digits ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8), y.astype(np.int64)


def _digits(split: str, seed: int) -> TensorDataset:
    from sklearn.model_selection import train_test_split

    x, y = _digits_arrays()
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=DIGITS_TEST_FRACTION, stratify=y, random_state=seed
    )
    xs, ys = (x_tr, y_tr) if split == "train" else (x_te, y_te)
    return TensorDataset(torch.from_numpy(xs.copy()), torch.from_numpy(ys.copy()))


# ---- CIFAR-10 / CIFAR-100 (python pickles) --------------------------------------------------


def _cifar(name: str, root: Path, split: str, download: bool) -> TensorDataset:
    spec = _CIFAR[name]
    folder = root / spec["folder"]
    paths = [folder / f for f in spec[split]]
    if not all(p.is_file() for p in paths):
        _fetch(name, root, split, download, [p for p in paths if not p.is_file()], spec["url"])
    xs, ys = [], []
    for path in paths:
        x, y = _read_cifar_batch(path, spec["label_key"], _BUILTIN_INFO[name][0])
        xs.append(x)
        ys.append(y)
    return _to_dataset(np.concatenate(xs), np.concatenate(ys))


def _read_cifar_batch(path: Path, label_key: bytes, num_classes: int):
    with open(path, "rb") as f:
        try:
            batch = pickle.load(f, encoding="bytes")
        except Exception as e:  # truncated or not a pickle at all
            raise ValueError(f"{path}: not a readable CIFAR python batch ({e})") from e
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"{path}: expected a dict with keys b'data' and {label_key!r}, got {keys}")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: b'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (len(data),):
        raise ValueError(f"{path}: {len(data)} images but labels of shape {labels.shape}")
    _check_labels(path, labels, num_classes)
    return data.reshape(-1, 3, 32, 32), labels


# ---- SVHN (.mat) ----------------------------------------------------------------------------


def _svhn(root: Path, split: str, download: bool) -> TensorDataset:
    import scipy.io

    path = root / f"{split}_32x32.mat"
    if not path.is_file():
        _fetch("svhn", root, split, download, [path], _SVHN_URL + path.name)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:
        raise ValueError(f"{path}: not a readable SVHN .mat file ({e})") from e
    if "X" not in mat or "y" not in mat:
        raise ValueError(f"{path}: expected variables 'X' and 'y', got {sorted(mat)}")
    x, y = mat["X"], mat["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise ValueError(f"{path}: X must be uint8 (32, 32, 3, N), got {x.dtype} {x.shape}")
    if y.size != x.shape[3]:
        raise ValueError(f"{path}: {x.shape[3]} images but y has {y.size} labels")
    y = y.reshape(-1).astype(np.int64)
    if y.size and (y.min() < 1 or y.max() > 10):
        raise ValueError(
            f"{path}: SVHN labels must be 1..10 (10 is digit 0), got {y.min()}..{y.max()}"
        )
    y[y == 10] = 0
    return _to_dataset(x.transpose(3, 2, 0, 1), y)


# ---- shared ---------------------------------------------------------------------------------


def _check_labels(path: Path, labels: np.ndarray, num_classes: int) -> None:
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{path}: labels must be integers, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{path}: labels must be in [0, {num_classes}), got {labels.min()}..{labels.max()}"
        )


def _to_dataset(images_uint8: np.ndarray, labels: np.ndarray) -> TensorDataset:
    x = torch.from_numpy(np.ascontiguousarray(images_uint8)).float().div_(255.0)
    return TensorDataset(x, torch.from_numpy(labels.astype(np.int64)))


def _fetch(name: str, root: Path, split: str, download: bool, missing: list, url: str) -> None:
    """Download through torchvision when asked and possible, else say where the files belong."""
    where = ", ".join(str(p) for p in missing)
    if download:
        try:
            import torchvision.datasets as tvd
        except ImportError:
            tvd = None
        if tvd is not None:
            root.mkdir(parents=True, exist_ok=True)
            if name == "svhn":
                tvd.SVHN(str(root), split=split, download=True)
            else:
                cls = tvd.CIFAR10 if name == "cifar10" else tvd.CIFAR100
                cls(str(root), train=split == "train", download=True)
            if all(Path(p).is_file() for p in missing):
                return
            raise FileNotFoundError(f"{name}: torchvision downloaded, but {where} is still missing")
    how = (
        f"download {url} and extract it into {root}"
        if name != "svhn"
        else f"download {Path(url).name} from {_SVHN_URL} into {root}"
    )
    if download:
        tv = " (download=True needs torchvision, which is not installed)"
    else:
        tv = ", or pass download=True (needs torchvision)"
    raise FileNotFoundError(
        f"{name} {split} split not found: expected {where}. To get it, {how}{tv}; "
        f"or set root=... / $YW_DATA_DIR to a folder that has it."
    )
