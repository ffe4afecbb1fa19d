"""`yw-core bench ood`: OOD scorers on one classifier, near- and far-OOD, OpenOOD's metrics.

One classifier is trained on the in-distribution (ID) classes: on digits (the default) a
`digits-cnn` on classes 0-4 of the train split (`yw_core.train.fit`, SGD lr 0.1, batch 64), so
that classes 5-9 are a near-OOD set no model saw; on `cifar10`, the zoo's reference ResNet-18 on
all ten classes, with CIFAR-100 (near) and SVHN (far) when they are on disk. Every installed OOD
scorer (and every comparison variant it declares) is fitted on the ID train split, a Dataset of
(x, y), then scores the ID test split and every OOD set (`yw_bench.ood_sets`). Reported per OOD
set: AUROC, AUPR-In, AUPR-Out and FPR@95TPR (OOD positive, OpenOOD v1.5; FPR95 with ID positive
too), with core's `yw_core.metrics.ood_metrics`; their averages over the near and over the far
sets; fit seconds and scoring seconds per 1,000 inputs; the classifier's ID test accuracy.

Scorers get the protocol's `progress` only (through `bench_fields` when they map it); per-scorer
settings go through `--overrides NAME.FIELD=VALUE`. The default run (digits, 20 epochs, OOD sets
the size of the ID test split, 226 images) takes a few seconds plus the scorers' own time.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from yw_bench.ood_sets import DEFAULT_SETS, OOD_SETS, Unavailable, check_names, make_ood_set
from yw_core.bench import (
    Protocol,
    ProtocolConfig,
    Report,
    check_overrides,
    columns,
    configure,
    install_line,
    pct,
    seeded_model,
    select,
    variants,
)

ID_CLASSES = 5  # digits: the classifier's classes are 0..4; 5..9 are the near-OOD set
DEFAULT_ARCH = {"digits": "digits-cnn", "cifar10": "resnet18"}
DIGITS_EPOCHS = 20  # 100% ID test accuracy in about 2 s on 2 CPU cores
METRICS = ("auroc", "aupr_in", "aupr_out", "fpr95_ood", "fpr95_id")


class OODBenchConfig(ProtocolConfig):
    """Settings of one `bench ood` run; recorded in results.json."""

    methods: tuple[str, ...] | None = Field(
        None, description="OOD scorers; None = every installed one"
    )
    dataset: Literal["digits", "cifar10"] = Field(
        "digits",
        description="ID data: digits (classes 0-4; 5-9 are near-OOD) or cifar10 (all classes; "
        "CIFAR-10 files on disk, CIFAR-100 and SVHN used when on disk)",
    )
    arch: str | None = Field(
        None, description="classifier architecture; None: digits-cnn on digits, resnet18 on cifar10"
    )
    epochs: int | None = Field(
        None,
        ge=1,
        description=f"classifier training epochs; None: {DIGITS_EPOCHS} on digits, the zoo "
        "recipe's on cifar10",
    )
    ood_sets: tuple[str, ...] | None = Field(
        None,
        description="OOD sets (near: digits-5-9, cifar100; far: photos, textures, svhn, "
        "gaussian, uniform); None: the dataset's (digits: all but cifar100, svhn)",
    )
    ood_size: int | None = Field(
        None, ge=1, description="images per OOD set; None: the size of the ID test split"
    )
    variants: bool = Field(True, description="also run the comparison variants scorers declare")
    batch_size: int = Field(256, ge=1, description="inputs per score() call")
    overrides: dict[str, dict[str, Any]] = Field(
        {}, description="per-scorer Config overrides, NAME.FIELD=VALUE"
    )

    @field_validator("ood_sets")
    @classmethod
    def _known_sets(cls, value):
        if value is None:
            return None
        if not value:
            raise ValueError("at least one OOD set is needed")
        check_names(value)
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _sets_fit_the_dataset(self):
        check_names(self.sets, self.dataset)
        return self

    @property
    def sets(self) -> tuple[str, ...]:
        """The OOD sets of the run: those given, else the dataset's default."""
        return self.ood_sets if self.ood_sets is not None else DEFAULT_SETS[self.dataset]

    @property
    def model_arch(self) -> str:
        return self.arch or DEFAULT_ARCH[self.dataset]


