"""Datasets: the digits split, and CIFAR-10/100 and SVHN read from files in their real formats."""

import pickle
import sys

import numpy as np
import pytest
import scipy.io
import torch
from sklearn.datasets import load_digits

from yw_core import data, hooks
from yw_core.data import dataset_info, load_dataset


@pytest.fixture
def plugin_manager():
    """A plugin manager with no installed plugins, swapped in for the test and reset after."""
    pm = hooks.make_plugin_manager(load_entry_points=False)
    hooks.set_plugin_manager(pm)
    yield pm
    hooks.set_plugin_manager(None)


# ---- digits ---------------------------------------------------------------------------------


def test_digits_splits_are_the_whole_dataset_in_0_1():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(train) == 1347 and len(test) == 450  # test fraction 0.25 of 1,797
    for ds in (train, test):
        x, y = ds.tensors
        assert x.dtype == torch.float32 and x.shape[1:] == (1, 8, 8)
        assert y.dtype == torch.int64 and set(y.tolist()) == set(range(10))
        assert x.min() == 0.0 and x.max() == 1.0
    # the two splits together are exactly sklearn's images divided by 16, none lost or repeated
    both = torch.cat([train.tensors[0], test.tensors[0]]).reshape(-1, 64).numpy()
    raw = load_digits().data / 16.0
    assert np.array_equal(np.unique(both, axis=0), np.unique(raw, axis=0))
    assert len(both) == len(raw)


def test_digits_split_is_stratified():
    y_train = load_dataset("digits", "train").tensors[1]
    y_test = load_dataset("digits", "test").tensors[1]
    for c in range(10):
        n_train, n_test = int((y_train == c).sum()), int((y_test == c).sum())
        assert abs(n_test - (n_train + n_test) * data.DIGITS_TEST_FRACTION) <= 1


def test_digits_split_is_deterministic_for_a_seed():
    a, b = load_dataset("digits", "test", seed=3), load_dataset("digits", "test", seed=3)
    assert torch.equal(a.tensors[0], b.tensors[0]) and torch.equal(a.tensors[1], b.tensors[1])
    other = load_dataset("digits", "test", seed=4)
    assert not torch.equal(a.tensors[0], other.tensors[0])


def test_dataset_info_of_builtins():
    assert dataset_info("digits") == {"name": "digits", "num_classes": 10, "input_shape": (1, 8, 8)}
    assert dataset_info("cifar100")["num_classes"] == 100
    assert dataset_info("svhn")["input_shape"] == (3, 32, 32)


def test_bad_split_and_unknown_dataset_are_value_errors():
    with pytest.raises(ValueError, match="unknown split 'val'; valid: train, test"):
        load_dataset("digits", "val")
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; known: digits, cifar10"):
        load_dataset("mnist")


# ---- CIFAR-10 / CIFAR-100 -------------------------------------------------------------------


