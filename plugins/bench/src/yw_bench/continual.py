"""`yw-core bench continual`: online continual learners on one stream, one pass, no task ids.

Per seed and setting, one stream over the train split: `class-il` (5 tasks of 2 classes, in
order) or `blurry` (i-Blurry-50-10: half the classes in one task each, the rest recurring, 10%
of their samples in other tasks; `Stream.blurry`). The learners are never told where tasks
start. Every installed continual learner starts from the same seeded model and SGD (lr 0.03,
momentum 0: LAS's online recipe) and observes every batch once; learners with a replay buffer
run at each buffer size, the replay batch as large as the stream's. After each task the model is
tested on the test images of the classes each task introduced: R[i][j] is the accuracy on task
j's new classes after task i. Reported, mean ± std over seeds: the final average accuracy (mean
of R's last row), forgetting (Chaudhry et al.), the share of test predictions that fall in the
last task's classes (the recency bias logit adjustment targets), and milliseconds per observed
batch.
"""

from __future__ import annotations

import statistics
from typing import Any, Literal

from pydantic import Field, field_validator

from yw_bench.common import distinct, installed_methods, load_splits, mean_std, summarise
from yw_core.bench import (
    Protocol,
    ProtocolConfig,
    Report,
    columns,
    configure,
    install_line,
    seeded_model,
)

SETTINGS = ("class-il", "blurry")
DEFAULT_ARCH = {"digits": "digits-cnn", "cifar10": "resnet18"}
SUMMARY_KEYS = ("average_accuracy", "forgetting", "last_task_share", "ms_per_batch")


class ContinualBenchConfig(ProtocolConfig):
    """Settings of one `bench continual` run; recorded in results.json."""

    methods: tuple[str, ...] | None = Field(
        None, description="continual learners; None = every installed one"
    )
    dataset: Literal["digits", "cifar10"] = Field(
        "digits", description="digits (embedded) or cifar10 (its files on disk)"
    )
    arch: str | None = Field(None, description="architecture; None: digits-cnn / resnet18")
    settings: tuple[Literal["class-il", "blurry"], ...] = Field(
        SETTINGS, description="class-il: disjoint tasks in order; blurry: classes recur"
    )
    tasks: int = Field(5, ge=2, description="tasks in the stream (5: 2 classes each)")
    buffer_sizes: tuple[int, ...] = Field(
        (50, 200), description="replay buffer sizes; each buffered learner runs at every one"
    )
    batch_size: int = Field(10, ge=1, description="stream batch size (= the replay batch)")
    lr: float = Field(0.03, gt=0, description="SGD learning rate (LAS's online recipe)")
    blurry_disjoint: float = Field(
        0.5, ge=0, le=1, description="blurry: share of classes that appear in one task only"
    )
    blurry_share: float = Field(
        0.1, ge=0, lt=1, description="blurry: share of a recurring class's samples moved"
    )
    seeds: tuple[int, ...] = Field((0, 1, 2), description="one stream and model per seed")
    overrides: dict[str, dict[str, Any]] = Field(
        {}, description="per-method Config overrides, NAME.FIELD=VALUE"
    )

    @field_validator("seeds", "settings", "buffer_sizes")
    @classmethod
    def _distinct(cls, value, info):
        minimum = {"seeds": 0, "buffer_sizes": 1}.get(info.field_name)
        return distinct(info.field_name, value, minimum)

    @property
    def model_arch(self) -> str:
        return self.arch or DEFAULT_ARCH[self.dataset]


def load_data(config: ContinualBenchConfig):
    """(train, test, classes): TensorDatasets and the class count; a ValueError naming missing
    files or a bad task count."""
    train, test, classes = load_splits(config.dataset, config.seeds[0])
    if classes % config.tasks:
        raise ValueError(f"tasks={config.tasks} must divide the {classes} classes of the data set")
    return train, test, classes


def make_stream(config: ContinualBenchConfig, setting: str, train, seed: int):
    """The stream of a setting, without task ids."""
    from yw_core.interfaces import Stream

    x, y = train.tensors
    if setting == "class-il":
        return Stream.from_tensors(
            x, y, batch_size=config.batch_size, tasks=config.tasks, task_ids=False, seed=seed
        )
    return Stream.blurry(
        x,
        y,
        tasks=config.tasks,
        disjoint=config.blurry_disjoint,
        blurry=config.blurry_share,
        batch_size=config.batch_size,
        seed=seed,
    )


