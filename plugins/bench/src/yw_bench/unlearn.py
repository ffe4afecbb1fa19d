"""`yw-core bench unlearn`: unlearners against retraining, random-sample and class-wise forgetting.

Per seed, one classifier is trained on the whole train split (the "original": on digits a
`digits-cnn`, 20 epochs of SGD lr 0.1, batch 64, through `yw_core.train.fit`). Two standard
settings pick the forget set: `random` (a seeded 10% of the train split) and `class` (every train
image of one class, 3 by default). Every installed unlearner starts from a copy of the original;
remaining-data-free ones (MU-Mis) get no retain set. `retrain` (yw-plugin-baselines) trains from
scratch on the retain set with the original's recipe and is the reference of every gap.

Reported per setting and method, mean ± std over seeds: RA, FA, TA (accuracy on retain, forget
and test; class-wise, the test split without the forgotten class), MIA-Efficacy (the SVC attack on
the confidence p_y, retain against test, the share of the forget set called non-member; Jia et al.
2023) and the entropy attack's mean forget-set membership (SSD), the gaps to Retrain of the same
seed, Avg.Gap over RA, FA, TA and MIA-Efficacy (SalUn), the MU-Mis paper's gap over RA, FA and TA,
and the run time (RTE) in seconds and as a share of Retrain's.
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

SETTINGS = ("random", "class")
DEFAULT_ARCH = {"digits": "digits-cnn", "cifar10": "resnet18"}
METRICS = ("ra", "fa", "ta", "mia", "entropy_mia")
GAP_KEYS = ("ra", "fa", "ta", "mia")  # SalUn's Avg.Gap (|ΔUA| = |ΔFA|)
PAPER_GAP_KEYS = ("ra", "fa", "ta")  # MU-Mis's Avg.Gap leaves MIA out (spec §1.4)
REFERENCE = "retrain"


class UnlearnBenchConfig(ProtocolConfig):
    """Settings of one `bench unlearn` run; recorded in results.json."""

    methods: tuple[str, ...] | None = Field(
        None, description="unlearners; None = every installed one (retrain is the reference)"
    )
    dataset: Literal["digits", "cifar10"] = Field(
        "digits", description="digits (embedded) or cifar10 (its files on disk)"
    )
    arch: str | None = Field(None, description="architecture; None: digits-cnn / resnet18")
    settings: tuple[Literal["random", "class"], ...] = Field(
        SETTINGS, description="random: a random share of the train split; class: one class"
    )
    forget_fraction: float = Field(
        0.1, gt=0, lt=1, description="random setting: the share of the train split to forget"
    )
    forget_class: int = Field(3, ge=0, description="class setting: the class to forget")
    seeds: tuple[int, ...] = Field((0, 1, 2), description="one original model and run per seed")
    epochs: int = Field(20, ge=1, description="training epochs of the original and of retrain")
    lr: float = Field(0.1, gt=0, description="SGD learning rate of the original and of retrain")
    batch_size: int = Field(64, ge=1, description="batch size of the original and of retrain")
    overrides: dict[str, dict[str, Any]] = Field(
        {}, description="per-method Config overrides, NAME.FIELD=VALUE"
    )

    @field_validator("seeds", "settings")
    @classmethod
    def _distinct(cls, value, info):
        minimum = {"seeds": 0, "buffer_sizes": 1}.get(info.field_name)
        return distinct(info.field_name, value, minimum)

    @property
    def model_arch(self) -> str:
        return self.arch or DEFAULT_ARCH[self.dataset]


def load_data(config: UnlearnBenchConfig):
    """(train, test, classes): TensorDatasets and the class count; a ValueError naming missing
    files or a bad forget class."""
    train, test, classes = load_splits(config.dataset, config.seeds[0])
    if "class" in config.settings and config.forget_class >= classes:
        raise ValueError(
            f"forget_class {config.forget_class} is not a class of {config.dataset} "
            f"(0..{classes - 1})"
        )
    return train, test, classes


def split(config: UnlearnBenchConfig, setting: str, train, test, seed: int):
    """(forget, retain, test) of a setting: TensorDatasets, in the train split's order."""
    import torch
    from torch.utils.data import TensorDataset

    x, y = train.tensors
    if setting == "class":
        gone = y == config.forget_class
        tx, ty = test.tensors
        test = TensorDataset(tx[ty != config.forget_class], ty[ty != config.forget_class])
    else:
        count = max(1, round(config.forget_fraction * len(y)))
        chosen = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:count]
        gone = torch.zeros(len(y), dtype=torch.bool)
        gone[chosen] = True
    return TensorDataset(x[gone], y[gone]), TensorDataset(x[~gone], y[~gone]), test


