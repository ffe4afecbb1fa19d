"""`yw-core bench weight-optimizer`: weight optimizers against SGD on one training protocol.

Every method trains the same model from the same initial weights on the same (label-noised)
data through `yw_core.train.fit`, once per seed. Reported: final test accuracy (mean ± std over
seeds), epochs and wall-clock time, and the time per update relative to SGD run the same way
(one process, or 2-process DDP for the "-ddp" rows). TWA follows its paper's "head" protocol:
it trains for a few epochs inside the span of SGD's checkpoints from the first `twa_head` of the
run, so its cost is those SGD epochs plus its own.

Why label noise on digits: clean digits is too easy to separate the methods (SGD ends at 98.4%
test accuracy); with 20% of the training labels replaced at random SGD memorises them and ends
several points below its own peak, which is where flat-minimum methods are meant to help.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

DDP_METHODS = ("rwp",)  # methods the bench also runs as 2-process DDP (their parallel mode)


class WeightBenchConfig(BaseModel):
    """Settings of one `bench weight-optimizer` run; recorded in results.json."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    methods: tuple[str, ...] | None = Field(
        None, description="weight optimizers; None = every installed one (sgd always runs)"
    )
    dataset: str = Field("digits", description="dataset name (yw_core.data)")
    arch: str = Field("digits-cnn", description="model architecture (yw_core.models)")
    batchnorm: bool = Field(True, description="digits-cnn with BatchNorm (as the papers' nets)")
    label_noise: float = Field(
        0.2, ge=0, lt=1, description="fraction of training labels replaced by random classes"
    )
    epochs: int = Field(40, ge=1, description="SGD epochs (every method makes SGD's updates)")
    batch_size: int = Field(64, ge=1, description="mini-batch size per process")
    lr: float = Field(
        0.1, gt=0, description="peak lr of the base SGD, cosine (0.1: the papers' CIFAR recipes)"
    )
    weight_decay: float = Field(5e-4, ge=0, description="SGD weight decay")
    seeds: tuple[int, ...] = Field((0, 1, 2), description="one run per seed")
    ddp: bool = Field(True, description="also run sgd and rwp as 2-process DDP (CPU: gloo)")
    twa_head: float = Field(
        0.5, gt=0, lt=1, description="TWA uses SGD's checkpoints from this fraction of epochs"
    )
    twa_epochs: int | None = Field(
        None, ge=1, description="TWA's own epochs; None = epochs/20 as the paper (10 of 200)"
    )
    twa_lr: float = Field(2.0, gt=0, description="TWA's projected-SGD lr (2: the paper's CIFAR)")
    device: str = Field("auto", description="cpu, cuda, mps or auto")
    threads: int | None = Field(None, ge=1, description="torch threads per process (None: torch's)")

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, value):
        if not value or any(s < 0 for s in value):
            raise ValueError(f"seeds must be non-negative integers, got {list(value)}")
        return tuple(value)

    @property
    def head_epochs(self) -> int:
        return max(1, round(self.twa_head * self.epochs))

    @property
    def twa_train_epochs(self) -> int:
        return self.twa_epochs or max(1, round(self.epochs / 20))


def noisy_train_data(config: WeightBenchConfig, seed: int):
    """The training split with `label_noise` of its labels redrawn uniformly (seeded)."""
    import torch
    from torch.utils.data import TensorDataset

    from yw_core.data import load_dataset

    x, y = load_dataset(config.dataset, "train", seed=seed).tensors
    classes = int(y.max()) + 1
    g = torch.Generator().manual_seed(10_000 + seed)
    flip = torch.rand(len(y), generator=g) < config.label_noise
    noisy = torch.where(flip, torch.randint(0, classes, (len(y),), generator=g), y)
    return TensorDataset(x, noisy), classes


def _model(config: WeightBenchConfig, classes: int, in_channels: int, seed: int):
    from yw_core.bench import seeded_model

    return seeded_model(config.arch, classes, in_channels, seed, config.batchnorm)


def train_one(config: WeightBenchConfig, name: str, cls, seed: int, runtime, progress: bool):
    """One method, one seed, in this process: the fit result plus what the report needs."""
    from yw_core.data import load_dataset
    from yw_core.train import TrainConfig, fit

    train, classes = noisy_train_data(config, seed)
    test = load_dataset(config.dataset, "test", seed=seed)
    model = _model(config, classes, train.tensors[0].shape[1], seed)
    epochs = config.epochs * (2 if runtime.is_distributed and name in DDP_METHODS else 1)
    train_config = TrainConfig(
        epochs=epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        keep_checkpoints=name == "sgd",
        progress=progress,
    )
    method = None if cls is None else cls()
    result = fit(model, train, runtime=runtime, method=method, config=train_config, eval_data=test)
    return result, train, test