def task_classes(stream) -> list[list[int]]:
    """The classes each task introduces: those first seen in its batches."""
    seen: set[int] = set()
    groups = []
    ends = [*stream.task_starts[1:], len(stream)]
    for start, end in zip(stream.task_starts, ends, strict=True):
        new = []
        for batch in stream.batches[start:end]:
            for c in batch.y.unique().tolist():
                if c not in seen:
                    seen.add(c)
                    new.append(c)
        groups.append(sorted(new))
    return groups


def run_one(learner, stream, test, groups, runtime) -> dict[str, Any]:
    """Observe the stream once; test after each task. Returns R, timings and the last-task share."""
    import time

    import torch

    x_test, y_test = test.tensors
    ends = {end - 1: i for i, end in enumerate([*stream.task_starts[1:], len(stream)])}
    matrix: list[list[float]] = []
    seconds, losses = 0.0, []
    predictions = None
    for step, batch in enumerate(stream):
        t0 = time.perf_counter()
        losses.append(learner.observe(batch))
        seconds += time.perf_counter() - t0
        if step in ends:
            with torch.no_grad():
                logits = torch.cat(
                    [
                        learner.predict(runtime.to(x_test[i : i + 512])).cpu()
                        for i in range(0, len(x_test), 512)
                    ]
                )
            predictions = logits.argmax(1)
            row = []
            for group in groups:
                mask = torch.isin(y_test, torch.tensor(group, dtype=y_test.dtype))
                row.append(
                    100 * float((predictions[mask] == y_test[mask]).float().mean())
                    if mask.any()
                    else 0.0
                )
            matrix.append(row)
    last = torch.tensor(groups[-1], dtype=predictions.dtype)
    return {
        "matrix": matrix,
        "ms_per_batch": 1000 * seconds / len(stream),
        "last_task_share": 100 * float(torch.isin(predictions, last).float().mean()),
        "final_loss": losses[-1],
    }


