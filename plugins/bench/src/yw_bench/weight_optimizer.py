"""`yw-core bench weight-optimizer`: weight optimizers against SGD on one training protocol.

Every method trains the same model from the same initial weights on the same (label-noised)
data through `yw_core.train.fit`, once per seed, with the recipe it asks for
(`WeightOptimizer.train_config` of the protocol's SGD recipe). Reported: final test accuracy
(mean ± std over seeds), epochs and wall-clock time, and the time per update relative to SGD run
the same way (one process, or 2-process DDP for the "-ddp" rows). A method that trains from a
base run's checkpoints (`WeightOptimizer.base_run()`, e.g. TWA's head stage) gets those of the
SGD run of the same seed, and its cost counts those SGD epochs plus its own.

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
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from yw_core.bench import Protocol, ProtocolConfig, Report, columns, configure, seeded_model, select
from yw_core.bench.methods import check_overrides


class WeightBenchConfig(ProtocolConfig):
    """Settings of one `bench weight-optimizer` run; recorded in results.json."""

    methods: tuple[str, ...] | None = Field(
        None, description="weight optimizers; None = every installed one (sgd always runs)"
    )
    dataset: str = Field("digits", description="dataset name (yw_core.data)")
    arch: str = Field("digits-cnn", description="model architecture (yw_core.models)")
    batchnorm: bool = Field(True, description="digits-cnn with BatchNorm (as the papers' nets)")
    norm_embedding: bool = Field(
        True,
        description="digits-cnn's embedding Linear → BatchNorm1d → ReLU too, as the papers' "
        "nets end in BatchNorm + ReLU (off: the unnormalised embedding of earlier releases)",
    )
    label_noise: float = Field(
        0.2, ge=0, lt=1, description="fraction of training labels replaced by random classes"
    )
    epochs: int = Field(10, ge=1, description="SGD epochs (every method makes SGD's updates)")
    batch_size: int = Field(64, ge=1, description="mini-batch size per process")
    lr: float = Field(
        0.1, gt=0, description="peak lr of the base SGD, cosine (0.1: the papers' CIFAR recipes)"
    )
    weight_decay: float = Field(5e-4, ge=0, description="SGD weight decay")
    seeds: tuple[int, ...] = Field((0,), description="one run per seed")
    ddp: tuple[str, ...] = Field(
        (),
        description="methods also run as 2-process DDP on CPU (gloo), each declaring "
        "capabilities.distributed; sgd-ddp runs beside them",
    )
    threads: int | None = Field(None, ge=1, description="torch threads per process (None: torch's)")
    overrides: dict[str, dict[str, Any]] = Field(
        {}, description="per-method Config overrides, NAME.FIELD=VALUE"
    )

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, value):
        if not value or any(s < 0 for s in value):
            raise ValueError(f"seeds must be non-negative integers, got {list(value)}")
        return tuple(value)


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


def base_recipe(config: WeightBenchConfig, progress: bool, keep_checkpoints: bool = False):
    """The protocol's SGD recipe: what `sgd` trains with and each method's starting point."""
    from yw_core.train import TrainConfig

    return TrainConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        keep_checkpoints=keep_checkpoints,
        progress=progress,
    )


def make_method(config: WeightBenchConfig, name: str, cls):
    return None if cls is None else configure(cls, {}, overrides=config.overrides.get(name))


def fresh_model(config: WeightBenchConfig, train, classes: int, seed: int):
    """The seed's initial network, the same for every method of the run."""
    channels = train.tensors[0].shape[1]
    return seeded_model(
        config.arch, classes, channels, seed, config.batchnorm, config.norm_embedding
    )


