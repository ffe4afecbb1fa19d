"""Behaviour of yw_core.runtime.Runtime on a single CPU process."""

import os
import random
import sys
import time
import types

import pytest
import torch
from torch.utils.data import TensorDataset

from yw_core.runtime import Runtime

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
needs_no_mps = pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS is available")


@pytest.fixture(autouse=True)
def _single_process(monkeypatch):
    """Make sure a stray torchrun environment cannot turn these tests distributed."""
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def restore_determinism(monkeypatch):
    """Undo the process-global switches that deterministic=True flips."""
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    algos = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(algos, warn_only=warn_only)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


@needs_no_cuda
@needs_no_mps
def test_auto_device_is_cpu_without_accelerators():
    rt = Runtime()
    assert rt.device == torch.device("cpu")
    assert not rt.is_distributed and rt.world_size == 1 and rt.rank == 0 and rt.is_main


@needs_no_cuda
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_unavailable_cuda_raises_naming_the_device(device):
    with pytest.raises(ValueError, match=f"device '{device}' requested.*cuda.is_available"):
        Runtime(device=device)


@needs_no_mps
def test_unavailable_mps_raises():
    with pytest.raises(ValueError, match="device 'mps' requested"):
        Runtime(device="mps")


def test_unknown_device_raises():
    with pytest.raises(ValueError, match="unsupported device 'tpu'"):
        Runtime(device="tpu")


def test_bad_precision_lists_valid_ones():
    with pytest.raises(ValueError, match="'fp8'.*fp32, bf16, fp16"):
        Runtime(device="cpu", precision="fp8")


def test_fp16_on_cpu_raises_and_points_to_bf16():
    with pytest.raises(ValueError, match="CPU autocast supports bf16 only"):
        Runtime(device="cpu", precision="fp16")


def test_bf16_autocast_casts_linear_output_fp32_does_not():
    layer = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    bf16 = Runtime(device="cpu", precision="bf16")
    with bf16.autocast():
        assert layer(x).dtype == torch.bfloat16
    assert bf16.dtype == torch.bfloat16
    fp32 = Runtime(device="cpu", precision="fp32")
    with fp32.autocast():
        assert layer(x).dtype == torch.float32
    assert fp32.dtype == torch.float32


def test_grad_scaler_disabled_off_cuda():
    assert not Runtime(device="cpu", precision="bf16").grad_scaler().is_enabled()


def test_same_seed_same_random_numbers():
    Runtime(device="cpu", seed=7)
    a, ra = torch.randn(5), random.random()
    Runtime(device="cpu", seed=7)
    b, rb = torch.randn(5), random.random()
    Runtime(device="cpu", seed=8)
    c = torch.randn(5)
    assert torch.equal(a, b) and ra == rb
    assert not torch.equal(a, c)


def test_seed_everything_seeds_numpy_when_installed(monkeypatch):
    seen = []
    fake = types.SimpleNamespace(random=types.SimpleNamespace(seed=seen.append))
    monkeypatch.setitem(sys.modules, "numpy", fake)
    assert Runtime(device="cpu", seed=3).seed_everything(11) == 11
    assert seen == [3, 11]


def _order(loader):
    return [int(i) for (batch,) in loader for i in batch]


def test_loader_order_reproducible_and_independent_of_global_rng():
    data = TensorDataset(torch.arange(20))
    first = _order(Runtime(device="cpu", seed=1).loader(data, batch_size=4))
    rt = Runtime(device="cpu", seed=1)
    torch.rand(100)  # consuming the global RNG must not change the loader's shuffle
    loader = rt.loader(data, batch_size=4)
    assert _order(loader) == first
    assert sorted(first) == list(range(20)) and first != list(range(20))
    assert _order(Runtime(device="cpu", seed=2).loader(data, batch_size=4)) != first
    rt.set_epoch(loader, 1)  # no sampler.set_epoch outside distributed: must be a harmless no-op


def test_loader_without_shuffle_keeps_order_and_drop_last():
    data = TensorDataset(torch.arange(10))
    loader = Runtime(device="cpu").loader(data, batch_size=4, shuffle=False, drop_last=True)
    assert _order(loader) == list(range(8))


def test_generator_reproducible():
    rt = Runtime(device="cpu", seed=5)
    a = torch.randn(4, generator=rt.generator())
    b = torch.randn(4, generator=rt.generator())
    c = torch.randn(4, generator=rt.generator(seed=6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert rt.generator().device == torch.device("cpu")


def test_to_moves_nested_structures():
    rt = Runtime(device="cpu")
    rt.device = torch.device("meta")  # a second device that exists everywhere
    batch = {"x": torch.ones(2), "pair": (torch.zeros(1), [torch.ones(3)]), "n": 4}
    moved = rt.to(batch)
    assert moved["x"].device.type == "meta"
    assert isinstance(moved["pair"], tuple) and moved["pair"][0].device.type == "meta"
    assert isinstance(moved["pair"][1], list) and moved["pair"][1][0].device.type == "meta"
    assert moved["n"] == 4
    layer = rt.to(torch.nn.Linear(2, 2))
    assert layer.weight.device.type == "meta"


def test_all_reduce_without_distributed_returns_a_copy():
    rt = Runtime(device="cpu")
    t = torch.tensor([1.0, -2.0, 3.0])
    for op in ("sum", "mean", "max", "min"):
        out = rt.all_reduce(t, op=op)
        assert torch.equal(out, t) and out.data_ptr() != t.data_ptr()
    with pytest.raises(ValueError, match="'avg'.*sum, mean, max, min"):
        rt.all_reduce(t, op="avg")


def test_print_and_ddp_outside_distributed(capsys):
    rt = Runtime(device="cpu")
    rt.print("hello from rank 0")
    assert capsys.readouterr().out == "hello from rank 0\n"
    model = torch.nn.Linear(2, 2)
    assert rt.wrap_ddp(model) is model
    rt.barrier()
    with rt:
        pass  # close() with no process group of its own must not fail


def test_timer_gives_positive_seconds():
    rt = Runtime(device="cpu")
    with rt.timer() as t:
        time.sleep(0.02)
    assert 0.015 <= t.seconds < 5


def test_peak_memory_on_cpu_is_positive():
    rt = Runtime(device="cpu")
    rt.reset_peak_memory()
    peak = rt.peak_memory_bytes()
    assert isinstance(peak, int) and peak > 1_000_000  # a Python process with torch is > 1 MB


def test_describe_keys_and_repr():
    rt = Runtime(device="cpu", precision="bf16", seed=3)
    info = rt.describe()
    assert set(info) == {
        "device",
        "device_name",
        "precision",
        "seed",
        "deterministic",
        "world_size",
        "rank",
        "torch_version",
        "cuda_version",
    }
    assert info["device"] == "cpu" and info["precision"] == "bf16" and info["seed"] == 3
    assert info["world_size"] == 1 and info["rank"] == 0
    assert info["torch_version"] == torch.__version__
    assert repr(rt) == "Runtime(device='cpu', precision='bf16', seed=3, deterministic=False)"


def test_deterministic_mode_sets_global_flags(restore_determinism):
    Runtime(device="cpu", deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_deterministic_keeps_user_cublas_setting(restore_determinism, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    Runtime(device="cpu", deterministic=True)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