def train_original(config: UnlearnBenchConfig, train, runtime, classes: int):
    """The model every unlearner starts from, trained on the whole train split, in eval mode."""
    from yw_core.train import TrainConfig, fit

    runtime.seed_everything()
    model = seeded_model(config.model_arch, classes, train.tensors[0].shape[1], runtime.seed)
    recipe = TrainConfig(
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, progress=False
    )
    return runtime.to(fit(model, train, runtime=runtime, config=recipe).model).eval()


def probabilities(model, data, runtime, batch_size: int = 512):
    """Softmax probabilities (N, C) of `model` on a TensorDataset, on the CPU."""
    import torch

    x = data.tensors[0]
    with torch.no_grad():
        parts = [
            model(runtime.to(x[i : i + batch_size])).float().softmax(1).cpu()
            for i in range(0, len(x), batch_size)
        ]
    return torch.cat(parts)


def evaluate(model, forget, retain, test, runtime) -> dict[str, float]:
    """RA, FA, TA, MIA-Efficacy and entropy MIA of one model, in percent."""
    from yw_core import metrics

    probs = {name: probabilities(model, d, runtime) for name, d in _sets(forget, retain, test)}
    labels = {name: d.tensors[1] for name, d in _sets(forget, retain, test)}
    acc = {k: float((probs[k].argmax(1) == labels[k]).float().mean()) for k in probs}
    mia = metrics.mia_efficacy(
        probs["retain"],
        labels["retain"],
        probs["test"],
        labels["test"],
        probs["forget"],
        labels["forget"],
    )
    entropy = metrics.entropy_mia(probs["retain"], probs["test"], probs["forget"])
    values = {"ra": acc["retain"], "fa": acc["forget"], "ta": acc["test"]}
    return {k: 100 * v for k, v in {**values, "mia": mia, "entropy_mia": entropy}.items()}


def _sets(forget, retain, test):
    return (("forget", forget), ("retain", retain), ("test", test))


def fingerprint(model) -> float:
    """A cheap checksum of a model's parameters and buffers, to catch in-place changes."""
    import torch

    with torch.no_grad():
        return float(
            sum(t.double().sum() for t in model.state_dict().values() if t.is_floating_point())
        )