def scorer_distributions() -> str:
    """'pip install ...' for the first-party distributions that provide OOD scorers."""
    from yw_core.catalogue import load_catalogue

    found = sorted(
        entry["distribution"]
        for entry in load_catalogue().values()
        if "ood_scorer" in {**entry.get("methods", {}), **entry.get("planned", {})}.values()
    )
    if not found:
        return "install a distribution that registers yw.ood_scorers"
    return install_line(*found)


def load_id_data(config: OODBenchConfig):
    """(train, test) Datasets of (x, y) of the ID classes; a ValueError naming missing files."""
    from torch.utils.data import TensorDataset

    from yw_core.data import load_dataset

    try:
        train = load_dataset(config.dataset, "train", seed=config.seed)
        test = load_dataset(config.dataset, "test", seed=config.seed)
    except FileNotFoundError as exc:
        raise ValueError(f"ID data set {config.dataset}: {exc}") from None
    if config.dataset != "digits":
        return train, test
    parts = []
    for data in (train, test):
        x, y = data.tensors
        keep = y < ID_CLASSES
        parts.append(TensorDataset(x[keep], y[keep]))
    return tuple(parts)


def train_classifier(config: OODBenchConfig, train, runtime, progress: bool):
    """The ID classifier: trained here on digits, the zoo's reference model on CIFAR-10."""
    from yw_core.train import TrainConfig, fit

    if config.dataset != "digits":
        from yw_core.zoo import reference_model

        extra = {} if config.epochs is None else {"epochs": config.epochs}
        model = reference_model(
            config.dataset,
            config.model_arch,
            seed=config.seed,
            runtime=runtime,
            progress=progress,
            **extra,
        )
        return model, model.zoo_info["config"]["epochs"]
    x, y = train.tensors
    epochs = config.epochs or DIGITS_EPOCHS
    runtime.seed_everything()
    model = seeded_model(config.model_arch, ID_CLASSES, x.shape[1], config.seed)
    train_config = TrainConfig(epochs=epochs, batch_size=64, lr=0.1, progress=progress)
    return fit(model, train, runtime=runtime, config=train_config).model, epochs


def accuracy(model, data, runtime, batch_size: int) -> float:
    import torch

    from yw_core.models import eval_mode

    x, y = data.tensors
    correct = 0
    with eval_mode(model), torch.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(runtime.to(x[i : i + batch_size]))
            correct += int((logits.argmax(1).cpu() == y[i : i + batch_size]).sum())
    return correct / len(x)


def score_all(method, x, batch_size: int, row: str, what: str):
    """method.score over x in batches; each result checked to be finite and of shape (N,)."""
    import torch

    out = []
    for i in range(0, len(x), batch_size):
        chunk = x[i : i + batch_size]
        scores = method.score(chunk)
        if not isinstance(scores, torch.Tensor) or tuple(scores.shape) != (len(chunk),):
            got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores)
            raise ValueError(f"{row}: score() must return shape ({len(chunk)},), got {got}")
        if not torch.isfinite(scores).all():
            raise ValueError(f"{row}: score() returned NaN or infinite scores on {what}")
        out.append(scores.detach().float().cpu())
    return torch.cat(out)


def average(per_set: dict[str, dict[str, float]], names: list[str]) -> dict[str, float | None]:
    """The mean of each metric over the named sets (None for every metric when there are none)."""
    return {
        metric: sum(per_set[n][metric] for n in names) / len(names) if names else None
        for metric in METRICS
    }


