"""Time per update of each weight optimizer relative to plain SGD, in one run.

One process: SGD, SAM, sequential RWP, m-RWP, ARWP, m-ARWP, SWA and TWA (ICLR, 10 checkpoints)
on one model and batch; the methods take turns (round-robin over `--rounds`) so machine noise
hits them alike, and each reports the median over rounds of its mean time per update.
Two processes (`--ddp`, torchrun, gloo on CPU / NCCL with 2 GPUs): SGD-DDP and RWP-DDP, same
per-process batch, also interleaved. Targets (issue 5): RWP-DDP <= 1.1x SGD-DDP, ARWP <= 1.1x
SGD; SAM about 2x.

    python benchmarks/weight_optimizer_steps.py --model resnet18 --batch 32 --threads 1 --ddp
    python benchmarks/weight_optimizer_steps.py --model resnet18 --batch 256 --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from yw_core.models import build_model
from yw_core.registry import Registry
from yw_core.runtime import Runtime

ONE_PROCESS = ("sgd", "sam", "rwp", "mrwp", "arwp", "marwp", "swa", "twa")
INPUT = {"resnet18": (3, 32, 32), "digits-cnn": (1, 8, 8), "wrn-28-10": (3, 32, 32)}


def loss_fn(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


def make_step(name, model, runtime, registry):
    """The TrainStep of `name` on `model` (sgd: plain), begun for a long run."""
    from yw_core.train import SGDStep, parameter_snapshot

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    if name == "sgd":
        step = SGDStep(model, optimizer, runtime)
    else:
        kwargs = {}
        if name == "twa":  # 10 checkpoints around the current weights, as a trajectory gives
            base = parameter_snapshot(model)
            kwargs["checkpoints"] = [
                {k: v + 0.01 * torch.randn_like(v) for k, v in base.items()} for _ in range(10)
            ]
        method = registry.load(name, "weight_optimizer")()
        step = method.attach(model, optimizer, runtime=runtime, **kwargs)
    step.begin(10_000)
    return step


def time_updates(step, batches, updates: int, runtime) -> float:
    """Mean seconds per update over `updates` updates (each `batches_per_update` batches)."""
    calls = updates * step.batches_per_update
    with runtime.timer() as t:
        for i in range(calls):
            step.step(batches[i % len(batches)], loss_fn)
    return t.seconds / updates


def run(names, args, runtime) -> dict[str, float]:
    """Median (over rounds) seconds per update of each method, interleaved."""
    registry = Registry.discover()
    shape = INPUT[args.model]
    g = torch.Generator().manual_seed(0)
    batches = [
        (
            runtime.to(torch.rand(args.batch, *shape, generator=g)),
            runtime.to(torch.randint(0, 10, (args.batch,), generator=g)),
        )
        for _ in range(4)
    ]
    steps = {}
    for name in names:
        torch.manual_seed(0)
        model = runtime.wrap_ddp(runtime.to(build_model(args.model, 10)).train())
        steps[name] = make_step(name, model, runtime, registry)
        time_updates(steps[name], batches, args.warmup, runtime)
    times = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            runtime.barrier()
            times[name].append(time_updates(steps[name], batches, args.updates, runtime))
    return {name: statistics.median(ts) for name, ts in times.items()}


def ddp_worker(args) -> None:
    torch.set_num_threads(args.threads or 1)
    with Runtime(device=args.device, seed=0, distributed=True) as runtime:
        result = run(["sgd", "rwp"], args, runtime)
        if runtime.is_main:
            Path(args.ddp_worker).write_text(json.dumps(result))


def ddp(args) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ddp.json"
        forwarded = [
            f"--model={args.model}",
            f"--batch={args.batch}",
            f"--updates={args.updates}",
            f"--rounds={args.rounds}",
            f"--warmup={args.warmup}",
            f"--device={args.device}",
            f"--threads={args.threads or 1}",
        ]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        subprocess.run([*cmd, __file__, *forwarded, f"--ddp-worker={out}"], check=True)
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18", choices=sorted(INPUT))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--updates", type=int, default=5, help="updates per round and method")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--methods", default=",".join(ONE_PROCESS))
    parser.add_argument("--ddp", action="store_true", help="also time SGD-DDP vs RWP-DDP")
    parser.add_argument("--ddp-worker", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    if args.ddp_worker:
        return ddp_worker(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    runtime = Runtime(device=args.device, seed=0, distributed=False)
    names = args.methods.split(",")
    started = time.perf_counter()
    one = run(names, args, runtime)
    report = {
        "device": str(runtime.device),
        "model": args.model,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "seconds_per_update": one,
        "ratio_to_sgd": {n: one[n] / one["sgd"] for n in one},
    }
    print(f"{args.model}, batch {args.batch}, {runtime.device}, threads {report['threads']}")
    for name in names:
        print(f"  {name:6s} {1000 * one[name]:9.1f} ms/update  {one[name] / one['sgd']:.2f}x sgd")
    if args.ddp:
        two = ddp(args)
        report["ddp_seconds_per_update"] = two
        report["ddp_ratio"] = two["rwp"] / two["sgd"]
        print(f"  2-process DDP: sgd {1000 * two['sgd']:.1f} ms, rwp {1000 * two['rwp']:.1f} ms")
        print(f"  rwp-ddp / sgd-ddp = {report['ddp_ratio']:.2f}x")
    print(f"  ({time.perf_counter() - started:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
