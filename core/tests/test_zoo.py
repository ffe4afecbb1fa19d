"""Model zoo: trains the digits CNN once, caches it by config, and retrains over a damaged file."""

import os
import time

import pytest
import torch

from yw_core import zoo
from yw_core.data import load_dataset, user_cache_dir
from yw_core.zoo import recipe, reference_model

QUICK = {"epochs": 1}  # for tests about the cache file, where accuracy does not matter


@pytest.fixture(autouse=True)
def cache_env(tmp_path, monkeypatch):
    """Every test caches under its own tmp folder; a tiny CNN trains fastest on one thread."""
    monkeypatch.setenv("YW_CACHE_DIR", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path / "cache" / "models"
    torch.set_num_threads(threads)


def _refuse_training(monkeypatch):
    monkeypatch.setattr(zoo, "_train", lambda *a: pytest.fail("trained although cached"))


def _test_accuracy(model):
    x, y = load_dataset("digits", "test").tensors
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def test_digits_cnn_is_trained_to_95_percent_then_loaded_from_cache(cache_env, monkeypatch):
    start = time.perf_counter()
    model = reference_model("digits", "digits-cnn", seed=0, progress=False)
    seconds = time.perf_counter() - start
    print(f"digits-cnn trained in {seconds:.2f} s, test accuracy {_test_accuracy(model):.4f}")
    assert not model.training
    assert _test_accuracy(model) >= 0.95
    assert model.zoo_info["test_accuracy"] == pytest.approx(_test_accuracy(model))
    path = model.zoo_info["path"]
    assert os.path.dirname(path) == str(cache_env) and os.listdir(cache_env) == [
        os.path.basename(path)
    ]

    mtime = os.stat(path).st_mtime_ns
    _refuse_training(monkeypatch)
    again = reference_model("digits", "digits-cnn", seed=0, progress=False)
    assert os.stat(path).st_mtime_ns == mtime
    assert not again.training and again.zoo_info == model.zoo_info
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name


def test_seed_or_any_setting_changes_the_cache_key():
    base = recipe("digits", "digits-cnn", seed=0)
    assert recipe("digits", "digits-cnn", seed=0).key() == base.key()
    variants = [
        recipe("digits", "digits-cnn", seed=1),
        recipe("digits", "digits-cnn", seed=0, data_seed=1),
        recipe("digits", "digits-cnn", seed=0, epochs=11),
        recipe("digits", "digits-cnn", seed=0, lr=1e-3),
        recipe("digits", "resnet18", seed=0),
    ]
    assert len({base.key()} | {v.key() for v in variants}) == 6


def test_a_different_seed_is_not_served_from_the_cache(monkeypatch):
    reference_model(seed=0, progress=False, **QUICK)
    _refuse_training(monkeypatch)
    reference_model(seed=0, progress=False, **QUICK)  # cached
    with pytest.raises(pytest.fail.Exception, match="trained although cached"):
        reference_model(seed=1, progress=False, **QUICK)


def test_data_split_follows_the_seed_unless_overridden(monkeypatch):
    loads = []

    def spy(name, split, seed=0):
        loads.append((split, seed))
        return load_dataset(name, split, seed=seed)

    monkeypatch.setattr(zoo, "load_dataset", spy)
    model = reference_model(seed=3, progress=False, **QUICK)
    assert loads == [("train", 3), ("test", 3)] and model.zoo_info["config"]["data_seed"] == 3
    loads.clear()
    reference_model(seed=3, data_seed=0, progress=False, **QUICK)
    assert loads == [("train", 0), ("test", 0)]


def test_training_is_deterministic_for_a_seed(tmp_path):
    a = reference_model(seed=2, cache_dir=tmp_path / "a", progress=False, **QUICK)
    b = reference_model(seed=2, cache_dir=tmp_path / "b", progress=False, **QUICK)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path):
    path.write_bytes(b"\x00not a torch file" * 100)


def _tamper(path):  # change one weight but keep the stored checksum
    record = torch.load(path, weights_only=True)
    record["state_dict"]["head.bias"][0] += 1.0
    torch.save(record, path)


def _other_format(path):
    torch.save({"state_dict": {}}, path)


@pytest.mark.parametrize("damage", [_truncate, _garbage, _tamper, _other_format])
def test_damaged_cache_file_is_reported_and_retrained(damage, monkeypatch):
    good = reference_model(seed=0, progress=False, **QUICK)
    path = good.zoo_info["path"]
    damage(zoo.Path(path))
    trained = []
    real_train = zoo._train
    monkeypatch.setattr(zoo, "_train", lambda *a: trained.append(1) or real_train(*a))
    with pytest.warns(UserWarning, match=f"cached model {path} is unusable"):
        model = reference_model(seed=0, progress=False, **QUICK)
    assert trained == [1]
    for name, tensor in good.state_dict().items():  # same weights as the clean training
        assert torch.equal(tensor, model.state_dict()[name]), name
    _refuse_training(monkeypatch)
    reference_model(seed=0, progress=False, **QUICK)  # the rewritten file is valid


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(cache_env, monkeypatch):
    model = reference_model(seed=0, progress=False, **QUICK)
    path = zoo.Path(model.zoo_info["path"])
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(zoo.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        zoo._save({"anything": 1}, path)
    assert path.read_bytes() == before
    assert os.listdir(cache_env) == [path.name]


def test_cache_dir_follows_yw_cache_dir_then_xdg(tmp_path, monkeypatch):
    assert user_cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("YW_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "xdg" / "yw"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "yw"


def test_bad_training_settings_are_value_errors():
    with pytest.raises(ValueError, match="epochs"):
        reference_model(epochs=0, progress=False)
    with pytest.raises(ValueError, match="warmup"):
        reference_model(warmup=5, progress=False)
    with pytest.raises(ValueError, match="unknown model architecture 'nope'"):
        reference_model(arch="nope", progress=False)


def test_crop_augmentation_takes_windows_of_the_padded_image():
    x = torch.rand(6, 3, 32, 32)
    out = zoo._augment(x, "crop-flip", torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for img, src in zip(out, padded):
        windows = [src[:, i : i + 32, j : j + 32] for i in range(9) for j in range(9)]
        assert any(torch.equal(img, w) or torch.equal(img, w.flip(2)) for w in windows)
    assert torch.equal(zoo._augment(x, "none", torch.Generator()), x)


def test_cifar10_model_trains_through_the_same_function(tmp_path, monkeypatch):
    import pickle

    import numpy as np

    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8), b"labels": [0, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch))
    monkeypatch.setenv("YW_DATA_DIR", str(tmp_path / "data"))
    model = reference_model("cifar10", "preact-resnet18", progress=False, epochs=1, batch_size=20)
    assert model.zoo_info["config"]["augment"] == "crop-flip"
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, 10)
    assert 0.0 <= model.zoo_info["test_accuracy"] <= 1.0