class ContinualBench(Protocol):
    """Installed continual learners on one-pass streams: accuracy, forgetting, time per batch."""

    name = "continual"
    summary = "online continual learners: final accuracy, forgetting, recency bias, ms/batch"
    Config = ContinualBenchConfig
    presets = {"paper": {"seeds": (0, 1, 2, 3, 4), "buffer_sizes": (100, 500)}}

    def runtime_seed(self, config: ContinualBenchConfig) -> int:
        return config.seeds[0]

    def run(self, config: ContinualBenchConfig, *, runtime, progress: bool) -> Report:
        import torch
        from tqdm.auto import tqdm

        from yw_core import metrics
        from yw_core.runtime import Runtime

        methods = installed_methods(
            self,
            "continual_learner",
            config,
            missing="no continual learner installed; bench continual compares the installed "
            "ones (entry-point group yw.continual_learners): "
            + install_line("yw-plugin-las", "yw-plugin-baselines"),
        )
        train, test, classes = load_data(config)
        rows = [
            (name, size)
            for name, cls in methods.items()
            for size in (
                config.buffer_sizes if "buffer_size" in cls.Config.model_fields else (None,)
            )
        ]
        runs: dict[str, dict[str, list]] = {s: {} for s in config.settings}
        jobs = [(seed, s, row) for seed in config.seeds for s in config.settings for row in rows]
        bar = tqdm(total=len(jobs), desc="bench continual", disable=not progress)
        for seed in config.seeds:
            seeded = Runtime(device=config.device, seed=seed, distributed=False)
            for setting in config.settings:
                stream = make_stream(config, setting, train, seed)
                groups = task_classes(stream)
                for name, size in rows:
                    label = name if size is None else f"{name}@{size}"
                    bar.set_postfix_str(f"seed {seed} {setting} {label}")
                    settings = {"buffer_size": size, "minibatch_size": config.batch_size}
                    if size is None:
                        settings.pop("buffer_size")
                    learner = configure(
                        methods[name],
                        {**settings, "progress": False},
                        optional=("progress", "buffer_size", "minibatch_size"),
                        overrides=config.overrides.get(name),
                    )
                    seeded.seed_everything()
                    model = seeded.to(
                        seeded_model(config.model_arch, classes, train.tensors[0].shape[1], seed)
                    ).train()
                    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
                    learner.setup(model, optimizer, num_classes=classes, runtime=seeded)
                    result = run_one(learner, stream, test, groups, seeded)
                    r = result["matrix"]
                    result.update(
                        seed=seed,
                        buffer_size=size,
                        average_accuracy=metrics.average_accuracy(r),
                        forgetting=metrics.forgetting(r),
                    )
                    runs[setting].setdefault(label, []).append(result)
                    bar.update()
        bar.close()

        results: dict[str, Any] = {s: {} for s in runs}
        for setting, by_row in runs.items():
            for label, rs in by_row.items():
                entry: dict[str, Any] = {
                    "method": label.split("@")[0],
                    "buffer_size": rs[0]["buffer_size"],
                    **summarise(rs, SUMMARY_KEYS),
                    "runs": rs,
                }
                results[setting][label] = entry
                self.result(f"{setting}/{label}", entry)
        facts = {
            "arch": config.model_arch,
            "classes": classes,
            "train": len(train),
            "test": len(test),
        }
        return Report(results=results, manifest=facts)

    def format_table(self, report: dict[str, Any]) -> str:
        """Per setting: one row per method and buffer size, mean ± std over seeds."""
        cfg, m = report["config"], report["manifest"]
        preset = f", preset {m['preset']}" if m.get("preset") else ""
        title = (
            f"bench continual: {cfg['dataset']} ({m['arch']}), {cfg['tasks']} tasks, one pass, "
            f"batch {cfg['batch_size']} + replay {cfg['batch_size']}, SGD lr {cfg['lr']:g}, seeds "
            f"{','.join(map(str, cfg['seeds']))}, device={m['runtime']['device']}{preset}"
        )
        header = ["method", "buffer", "final acc", "forgetting", "last-task share", "ms/batch"]
        blocks = [title]
        for setting, by_row in report["results"].items():
            rows = [
                [
                    r["method"],
                    "-" if r["buffer_size"] is None else str(r["buffer_size"]),
                    mean_std(r, "average_accuracy"),
                    mean_std(r, "forgetting"),
                    mean_std(r, "last_task_share"),
                    mean_std(r, "ms_per_batch", 2),
                ]
                for r in by_row.values()
            ]
            blocks += ["", f"{setting}:", *columns(header, rows)]
        notes = [
            "",
            "percent, mean ± std over seeds; final acc: mean over tasks of the test accuracy on "
            "each task's new classes after the stream (class-IL); forgetting: Chaudhry et al.; "
            "last-task share: test predictions in the classes the last task introduced (unbiased: "
            "their share of the test set, about 20% in class-il, 10% in blurry)",
        ]
        return "\n".join(blocks + notes) + "\n"

    def figures(self, report: dict[str, Any]) -> dict[str, Any]:
        return {"accuracy_over_stream.png": plot_accuracy_over_stream(report)}


def plot_accuracy_over_stream(report: dict[str, Any]):
    """Mean accuracy on the classes seen so far after each task, one panel per setting."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    colours = colormaps["tab20"]  # up to 20 rows (method x buffer size) stay apart
    settings = list(report["results"])
    fig = Figure(figsize=(5.2 * len(settings), 4.0), layout="constrained")
    axes = fig.subplots(1, len(settings), squeeze=False).ravel()
    for ax, setting in zip(axes, settings, strict=True):
        for i, (label, r) in enumerate(report["results"][setting].items()):
            curves = [
                [statistics.fmean(row[: t + 1]) for t, row in enumerate(run["matrix"])]
                for run in r["runs"]
            ]
            mean = [statistics.fmean(c[t] for c in curves) for t in range(len(curves[0]))]
            ax.plot(range(1, len(mean) + 1), mean, "o-", color=colours(i % 20), label=label)
            ax.set_xticks(range(1, len(mean) + 1))
        ax.set_xlabel("task")
        ax.set_ylabel("accuracy on the tasks seen so far (%)")
        ax.set_title(f"{report['config']['dataset']}, {setting}")
        ax.set_ylim(0, 100)
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, ncols=2)
        else:
            ax.text(0.5, 0.5, "no learner ran", ha="center", transform=ax.transAxes)
    return fig