def _write_cifar_batch(path, n, label_key, num_classes, seed, extra=None):
    rng = np.random.default_rng(seed)
    batch = {
        b"batch_label": b"testing batch",
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key: rng.integers(0, num_classes, n).tolist(),  # a list of ints, as in the files
        b"filenames": [b"x.png"] * n,
        **(extra or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    return batch


def test_cifar10_reads_the_python_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    batches = [
        _write_cifar_batch(folder / f"data_batch_{i}", 3, b"labels", 10, i) for i in range(1, 6)
    ]
    test_batch = _write_cifar_batch(folder / "test_batch", 4, b"labels", 10, 9)
    train = load_dataset("cifar10", "train", root=tmp_path)
    x, y = train.tensors
    assert x.shape == (15, 3, 32, 32) and x.dtype == torch.float32
    assert y.tolist() == sum((b[b"labels"] for b in batches), [])
    # rows are 1024 red, 1024 green, 1024 blue values, each 32x32 in row-major order
    pixels = (x * 255).round().to(torch.uint8)
    assert pixels[0, 1, 2, 5] == batches[0][b"data"][0][1024 + 2 * 32 + 5]
    assert torch.equal(pixels[3], torch.from_numpy(batches[1][b"data"][0]).view(3, 32, 32))
    test = load_dataset("cifar10", "test", root=tmp_path)
    assert test.tensors[1].tolist() == test_batch[b"labels"]


def test_cifar100_uses_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    coarse = {b"coarse_labels": [0] * 5}
    written = _write_cifar_batch(folder / "train", 5, b"fine_labels", 100, 0, coarse)
    _write_cifar_batch(folder / "test", 2, b"fine_labels", 100, 1, coarse)
    x, y = load_dataset("cifar100", "train", root=tmp_path).tensors
    assert x.shape == (5, 3, 32, 32) and y.tolist() == written[b"fine_labels"]
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_data_root_comes_from_yw_data_dir(tmp_path, monkeypatch):
    _write_cifar_batch(tmp_path / "cifar-10-batches-py" / "test_batch", 2, b"labels", 10, 0)
    monkeypatch.setenv("YW_DATA_DIR", str(tmp_path))
    assert len(load_dataset("cifar10", "test")) == 2


@pytest.mark.parametrize(
    "change, message",
    [
        ({b"data": np.zeros((2, 3072), dtype=np.float32)}, r"uint8 \(N, 3072\)"),
        ({b"data": np.zeros((2, 100), dtype=np.uint8)}, r"uint8 \(N, 3072\)"),
        ({b"labels": [0, 10]}, r"labels must be in \[0, 10\)"),
        ({b"labels": [0]}, "2 images but labels of shape"),
    ],
)
def test_cifar_bad_contents_are_value_errors_naming_the_file(tmp_path, change, message):
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch = _write_cifar_batch(path, 2, b"labels", 10, 0)
    with open(path, "wb") as f:
        pickle.dump({**batch, **change}, f)
    with pytest.raises(ValueError, match=message) as err:
        load_dataset("cifar10", "test", root=tmp_path)
    assert str(path) in str(err.value)


def test_cifar_garbage_and_missing_key_are_value_errors(tmp_path):
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.parent.mkdir()
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="not a readable CIFAR python batch"):
        load_dataset("cifar10", "test", root=tmp_path)
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((1, 3072), np.uint8)}, f)
    with pytest.raises(ValueError, match="expected a dict with keys b'data' and b'labels'"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_missing_files_name_the_path_and_how_to_get_them(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("cifar10", "train", root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in msg
    assert "cifar-10-python.tar.gz" in msg and "download=True" in msg
    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if torchvision were not installed
    with pytest.raises(FileNotFoundError, match="needs torchvision, which is not installed"):
        load_dataset("svhn", "test", root=tmp_path, download=True)
    with pytest.raises(FileNotFoundError, match="test_32x32.mat"):
        load_dataset("svhn", "test", root=tmp_path)


# ---- SVHN -----------------------------------------------------------------------------------


def _write_svhn(path, labels, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (32, 32, 3, len(labels)), dtype=np.uint8)
    scipy.io.savemat(path, {"X": x, "y": np.asarray(labels, dtype=np.uint8).reshape(-1, 1)})
    return x


def test_svhn_reads_the_mat_file_and_maps_label_10_to_0(tmp_path):
    raw = _write_svhn(tmp_path / "train_32x32.mat", [10, 1, 9, 10, 5])
    x, y = load_dataset("svhn", "train", root=tmp_path).tensors
    assert x.shape == (5, 3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.tolist() == [0, 1, 9, 0, 5]
    pixels = (x * 255).round().to(torch.uint8)
    assert torch.equal(pixels, torch.from_numpy(raw).permute(3, 2, 0, 1))  # X is (H, W, C, N)
    assert pixels[2, 1, 7, 30] == raw[7, 30, 1, 2]


def test_svhn_bad_contents_are_value_errors(tmp_path):
    path = tmp_path / "test_32x32.mat"
    _write_svhn(path, [0, 3])
    with pytest.raises(ValueError, match=r"labels must be 1\.\.10"):
        load_dataset("svhn", "test", root=tmp_path)
    scipy.io.savemat(path, {"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.ones((2, 1))})
    with pytest.raises(ValueError, match=r"X must be uint8 \(32, 32, 3, N\)"):
        load_dataset("svhn", "test", root=tmp_path)


# ---- plugin datasets ------------------------------------------------------------------------


def test_plugin_dataset_is_listed_loaded_and_described(plugin_manager):
    calls = []

    def tiny(split, root, download, seed):
        calls.append((split, root, download, seed))
        x = torch.zeros(6, 2, 4, 4)
        return torch.utils.data.TensorDataset(x, torch.tensor([0, 1, 2, 0, 1, 2]))

    class Plugin:
        @hooks.hookimpl
        def yw_register_datasets(self, register):
            register("tiny", tiny)

    plugin_manager.register(Plugin())
    assert data.DATASETS == ("digits", "cifar10", "cifar100", "svhn", "tiny")
    assert len(load_dataset("tiny", "test", seed=5)) == 6
    assert calls == [("test", None, False, 5)]
    assert dataset_info("tiny") == {"name": "tiny", "num_classes": 3, "input_shape": (2, 4, 4)}


def test_plugin_dataset_colliding_with_a_builtin_is_an_error(plugin_manager):
    def my_cifar(split, root, download, seed):
        raise AssertionError("never called")

    class Plugin:
        @hooks.hookimpl
        def yw_register_datasets(self, register):
            register("cifar10", my_cifar)

    plugin_manager.register(Plugin())
    with pytest.raises(ValueError, match=r"'cifar10' registered by a plugin \(.*my_cifar\) "):
        data.dataset_names()
    assert load_dataset("digits", "test") is not None  # built-ins do not consult plugins