def train_one(config: WeightBenchConfig, name: str, cls, seed: int, runtime, progress: bool):
    """One method (None: SGD), one seed, in this process, from scratch; the fit result."""
    from yw_core.data import load_dataset
    from yw_core.train import fit

    train, classes = noisy_train_data(config, seed)
    test = load_dataset(config.dataset, "test", seed=seed)
    model = fresh_model(config, train, classes, seed)
    method = make_method(config, name, cls)
    recipe = base_recipe(config, progress, keep_checkpoints=cls is None)
    if method is not None:
        recipe = method.train_config(recipe, runtime=runtime)
    return fit(model, train, runtime=runtime, method=method, config=recipe, eval_data=test)


def train_from_base(config, name, cls, seed, sgd, runtime, progress) -> dict[str, Any]:
    """A method that trains from the checkpoints of the first part of SGD's run (TWA's head
    stage); its row counts those SGD epochs and its own."""
    from yw_core.data import load_dataset
    from yw_core.train import fit

    train, classes = noisy_train_data(config, seed)
    test = load_dataset(config.dataset, "test", seed=seed)
    method = make_method(config, name, cls)
    head = max(1, round(method.base_run() * config.epochs))
    model = fresh_model(config, train, classes, seed)
    result = fit(
        model,
        train,
        runtime=runtime,
        method=method,
        config=method.train_config(base_recipe(config, progress), runtime=runtime),
        eval_data=test,
        attach_kwargs={"checkpoints": sgd["checkpoints"][: head + 1], "bn_data": train},
    )
    row = summary_row(result)
    head_rows = sgd["history"][:head]
    row["history"] = head_rows + [
        {**r, "epoch": head + r["epoch"], "updates": head_rows[-1]["updates"] + r["updates"]}
        for r in row["history"]
    ]
    row["train_seconds"] += sum(r["seconds"] for r in head_rows)
    row["epochs"] = head + len(result.history)
    row["base_epochs"] = head
    return row


def summary_row(result) -> dict[str, Any]:
    return {
        "final_accuracy": result.final_accuracy,
        "train_seconds": result.train_seconds + result.setup_seconds,
        "seconds_per_update": result.seconds_per_update,
        "updates": result.updates,
        "epochs": len(result.history),
        "history": result.history,
    }