def _twa_run(config, cls, seed, sgd, runtime, progress) -> dict[str, Any]:
    """TWA's head protocol on the SGD run of the same seed."""
    from yw_core.data import load_dataset
    from yw_core.train import TrainConfig, fit

    train, classes = noisy_train_data(config, seed)
    test = load_dataset(config.dataset, "test", seed=seed)
    head = config.head_epochs
    model = _model(config, classes, train.tensors[0].shape[1], seed)
    twa_config = TrainConfig(  # the ICLR CIFAR recipe: projected SGD, lr 2, wd 1e-5, steps
        epochs=config.twa_train_epochs,
        batch_size=config.batch_size,
        lr=config.twa_lr,
        weight_decay=1e-5,
        schedule="step",
        progress=progress,
    )
    result = fit(
        model,
        train,
        runtime=runtime,
        method=cls(),
        config=twa_config,
        eval_data=test,
        attach_kwargs={"checkpoints": sgd["checkpoints"][: head + 1], "bn_data": train},
    )
    row = _row(result)
    head_rows = sgd["history"][:head]
    row["history"] = head_rows + [
        {**r, "epoch": head + r["epoch"], "updates": head_rows[-1]["updates"] + r["updates"]}
        for r in row["history"]
    ]
    row["train_seconds"] += sum(r["seconds"] for r in head_rows)
    row["epochs"] = head + config.twa_train_epochs
    return row


def _row(result) -> dict[str, Any]:
    return {
        "final_accuracy": result.final_accuracy,
        "train_seconds": result.train_seconds + result.setup_seconds,
        "seconds_per_update": result.seconds_per_update,
        "updates": result.updates,
        "epochs": len(result.history),
        "history": result.history,
    }