class UnlearnBench(Protocol):
    """Installed unlearners against retraining: accuracy, MIA, gaps to Retrain and run time."""

    name = "unlearn"
    summary = "unlearners against retraining: RA, FA, TA, MIA, Avg.Gap, run time (RTE)"
    Config = UnlearnBenchConfig
    presets = {"paper": {"seeds": (0, 1, 2, 3, 4), "epochs": 40}}

    def runtime_seed(self, config: UnlearnBenchConfig) -> int:
        return config.seeds[0]

    def run(self, config: UnlearnBenchConfig, *, runtime, progress: bool) -> Report:
        import time

        from tqdm.auto import tqdm

        from yw_core.runtime import Runtime

        methods = installed_methods(
            self,
            "unlearner",
            config,
            missing="no unlearner installed; bench unlearn compares the installed unlearners "
            "(entry-point group yw.unlearners): "
            + install_line("yw-plugin-mumis", "yw-plugin-baselines"),
            first=REFERENCE,
            where=lambda cls: getattr(cls, "model_kind", "classifier") == "classifier",
            why="unlearns diffusion models, not classifiers: run it with yw-core bench erase",
        )
        train, test, classes = load_data(config)
        recipe = {
            "progress": False,
            "train_epochs": config.epochs,
            "train_lr": config.lr,
            "train_batch_size": config.batch_size,
        }
        optional = tuple(recipe)

        runs: dict[str, dict[str, list]] = {s: {"original": []} for s in config.settings}
        for s in config.settings:
            runs[s].update({name: [] for name in methods})
        sizes: dict[str, dict[str, int]] = {}
        jobs = [
            (seed, s, name) for seed in config.seeds for s in config.settings for name in methods
        ]
        bar = tqdm(total=len(jobs), desc="bench unlearn", disable=not progress)
        for seed in config.seeds:
            seeded = Runtime(device=config.device, seed=seed, distributed=False)
            t0 = time.perf_counter()
            original = train_original(config, train, seeded, classes)
            train_seconds = time.perf_counter() - t0
            before = fingerprint(original)
            for setting in config.settings:
                forget, retain, held_out = split(config, setting, train, test, seed)
                sizes[setting] = {
                    "forget": len(forget),
                    "retain": len(retain),
                    "test": len(held_out),
                }
                row = evaluate(original, forget, retain, held_out, seeded)
                runs[setting]["original"].append({**row, "seconds": train_seconds, "seed": seed})
                for name, cls in methods.items():
                    bar.set_postfix_str(f"seed {seed} {setting} {name}")
                    method = configure(
                        cls, recipe, optional=optional, overrides=config.overrides.get(name)
                    )
                    seeded.seed_everything()
                    with seeded.timer() as took:
                        out = method.unlearn(
                            original,
                            forget,
                            None if cls.remaining_data_free else retain,
                            runtime=seeded,
                        )
                    if fingerprint(original) != before:
                        raise ValueError(f"{name}: unlearn() changed the caller's model in place")
                    row = evaluate(out.eval(), forget, retain, held_out, seeded)
                    extra = (
                        {"stopped_by": method.stopped_by} if hasattr(method, "stopped_by") else {}
                    )
                    runs[setting][name].append(
                        {**row, "seconds": took.seconds, "seed": seed, **extra}
                    )
                    bar.update()
        bar.close()

        results: dict[str, Any] = {}
        for setting, by_method in runs.items():
            reference = by_method.get(REFERENCE)
            for name, rows in by_method.items():
                for i, r in enumerate(rows):
                    if reference:
                        ref = reference[i]
                        for k in GAP_KEYS:
                            r[f"gap_{k}"] = abs(r[k] - ref[k])
                        r["avg_gap"] = statistics.fmean(r[f"gap_{k}"] for k in GAP_KEYS)
                        r["paper_gap"] = statistics.fmean(r[f"gap_{k}"] for k in PAPER_GAP_KEYS)
                        if name != "original":
                            r["rte_ratio"] = r["seconds"] / ref["seconds"]
                entry = {**summarise(rows), "runs": rows}
                if name in methods:
                    entry["config"] = configure(
                        methods[name],
                        recipe,
                        optional=optional,
                        overrides=config.overrides.get(name),
                    ).config.model_dump(mode="json")
                    entry["remaining_data_free"] = bool(methods[name].remaining_data_free)
                results.setdefault(setting, {})[name] = entry
                self.result(f"{setting}/{name}", entry)
        facts = {
            "arch": config.model_arch,
            "classes": classes,
            "train": len(train),
            "sizes": sizes,
            "reference": REFERENCE if REFERENCE in methods else None,
        }
        return Report(results=results, manifest=facts)

    def format_table(self, report: dict[str, Any]) -> str:
        """Per setting: one row per method, mean ± std over seeds, then the notes."""
        cfg, m = report["config"], report["manifest"]
        preset = f", preset {m['preset']}" if m.get("preset") else ""
        title = (
            f"bench unlearn: {cfg['dataset']} ({m['arch']}, {cfg['epochs']} epochs, SGD lr "
            f"{cfg['lr']:g}, batch {cfg['batch_size']}), {m['train']} train images, seeds "
            f"{','.join(map(str, cfg['seeds']))}, device={m['runtime']['device']}{preset}"
        )
        header = [
            "method",
            "RA",
            "FA",
            "TA",
            "MIA",
            "ent.MIA",
            "Avg.Gap",
            "gap3",
            "RTE s",
            "vs retrain",
        ]
        blocks = [title]
        for setting, by_method in report["results"].items():
            sizes = m["sizes"][setting]
            what = (
                f"random {cfg['forget_fraction']:.0%} of the train split"
                if setting == "random"
                else f"class {cfg['forget_class']}"
            )
            blocks += [
                "",
                f"{setting}: forget {what} ({sizes['forget']} images), retain {sizes['retain']}, "
                f"test {sizes['test']}",
            ]
            rows = []
            for name, r in by_method.items():
                mark = " *" if r.get("remaining_data_free") else ""
                rows.append(
                    [name + mark]
                    + [mean_std(r, k) for k in METRICS]
                    + [mean_std(r, "avg_gap"), mean_std(r, "paper_gap"), mean_std(r, "seconds", 2)]
                    + ([f"{r['rte_ratio']:.2f}x"] if "rte_ratio" in r else ["-"])
                )
            blocks += columns(header, rows)
        notes = [
            "",
            "percent, mean ± std over seeds; RA/FA/TA: accuracy on retain, forget, test (class "
            "setting: test without the forgotten class); MIA: MIA-Efficacy, the share of the "
            "forget set the confidence SVC attack calls non-member (higher = more forgotten); "
            "ent.MIA: the entropy attack's forget-set membership (lower = more forgotten)",
            "Avg.Gap: mean |Δ| to retrain (same seed) over RA, FA, TA, MIA (SalUn); gap3: over RA, "
            "FA, TA (the MU-Mis paper's); RTE s: unlearning seconds (original: its training); "
            "* = remaining-data-free (given no retain set)",
        ]
        if m.get("reference") is None:
            notes.append("no retrain row: install yw-plugin-baselines for the reference and gaps")
        return "\n".join(blocks + notes) + "\n"

    def figures(self, report: dict[str, Any]) -> dict[str, Any]:
        return {"gap_vs_time.png": plot_gap_vs_time(report)}


def plot_gap_vs_time(report: dict[str, Any]):
    """Avg.Gap to retrain against unlearning seconds, one panel per setting (lower left is best)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    settings = list(report["results"])
    fig = Figure(figsize=(5.2 * len(settings), 4.0), layout="constrained")
    axes = fig.subplots(1, len(settings), squeeze=False).ravel()
    for ax, setting in zip(axes, settings, strict=True):
        for i, (name, r) in enumerate(report["results"][setting].items()):
            if name == "original" or "avg_gap" not in r:
                continue
            ax.errorbar(
                r["seconds"],
                r["avg_gap"],
                xerr=r["seconds_std"],
                yerr=r["avg_gap_std"],
                fmt="o",
                color=f"C{i}",
                capsize=3,
                label=name,
            )
            ax.annotate(
                name,
                (r["seconds"], r["avg_gap"]),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
            )
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels overlap on a short range
        ax.set_xlabel("unlearning time (s, log)")
        ax.set_ylabel("Avg.Gap to retrain (points)")
        ax.set_title(f"{report['config']['dataset']}, {setting} forgetting")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no gaps: retrain did not run", ha="center", transform=ax.transAxes)
    return fig