class OODBench(Protocol):
    """Installed OOD scorers on one ID classifier, against near- and far-OOD sets."""

    name = "ood"
    summary = "OOD scorers on one classifier: AUROC, AUPR, FPR@95 on near- and far-OOD sets"
    Config = OODBenchConfig
    presets = {"paper": {"epochs": 50, "ood_size": 1000}}

    def run(self, config: OODBenchConfig, *, runtime, progress: bool) -> Report:
        import time

        import torch

        from yw_core import metrics

        scorers = select(self, "ood_scorer", config.methods)
        if config.methods is None and not scorers:
            raise ValueError(
                "no OOD scorer installed; bench ood compares the installed OOD scorers "
                f"(entry-point group yw.ood_scorers): {scorer_distributions()}"
            )
        check_overrides(config.overrides, scorers)
        jobs = [(name, cls, {}, "") for name, cls in scorers.items()]
        if config.variants:
            for name, cls in scorers.items():
                for row, variant in variants(cls).items():
                    jobs.append((row, cls, dict(variant.overrides), variant.label))

        train, test = load_id_data(config)
        shape = tuple(train.tensors[0].shape[1:])
        size = config.ood_size or len(test)
        sets, skipped = {}, {}
        for name in config.sets:
            try:
                sets[name] = make_ood_set(name, size, shape, config.seed)
            except Unavailable as exc:
                skipped[name] = str(exc)
        if not sets:
            reasons = "; ".join(f"{n}: {why}" for n, why in skipped.items())
            raise ValueError(f"none of the OOD sets is available: {reasons}")

        t0 = time.perf_counter()
        model, epochs = train_classifier(config, train, runtime, progress)
        model = runtime.to(model).eval()
        train_seconds = time.perf_counter() - t0
        id_accuracy = accuracy(model, test, runtime, config.batch_size)
        x_test = test.tensors[0]

        results: dict[str, Any] = {}
        scores_section: dict[str, dict[str, list[float]]] = {}
        for row, cls, extra, label in jobs:
            runtime.seed_everything()
            overrides = {**config.overrides.get(cls.name, {}), **extra}
            method = configure(cls, {"progress": progress}, overrides=overrides)
            with runtime.timer() as fit_time:
                fitted = method.fit(model, train, runtime=runtime)
            if fitted is not method:
                raise ValueError(f"{row}: fit() must return self, got {type(fitted).__name__}")
            with runtime.timer() as score_time:
                id_scores = score_all(method, x_test, config.batch_size, row, "the ID test set")
                ood_scores = {
                    name: score_all(method, x, config.batch_size, row, f"OOD set {name}")
                    for name, x in sets.items()
                }
            per_set = {name: metrics.ood_metrics(id_scores, s) for name, s in ood_scores.items()}
            every = torch.cat([id_scores, *ood_scores.values()])
            inputs = len(x_test) + sum(len(x) for x in sets.values())
            entry = {
                "config": method.config.model_dump(mode="json"),
                "label": label,
                "fit_seconds": fit_time.seconds,
                "score_seconds_per_1000": 1000 * score_time.seconds / inputs,
                "near": average(per_set, [n for n in sets if OOD_SETS[n].kind == "near"]),
                "far": average(per_set, [n for n in sets if OOD_SETS[n].kind == "far"]),
                "sets": per_set,
                "constant": bool(every.min() == every.max()),  # a flat score separates nothing
            }
            results[row] = entry
            scores_section[row] = {
                "id": id_scores.tolist(),
                **{name: s.tolist() for name, s in ood_scores.items()},
            }
            self.result(row, entry)

        facts = {
            "seed": config.seed,
            "arch": config.model_arch,
            "epochs": epochs,
            "id_classes": list(range(ID_CLASSES)) if config.dataset == "digits" else "all",
            "id_accuracy": id_accuracy,
            "id_train": len(train),
            "id_test": len(x_test),
            "classifier_seconds": train_seconds,
            "ood_sets": [  # a list: results.json sorts the keys of mappings
                {
                    "name": name,
                    "kind": OOD_SETS[name].kind,
                    "description": OOD_SETS[name].description,
                    "size": len(sets[name]) if name in sets else 0,
                    **({"skipped": skipped[name]} if name in skipped else {}),
                }
                for name in config.sets
            ],
        }
        return Report(results=results, manifest=facts, sections={"scores": scores_section})

    def format_table(self, report: dict[str, Any]) -> str:
        """Near/far averages and per-set AUROC per scorer, then every metric per scorer and set."""
        cfg, m = report["config"], report["manifest"]
        sets = {s["name"]: s for s in m["ood_sets"]}
        ran = [n for n, s in sets.items() if "skipped" not in s]

        rows, detail = [], []
        for name, r in report["results"].items():
            rows.append(
                [name, ""]
                + [pct(r["near"]["auroc"]), pct(r["near"]["fpr95_ood"])]
                + [pct(r["far"]["auroc"]), pct(r["far"]["fpr95_ood"])]
                + [pct(r["sets"][s]["auroc"]) if s in r["sets"] else "-" for s in sets]
                + [f"{r['fit_seconds']:.2f}", f"{r['score_seconds_per_1000']:.3f}"]
            )
            for s in ran:
                v = r["sets"][s]
                detail.append(
                    [name, s]
                    + [pct(v[k]) for k in ("auroc", "aupr_in", "aupr_out", "fpr95_ood", "fpr95_id")]
                )
        header = ["method", "", "near AUROC", "near FPR95", "far AUROC", "far FPR95", *sets]
        header += ["fit s", "score s/1k"]
        preset = f", preset {m['preset']}" if m.get("preset") else ""
        classes = m["id_classes"]
        id_what = (
            f"classes {classes[0]}-{classes[-1]}" if isinstance(classes, list) else "all classes"
        )
        epochs = f"{m['epochs']} epoch" + ("s" if m["epochs"] != 1 else "")
        sizes = sorted({s["size"] for s in sets.values() if s["size"]})
        sizes_text = "/".join(map(str, sizes))
        title = (
            f"bench ood: {cfg['dataset']} {id_what} as ID ({m['arch']}, {epochs}, "
            f"ID accuracy {pct(m['id_accuracy'])}%), {m['id_train']} ID train, {m['id_test']} "
            f"ID test, OOD sets of {sizes_text}, seed={m['seed']}, "
            f"device={m['runtime']['device']}{preset}"
        )
        near = [n for n in ran if sets[n]["kind"] == "near"]
        far = [n for n in ran if sets[n]["kind"] == "far"]
        notes = [
            "AUROC, AUPR and FPR95 in %; FPR95 (OpenOOD): the share of ID flagged OOD when 95% of "
            "OOD is caught; FPR95-ID: the share of OOD kept when 95% of ID is kept",
            f"near = mean over {', '.join(near) or 'none'}; "
            f"far = mean over {', '.join(far) or 'none'}; "
            "per-set columns: AUROC; score s/1k: scoring seconds per 1,000 inputs",
        ]
        notes += [f"{s}: skipped: {v['skipped']}" for s, v in sets.items() if "skipped" in v]
        notes += [f"{name}: {r['label']}" for name, r in report["results"].items() if r["label"]]
        notes += [
            f"{name}: every input got the same score, so it separates nothing (AUROC 50)"
            for name, r in report["results"].items()
            if r["constant"]
        ]
        if rows:
            table = columns(header, rows)
            detail_header = ["method", "OOD set", "AUROC", "AUPR-In", "AUPR-Out", "FPR95"]
            details = ["", *columns([*detail_header, "FPR95-ID"], detail)]
        else:
            table, details = [*columns(header, []), "(no OOD scorer ran)"], []
        return "\n".join([title, "", *table, *details, "", *notes]) + "\n"

    def figures(self, report: dict[str, Any]) -> dict[str, Any]:
        return {"score_histograms.png": plot_histograms(report)}