def ddp_run(config: WeightBenchConfig, name: str, seed: int) -> dict[str, Any]:
    """Run one method on 2 processes under torchrun (this module's `worker`); rank 0's row."""
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(
            json.dumps({"config": config.model_dump(mode="json"), "name": name, "seed": seed})
        )
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        proc = subprocess.run(
            [*cmd, "-m", "yw_bench.weight_optimizer", str(job)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"2-process run of {name} failed:\n{proc.stderr[-4000:]}")
        return json.loads((Path(tmp) / "row.json").read_text())


def worker(job_path: Path) -> None:
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
        result = train_one(config, job["name"], cls, job["seed"], runtime, progress=False)
        if runtime.is_main:
            row = summary_row(result)
            row["world_size"] = runtime.world_size
            (job_path.parent / "row.json").write_text(json.dumps(row))


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    accs = [r["final_accuracy"] for r in runs]
    return {
        "accuracy_mean": statistics.fmean(accs),
        "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "train_seconds": statistics.fmean(r["train_seconds"] for r in runs),
        "seconds_per_update": statistics.fmean(r["seconds_per_update"] for r in runs),
        "epochs": runs[0]["epochs"],
        "updates": runs[0]["updates"],
    }


class WeightOptimizerBench(Protocol):
    """Weight optimizers against SGD: accuracy over seeds and time per update."""

    name = "weight-optimizer"
    summary = "weight optimizers against SGD on one training protocol (accuracy, time/update)"
    Config = WeightBenchConfig
    presets = {"paper": {"epochs": 40, "seeds": (0, 1, 2), "ddp": ("rwp",)}}

    def runtime_seed(self, config: WeightBenchConfig) -> int:
        return config.seeds[0]

    def run(self, config: WeightBenchConfig, *, runtime, progress: bool) -> Report:
        import torch
        from tqdm.auto import tqdm

        from yw_core.runtime import Runtime

        names = None if config.methods is None else [m for m in config.methods if m != "sgd"]
        found = select(self, "weight_optimizer", names, builtin=["sgd"])
        methods: dict[str, type | None] = {"sgd": None, **dict(sorted(found.items()))}
        check_overrides(config.overrides, methods)
        missing = [n for n in config.ddp if n not in methods]
        if missing:
            raise ValueError(f"ddp names {', '.join(missing)}, not among the methods of the run")
        serial = [
            n for n in config.ddp if methods[n] is None or not methods[n].capabilities.distributed
        ]
        if serial:
            raise ValueError(f"{', '.join(serial)}: no distributed mode (capabilities)")
        if config.threads:
            torch.set_num_threads(config.threads)
        names = [*methods]
        if config.ddp and runtime.device.type == "cpu":
            names += ["sgd-ddp", *(f"{n}-ddp" for n in methods if n in config.ddp)]

        runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        jobs = [(seed, name) for seed in config.seeds for name in names]
        sgd_runs: dict[int, dict[str, Any]] = {}
        for seed, name in tqdm(jobs, desc="bench weight-optimizer", disable=not progress):
            base = name.removesuffix("-ddp")
            cls = methods[base]
            seeded = Runtime(device=config.device, seed=seed, distributed=False)  # data order, RNG
            if name.endswith("-ddp"):
                row = ddp_run(config, base, seed)
            elif cls is not None and make_method(config, name, cls).base_run() is not None:
                row = train_from_base(config, name, cls, seed, sgd_runs[seed], seeded, False)
            else:
                result = train_one(config, name, cls, seed, seeded, progress=False)
                row = summary_row(result)
                if name == "sgd":
                    sgd_runs[seed] = {"history": result.history, "checkpoints": result.checkpoints}
            row["seed"] = seed
            runs[name].append(row)

        results = {}
        for name in names:
            summary = summarise(runs[name])
            reference = "sgd-ddp" if name.endswith("-ddp") else "sgd"
            base_step = summarise(runs[reference])["seconds_per_update"]
            summary["step_ratio"] = summary["seconds_per_update"] / base_step
            base = name.removesuffix("-ddp")
            method = make_method(config, base, methods[base])
            summary["config"] = {} if method is None else method.config.model_dump(mode="json")
            results[name] = {**summary, "runs": runs[name]}
            self.result(name, results[name])
        return Report(results=results, manifest={"torch_threads": torch.get_num_threads()})

    def format_table(self, report: dict[str, Any]) -> str:
        """One row per method: accuracy mean ± std, epochs, time, time per update vs SGD."""
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
        preset = f", preset {m['preset']}" if m.get("preset") else ""
        title = (
            f"bench weight-optimizer: {cfg['dataset']} ({cfg['arch']}), label noise "
            f"{cfg['label_noise']:.0%}, {cfg['epochs']} epochs, batch {cfg['batch_size']}, seeds "
            f"{','.join(map(str, cfg['seeds']))}, device={m['runtime']['device']}{preset}"
        )
        header = ["method", "", "test acc %", "epochs", "train s", "ms/update", "vs sgd"]
        note = (
            "test accuracy after the last epoch (mean ± std over seeds); -ddp rows: 2 processes, "
            "compared with sgd-ddp; methods trained from SGD's checkpoints: epochs = SGD's "
            "part + their own"
        )
        return "\n".join([title, "", *columns(header, rows), "", note]) + "\n"

    def figures(self, report: dict[str, Any]) -> dict[str, Any]:
        return {f"accuracy_vs_{x}.png": plot_accuracy(report, x) for x in ("epoch", "time")}


def plot_accuracy(report: dict[str, Any], x_axis: str):
    """Mean test accuracy over seeds against epochs or cumulative training seconds."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    sgd_epochs = report["config"]["epochs"]
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
            if name.endswith("-ddp"):  # a DDP row may pass more often over half the data
                xs = [x * sgd_epochs / len(curves[0]) for x in xs]
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
    worker(Path(sys.argv[1]))
