"""Runtime: the one place that knows about devices, precision, seeding, torchrun and timing.

Plugins never call `.cuda()`; they ask the runtime for a device, an autocast context, a seeded
generator, a data loader or a DDP wrapper, so the same method code runs on cpu, cuda and mps, in one
process or under torchrun.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import random
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
REDUCE_OPS = ("sum", "mean", "max", "min")


@dataclasses.dataclass
class Timing:
    """Result of a `Runtime.timer()` block; `seconds` is filled in when the block exits."""

    seconds: float | None = None


class Runtime:
    """Device, precision, seeding and distributed set-up for one process, chosen once."""

    def __init__(
        self,
        device: str | torch.device = "auto",
        precision: str = "fp32",
        seed: int = 0,
        deterministic: bool = False,
        distributed: bool | str = "auto",
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
        if distributed not in ("auto", True, False):
            raise ValueError(f"distributed must be 'auto', True or False, got {distributed!r}")
        self.precision = precision
        self.seed = int(seed)
        self.deterministic = bool(deterministic)
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if self.deterministic:
            # cuBLAS reads this when it creates its first handle, so it only takes effect if set
            # before any CUDA matmul in this process; setting it here (before we touch CUDA) and
            # not overriding a user's value is the best a library can do.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        self.device = _resolve_device(device, self.local_rank)
        if precision == "fp16" and self.device.type == "cpu":
            raise ValueError(
                "precision 'fp16' is not supported on cpu: CPU autocast supports bf16 only; "
                "use 'bf16' or 'fp32'"
            )
        if self.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=False)
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False

        want = int(os.environ.get("WORLD_SIZE", "1")) > 1 if distributed == "auto" else distributed
        if want and not dist.is_available():
            raise RuntimeError("distributed run requested but torch.distributed is not available")
        self._owns_group = False
        if want and not dist.is_initialized():
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)  # so NCCL and barrier() use this rank's GPU
            dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")
            self._owns_group = True
        self._distributed = bool(want) and dist.is_initialized()
        self.seed_everything()

    # ---- device and precision -------------------------------------------------------------

    @property
    def dtype(self) -> torch.dtype:
        """The autocast dtype (float32 for fp32, where autocast is off)."""
        return PRECISIONS[self.precision]

    def to(self, obj):
        """Move a module or tensor, or a (nested) tuple/list/dict of them, to the device."""
        if isinstance(obj, (torch.Tensor, torch.nn.Module)):
            return obj.to(self.device)
        if isinstance(obj, dict):
            return {k: self.to(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.to(v) for v in obj]
        if isinstance(obj, tuple):
            items = [self.to(v) for v in obj]
            return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
        return obj

    def autocast(self):
        """Mixed-precision context for the forward pass; a no-op for fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def grad_scaler(self):
        """Loss scaler for fp16 on cuda (where gradients underflow); disabled everywhere else."""
        enabled = self.precision == "fp16" and self.device.type == "cuda"
        if hasattr(torch.amp, "GradScaler"):  # torch >= 2.3
            return torch.amp.GradScaler(self.device.type, enabled=enabled)
        return torch.cuda.amp.GradScaler(enabled=enabled)  # torch 2.2

    # ---- seeding ----------------------------------------------------------------------------

    def seed_everything(self, seed: int | None = None) -> int:
        """Seed python, numpy (if installed) and torch on every device; returns the seed used."""
        seed = self.seed if seed is None else int(seed)
        random.seed(seed)
        try:
            import numpy
        except ImportError:
            pass
        else:
            numpy.random.seed(seed % 2**32)
        torch.manual_seed(seed)  # also seeds all cuda devices (lazily) and mps
        return seed

    def generator(self, seed: int | None = None, device=None) -> torch.Generator:
        """A seeded torch.Generator, for methods that need their own RNG stream."""
        gen = torch.Generator(device=self.device if device is None else device)
        return gen.manual_seed(self.seed if seed is None else int(seed))

    # ---- distributed ------------------------------------------------------------------------

    @property
    def is_distributed(self) -> bool:
        """True when running in a torch.distributed process group (e.g. under torchrun)."""
        return self._distributed

    @property
    def rank(self) -> int:
        """Global rank of this process (0 when not distributed)."""
        return dist.get_rank() if self._distributed else 0

    @property
    def world_size(self) -> int:
        """Number of processes in the group (1 when not distributed)."""
        return dist.get_world_size() if self._distributed else 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that should log and write files."""
        return self.rank == 0

    def loader(self, dataset, batch_size: int, shuffle: bool = True, drop_last: bool = False, **kw):
        """A DataLoader that shards across ranks when distributed and shuffles reproducibly."""
        if self._distributed:
            # drop_last also goes to the sampler: False pads ranks to equal length by repeating
            # samples (DistributedSampler default), True drops the uneven tail instead.
            kw["sampler"] = DistributedSampler(
                dataset, shuffle=shuffle, seed=self.seed, drop_last=drop_last
            )
            shuffle = False
        else:
            kw.setdefault("generator", torch.Generator().manual_seed(self.seed))
        return DataLoader(
            dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, **kw
        )

    def set_epoch(self, loader, epoch: int) -> None:
        """Tell a distributed sampler the epoch, so each epoch gets a new shuffle on every rank."""
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Reduce a tensor over all ranks and return the result (a copy; input is untouched)."""
        if op not in REDUCE_OPS:
            raise ValueError(f"unknown op {op!r}; valid: {', '.join(REDUCE_OPS)}")
        out = tensor.detach().clone()
        if not self._distributed:
            return out
        reduce_op = {"max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}.get(op, dist.ReduceOp.SUM)
        dist.all_reduce(out, op=reduce_op)  # under nccl the tensor must be on self.device
        return out / self.world_size if op == "mean" else out

    def barrier(self) -> None:
        """Wait for all ranks; a no-op when not distributed."""
        if self._distributed:
            dist.barrier()

    def print(self, *args, **kw) -> None:
        """print() on rank 0 only, so logs are not repeated once per process."""
        if self.is_main:
            print(*args, **kw)

    def wrap_ddp(self, model: torch.nn.Module) -> torch.nn.Module:
        """Wrap a model (already on self.device) in DistributedDataParallel when distributed."""
        if not self._distributed:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def close(self, wait: bool = True) -> None:
        """Destroy the process group if this runtime created it; with `wait`, once every rank
        is done.

        The barrier matters: a rank that tears its group down while a peer still talks to it
        can abort in gloo ("terminate called without an active exception"). Leaving a `with`
        block on an exception skips it, so a failing rank exits instead of waiting for peers."""
        if self._owns_group and dist.is_initialized():
            if wait:
                dist.barrier()
            dist.destroy_process_group()
            self._distributed = False
        self._owns_group = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(wait=exc_type is None)

    # ---- timing and memory ------------------------------------------------------------------

    @contextlib.contextmanager
    def timer(self):
        """Time a block on the device (cuda events, else perf_counter after a sync)."""
        timing = Timing()
        if self.device.type == "cuda":
            # Events measure work queued on the current stream of this device between the two
            # records; the end synchronize waits for that work to finish.
            stream = torch.cuda.current_stream(self.device)
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record(stream)
            try:
                yield timing
            finally:
                end.record(stream)
                end.synchronize()
                timing.seconds = start.elapsed_time(end) / 1000.0
        else:
            self._synchronize()
            t0 = time.perf_counter()
            try:
                yield timing
            finally:
                self._synchronize()
                timing.seconds = time.perf_counter() - t0

    def _synchronize(self) -> None:
        if self.device.type == "mps":
            torch.mps.synchronize()

    def reset_peak_memory(self) -> None:
        """Start a new peak-memory window (cuda only; the cpu and mps figures cannot be reset)."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory_bytes(self) -> int:
        """Peak memory in bytes: cuda allocator peak, mps driver allocation, cpu peak RSS."""
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        if self.device.type == "mps":
            # current (not peak) memory the Metal driver holds for this process
            get = getattr(torch.mps, "driver_allocated_memory", None)
            return int(get()) if get is not None else 0
        # cpu: peak resident set size of the whole process since it started (not resettable)
        try:
            import resource
        except ImportError:  # Windows
            return 0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(rss if sys.platform == "darwin" else rss * 1024)  # KiB on Linux, bytes on macOS

    # ---- reporting --------------------------------------------------------------------------

    def describe(self) -> dict:
        """Facts about this run for results manifests."""
        if self.device.type == "cuda":
            device_name = torch.cuda.get_device_name(self.device)
        else:
            device_name = platform.processor() or "cpu"
        return {
            "device": str(self.device),
            "device_name": device_name,
            "precision": self.precision,
            "seed": self.seed,
            "deterministic": self.deterministic,
            "world_size": self.world_size,
            "rank": self.rank,
            "torch_version": str(torch.__version__),
            "cuda_version": torch.version.cuda,
        }

    def __repr__(self) -> str:
        dist_part = f", rank={self.rank}/{self.world_size}" if self._distributed else ""
        return (
            f"Runtime(device='{self.device}', precision='{self.precision}', seed={self.seed}, "
            f"deterministic={self.deterministic}{dist_part})"
        )


def _resolve_device(spec: str | torch.device, local_rank: int) -> torch.device:
    """Turn 'auto' / 'cpu' / 'cuda[:N]' / 'mps' into an available torch.device or raise."""
    spec = str(spec)
    if spec == "auto":
        if torch.cuda.is_available():
            spec = "cuda"
        elif torch.backends.mps.is_available():
            spec = "mps"
        else:
            spec = "cpu"
    try:
        device = torch.device(spec)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(
            f"unsupported device {spec!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        )
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r} requested but torch.cuda.is_available() is False")
        if device.index is None:  # under torchrun each process takes the GPU of its LOCAL_RANK
            device = torch.device("cuda", local_rank)
        if device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device '{device}' requested but only {torch.cuda.device_count()} CUDA "
                "device(s) are visible"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device {spec!r} requested but torch.backends.mps.is_available() is False"
        )
    return device