def plot_histograms(report: dict[str, Any]):
    """Histograms of ID vs each OOD set's scores: one panel per scorer, in a grid."""
    import numpy as np
    from matplotlib.figure import Figure

    scores = report.get("scores", {})
    names = list(report["results"])
    ncols = min(3, max(1, len(names)))
    nrows = max(1, -(-len(names) // ncols))
    fig = Figure(figsize=(4.4 * ncols, 3.3 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    if not names:
        axes[0].set_visible(True)
        axes[0].text(0.5, 0.5, "no OOD scorer ran", ha="center", va="center")
        axes[0].set_axis_off()
    for ax, name in zip(axes, names, strict=False):
        by_set = {k: np.asarray(v, dtype=float) for k, v in scores[name].items()}
        everything = np.concatenate(list(by_set.values()))
        lo, hi = np.percentile(everything, [0.5, 99.5])
        if hi <= lo:
            lo, hi = everything.min() - 0.5, everything.max() + 0.5
        bins = np.linspace(lo, hi, 40)
        ax.hist(np.clip(by_set.pop("id"), lo, hi), bins=bins, density=True, color="0.6", label="ID")
        for i, (ood, values) in enumerate(by_set.items()):
            auroc = report["results"][name]["sets"][ood]["auroc"]
            ax.hist(
                np.clip(values, lo, hi),
                bins=bins,
                density=True,
                histtype="step",
                linewidth=1.4,
                color=f"C{i}",
                label=f"{ood} ({100 * auroc:.1f})",
            )
        ax.set_title(name)
        ax.set_xlabel("score (higher = more ID)")
        ax.set_ylabel("density")
        ax.legend(fontsize=7, title="OOD set (AUROC %)", title_fontsize=7)
    cfg, m = report["config"], report["manifest"]
    fig.suptitle(f"{cfg['dataset']} ID vs OOD scores ({m['arch']}, seed {m['seed']})")
    return fig