def _ddp_run(config: WeightBenchConfig, name: str, seed: int, progress: bool) -> dict[str, Any]:
    """Run one method on 2 processes under torchrun (this module's `worker`); rank 0's row."""
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(
            json.dumps({"config": config.model_dump(mode="json"), "name": name, "seed": seed})
        )
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        proc = subprocess.run(
            [*cmd, "-m", "yw_core.bench_weights", str(job)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"2-process run of {name} failed:\n{proc.stderr[-4000:]}")
        return json.loads((Path(tmp) / "row.json").read_text())


def _worker(job_path: Path) -> None:
    """torchrun entry: one method on this rank; rank 0 writes row.json next to the job file."""
    import torch

    from yw_core.registry import Registry
    from yw_core.runtime import Runtime

    job = json.loads(job_path.read_text())
    config = WeightBenchConfig(**job["config"])
    torch.set_num_threads(1)
    cls = None
    if job["name"] != "sgd":
        cls = Registry.discover().load(job["name"], "weight_optimizer")
    with Runtime(device="cpu", seed=job["seed"], distributed=True) as runtime:
        result, _, _ = train_one(config, job["name"], cls, job["seed"], runtime, progress=False)
        if runtime.is_main:
            row = _row(result)
            row["world_size"] = runtime.world_size
            (job_path.parent / "row.json").write_text(json.dumps(row))


def select_methods(config: WeightBenchConfig, registry) -> dict[str, type | None]:
    """sgd plus the named (or all installed) weight optimizers; errors name the known ones."""
    from yw_core.bench import _resolve

    if config.methods is None:
        found = registry.load_all("weight_optimizer")
    else:
        wanted = [m for m in config.methods if m != "sgd"]
        found = _resolve(registry, wanted, "weight_optimizer", "method", extra=["sgd"])
    return {"sgd": None, **dict(sorted(found.items()))}


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    accs = [r["final_accuracy"] for r in runs]
    return {
        "accuracy_mean": statistics.fmean(accs),
        "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "train_seconds": statistics.fmean(r["train_seconds"] for r in runs),
        "seconds_per_update": statistics.fmean(r["seconds_per_update"] for r in runs),
        "epochs": runs[0]["epochs"],
        "updates": runs[0]["updates"],
    }


def run_weight_bench(
    config: WeightBenchConfig, out: Path | str, registry=None, progress: bool = True
) -> dict[str, Any]:
    """Run the protocol; write results.json, results.txt and two plots into `out`."""
    import torch
    from tqdm.auto import tqdm

    from yw_core import hooks
    from yw_core.bench import _versions, write_report
    from yw_core.registry import Registry
    from yw_core.runtime import Runtime

    registry = registry or Registry.discover()
    methods = select_methods(config, registry)
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(out)
    runtime = Runtime(device=config.device, seed=config.seeds[0], distributed=False)
    ddp = config.ddp and runtime.device.type == "cpu"
    names = [*methods]
    if ddp:
        names += [f"{n}-ddp" for n in ("sgd", *DDP_METHODS) if n in methods]
    pm = hooks.get_plugin_manager()
    run_info = {"config": config.model_dump(mode="json"), "out": str(out)}
    pm.hook.yw_bench_start(run=run_info)

    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    jobs = [(seed, name) for seed in config.seeds for name in names]
    sgd_runs: dict[int, dict[str, Any]] = {}
    started = time.perf_counter()
    for seed, name in tqdm(jobs, desc="bench weight-optimizer", disable=not progress):
        base = name.removesuffix("-ddp")
        seeded = Runtime(device=config.device, seed=seed, distributed=False)  # data order, RNG
        if name.endswith("-ddp"):
            row = _ddp_run(config, base, seed, progress=False)
        elif name == "twa":
            row = _twa_run(config, methods[name], seed, sgd_runs[seed], seeded, False)
        else:
            result, _, _ = train_one(config, name, methods[name], seed, seeded, progress=False)
            row = _row(result)
            if name == "sgd":
                sgd_runs[seed] = {"history": result.history, "checkpoints": result.checkpoints}
        row["seed"] = seed
        runs[name].append(row)

    results = {}
    for name in names:
        summary = _summary(runs[name])
        reference = "sgd-ddp" if name.endswith("-ddp") else "sgd"
        base_step = _summary(runs[reference])["seconds_per_update"]
        summary["step_ratio"] = summary["seconds_per_update"] / base_step
        cls = methods[name.removesuffix("-ddp")]
        method_config = {} if cls is None else cls().config.model_dump(mode="json")
        results[name] = {**summary, "config": method_config, "runs": runs[name]}
        pm.hook.yw_bench_result(run=run_info, method_name=name, metrics=results[name])
    report = {
        "manifest": {
            "protocol": "weight-optimizer",
            "versions": _versions(registry, {"weight_optimizer": methods}),
            "runtime": runtime.describe(),
            "head_epochs": config.head_epochs,
            "twa_epochs": config.twa_train_epochs,
            "wall_seconds": time.perf_counter() - started,
            "torch_threads": torch.get_num_threads(),
        },
        "config": config.model_dump(mode="json"),
        "results": results,
    }
    figures = {f"accuracy_vs_{x}.png": plot_accuracy(report, x) for x in ("epoch", "time")}
    write_report(report, out, format_table(report), figures)
    pm.hook.yw_bench_end(run=run_info, results=report)
    return report


def format_table(report: dict[str, Any]) -> str:
    """One row per method: accuracy mean ± std, epochs, time, time per update vs SGD."""
    from yw_core.bench import _columns

    cfg, m = report["config"], report["manifest"]
    rows = []
    for name, r in report["results"].items():
        rows.append(
            [
                name,
                "",
                f"{100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f}",
                str(r["epochs"]),
                f"{r['train_seconds']:.1f}",
                f"{1000 * r['seconds_per_update']:.2f}",
                f"{r['step_ratio']:.2f}x",
            ]
        )
    title = (
        f"bench weight-optimizer: {cfg['dataset']} ({cfg['arch']}), label noise "
        f"{cfg['label_noise']:.0%}, {cfg['epochs']} epochs, batch {cfg['batch_size']}, seeds "
        f"{','.join(map(str, cfg['seeds']))}, device={m['runtime']['device']}"
    )
    header = ["method", "", "test acc %", "epochs", "train s", "ms/update", "vs sgd"]
    note = (
        "test accuracy after the last epoch (mean ± std over seeds); -ddp rows: 2 processes, "
        "compared with sgd-ddp; twa: epochs = SGD head + its own"
    )
    return "\n".join([title, "", *_columns(header, rows), "", note]) + "\n"


def plot_accuracy(report: dict[str, Any], x_axis: str):
    """Mean test accuracy over seeds against epochs or cumulative training seconds."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    for i, (name, r) in enumerate(report["results"].items()):
        curves = [run["history"] for run in r["runs"]]
        n = min(len(c) for c in curves)
        acc = [
            100 * statistics.fmean(c[e]["test_acc"] for c in curves)
            for e in range(n)
            if all("test_acc" in c[e] for c in curves)
        ]
        if x_axis == "epoch":
            xs = [curves[0][e]["epoch"] for e in range(len(acc))]
            # DDP rows make twice the epochs of half the data: plot them per SGD epoch
            xs = [x / 2 for x in xs] if name in {f"{d}-ddp" for d in DDP_METHODS} else xs
        else:
            xs = [
                statistics.fmean(sum(row["seconds"] for row in c[: e + 1]) for c in curves)
                for e in range(len(acc))
            ]
        style = "--" if name.endswith("-ddp") else "-"
        ax.plot(xs, acc, style, color=f"C{i}", label=name)
    ax.set_xlabel("epoch" if x_axis == "epoch" else "training time (s)")
    ax.set_ylabel("test accuracy (%)")
    low = 100 * min(r["accuracy_mean"] for r in report["results"].values()) - 10
    ax.set_ylim(max(0, math.floor(low)), 100)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncols=2)
    cfg = report["config"]
    ax.set_title(f"{cfg['dataset']}, {cfg['label_noise']:.0%} label noise, {cfg['arch']}")
    return fig


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
