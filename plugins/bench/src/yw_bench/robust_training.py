"""`yw-core bench robust-training`: adversarially trained models under white- and black-box attack.

Every method trains the same architecture from the same initial weights on the same training
split (`Defense.protect(model, data=train)`; methods hold out their own validation points), and
`none` is standard training through `yw_core.train.fit`. Each model is then evaluated on the test
split at one L-inf radius: clean accuracy, FGSM, PGD-20, PGD-50 with 10 restarts and Square.

The protocol passes its `eps`, `epochs` and `progress` to each method through the method's
declared `bench_fields`, adds the comparison rows a method declares (`variants`, e.g. DIO's
single-path model), and trains the methods named in `scaled` again at `scale` times eps (the
catastrophic-overfitting experiment: Fast-AT at Sub-AT's training radius). The validation PGD-20
accuracy of every method by epoch goes to `val_pgd_accuracy.png`.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field, field_validator

from yw_bench.common import distinct, summarise
from yw_core.bench import (
    Protocol,
    ProtocolConfig,
    Report,
    check_overrides,
    columns,
    configure,
    seeded_model,
    select,
    variants,
)

ATTACKS = {  # row name: (attack entry point, config overrides, query budget per sample)
    "fgsm": ("fgsm", {}, 2),
    "pgd-20": ("pgd", {"steps": 20}, 21),
    "pgd-50x10": ("pgd", {"steps": 50, "restarts": 10}, 510),
    "square": ("square", {}, 1000),
}


class RobustBenchConfig(ProtocolConfig):
    """Settings of one `bench robust-training` run; recorded in results.json."""

    methods: tuple[str, ...] | None = Field(
        None,
        description="training-time defenses ('none' always runs); None = every installed one "
        "that is not certified training",
    )
    dataset: str = Field("digits", description="dataset name (yw_core.data)")
    arch: str = Field("digits-cnn", description="architecture (digits-cnn gets BatchNorm)")
    norm_embedding: bool = Field(
        True,
        description="digits-cnn's embedding Linear → BatchNorm1d → ReLU, as the papers' "
        "backbones end (off: the unnormalised embedding, where Sub-AT diverges)",
    )
    train_eps_ratio: float = Field(
        1.0,
        gt=0,
        le=100,
        description="training radius / eps of the methods that widen it (Sub-AT's subspace "
        "stage; its paper: 2 at 8/255 on CIFAR-10; 2 x 0.2 on digits is not learnable)",
    )
    eps: float = Field(0.2, gt=0, le=1, description="L-inf radius of training and evaluation")
    epochs: int = Field(10, ge=1, description="epochs of every method (its `epochs` setting)")
    scaled: tuple[str, ...] = Field(
        (), description="methods also trained at `scale` x eps (rows NAME-<scale>x)"
    )
    scale: float = Field(2.0, gt=0, le=100, description="eps multiplier of the `scaled` rows")
    variants: bool = Field(True, description="also run the comparison variants methods declare")
    n: int = Field(200, ge=1, description="test points evaluated")
    seeds: tuple[int, ...] = Field(
        (0, 1, 2),
        description="one data split, initial weights and training run per seed; rows report "
        "mean ± std",
    )
    overrides: dict[str, dict[str, Any]] = Field(
        {}, description="per-method Config overrides, NAME.FIELD=VALUE"
    )

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, value):
        return distinct("seeds", value, 0)


def evaluate(model, x, y, attacks: dict, config: RobustBenchConfig, runtime) -> dict[str, Any]:
    """Clean and robust accuracy (per attack) of `model` on (x, y) at config.eps."""
    import torch

    from yw_core.models import eval_mode

    out: dict[str, Any] = {}
    with eval_mode(model):
        with torch.no_grad():
            runtime.seed_everything()
            out["clean"] = int((model(x).argmax(1) == y).sum()) / len(y)
        for row, cls in attacks.items():
            runtime.seed_everything()
            _, overrides, budget = ATTACKS[row]
            with runtime.timer() as t:
                successes = []
                for start in range(0, len(x), 500):
                    result = cls(**overrides).run(
                        model,
                        x[start : start + 500],
                        y[start : start + 500],
                        eps=config.eps,
                        budget=budget,
                        runtime=runtime,
                    )
                    successes.append(result.success.cpu())
            success = torch.cat(successes)
            with torch.no_grad():
                correct = (model(x).argmax(1) == y).cpu()
            out[row] = int((correct & ~success).sum()) / len(y)
            out[row + "_seconds"] = t.seconds
    return out


class RobustTrainingBench(Protocol):
    """Training-time defenses against standard training under FGSM, PGD and Square."""

    name = "robust-training"
    summary = "adversarially trained models under white- and black-box attack"
    Config = RobustBenchConfig
    presets = {
        "paper": {
            "methods": ("fast-at", "pgd-at", "subat", "dio"),
            "epochs": 30,
            "n": 450,
            "scaled": ("fast-at",),
        }
    }

    def run(self, config: RobustBenchConfig, *, runtime, progress: bool) -> Report:
        from yw_core.data import load_dataset
        from yw_core.runtime import Runtime
        from yw_core.train import TrainConfig, fit

        def trainable(cls):
            return not cls.capabilities.post_hoc and not cls.capabilities.certified

        wanted = None if config.methods is None else [m for m in config.methods if m != "none"]
        defenses = select(
            self,
            "defense",
            wanted,
            where=trainable,
            why="post-hoc or certified-training defenses; bench robust-training compares "
            "adversarial training (use bench defense or bench certify for those)",
            builtin=["none"],
        )
        extra = [n for n in config.scaled if n not in defenses]
        defenses.update(select(self, "defense", extra, where=trainable, why="not trainable"))
        check_overrides(config.overrides, defenses)
        attacks = select(self, "attack", sorted({name for name, _, _ in ATTACKS.values()}))
        attacks = {row: attacks[name] for row, (name, _, _) in ATTACKS.items()}
        jobs: list[tuple[str, Any, float, dict, str]] = [("none", None, config.eps, {}, "")]
        for name in wanted if wanted is not None else sorted(defenses):
            jobs.append((name, defenses[name], config.eps, {}, ""))
        if config.variants:
            for name, cls, *_ in list(jobs[1:]):
                for row, variant in variants(cls).items():
                    jobs.append((row, cls, config.eps, dict(variant.overrides), variant.label))
        for name in config.scaled:
            row = f"{name}-{config.scale:g}x"
            label = f"{name} trained at {config.scale:g} x eps"
            jobs.append((row, defenses[name], config.scale * config.eps, {}, label))

        runs: dict[str, list[dict[str, Any]]] = {row: [] for row, *_ in jobs}
        facts: dict[str, dict[str, Any]] = {}
        for seed in config.seeds:
            seeded = Runtime(device=config.device, seed=seed, distributed=False)
            train = load_dataset(config.dataset, "train", seed=seed)
            test = load_dataset(config.dataset, "test", seed=seed)
            classes, channels = int(train.tensors[1].max()) + 1, train.tensors[0].shape[1]
            x, y = seeded.to(test.tensors[0][: config.n]), seeded.to(test.tensors[1][: config.n])
            for row, cls, eps, extra_overrides, label in jobs:
                seeded.seed_everything()
                model = seeded.to(
                    seeded_model(
                        config.arch, classes, channels, seed, norm_embedding=config.norm_embedding
                    )
                )
                t0 = time.perf_counter()
                if cls is None:
                    fit_config = TrainConfig(
                        epochs=config.epochs, batch_size=128, progress=progress
                    )
                    model = fit(model, train, runtime=seeded, config=fit_config).model
                    method_config, history = {}, []
                else:
                    overrides = {**config.overrides.get(cls.name, {}), **extra_overrides}
                    settings = {
                        "eps": eps,
                        "epochs": config.epochs,
                        "train_eps_ratio": config.train_eps_ratio,
                        "progress": progress,
                    }
                    method = configure(
                        cls, settings, optional=("progress", "train_eps_ratio"), overrides=overrides
                    )
                    model = method.protect(model, data=train, runtime=seeded)
                    method_config = method.config.model_dump(mode="json")
                    history = getattr(method, "history", [])
                    if getattr(method, "sharpness", None) is not None:
                        extra = {"sharpness": method.sharpness, "lr_bound": method.lr_bound}
                        history = [*history, {"stage": "lr_guard", **extra}]
                seconds = time.perf_counter() - t0
                facts[row] = {"config": method_config, "label": label, "train_eps": eps}
                runs[row].append(
                    {
                        "seed": seed,
                        "train_seconds": seconds,
                        "history": history,
                        **evaluate(model, x, y, attacks, config, seeded),
                    }
                )

        results = {}
        for row, rows in runs.items():
            entry = {
                **facts[row],
                **summarise(rows, ["clean", *ATTACKS, "train_seconds"]),
                "history": rows[0]["history"],  # the first seed's, for the plot
                "runs": rows,
            }
            results[row] = entry
            self.result(row, entry)
        return Report(results=results)

    def runtime_seed(self, config: RobustBenchConfig) -> int:
        return config.seeds[0]

    def format_table(self, report: dict[str, Any]) -> str:
        """Clean and robust accuracy per method and attack, training radius and time."""
        cfg, m = report["config"], report["manifest"]
        rows = []
        for name, r in report["results"].items():
            rows.append(
                [name, ""]
                + [f"{r['train_eps']:.3g}", _pct(r, "clean")]
                + [_pct(r, a) for a in ATTACKS]
                + [f"{r['train_seconds']:.0f}"]
            )
        header = ["method", "", "train eps", "clean %", *[f"{a} %" for a in ATTACKS], "train s"]
        preset = f", preset {m['preset']}" if m.get("preset") else ""
        seeds = ",".join(map(str, cfg["seeds"]))
        title = (
            f"bench robust-training: {cfg['dataset']} ({cfg['arch']}), eval eps={cfg['eps']:.3g} "
            f"(L-inf), {cfg['epochs']} epochs, n={cfg['n']}, seeds={seeds}, "
            f"device={m['runtime']['device']}{preset}"
        )
        notes = [
            "robust accuracy (%) at eval eps, mean ± std over seeds; pgd-50x10: 50 steps, 10 "
            "restarts; square: 1000 queries; train s: mean"
        ]
        notes += [f"{name}: {r['label']}" for name, r in report["results"].items() if r["label"]]
        return "\n".join([title, "", *columns(header, rows), "", *notes]) + "\n"

    def figures(self, report: dict[str, Any]) -> dict[str, Any]:
        return {"val_pgd_accuracy.png": plot_validation(report)}


def _pct(row: dict[str, Any], key: str) -> str:
    """'mean ± std' in percent of a summarised accuracy."""
    return f"{100 * row[key]:.1f} ± {100 * row[key + '_std']:.1f}"


def plot_validation(report: dict[str, Any]):
    """Validation PGD-20 accuracy by epoch, one line per method that records it."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    for i, (name, r) in enumerate(report["results"].items()):
        rows = [h for h in r["history"] if h.get("val_pgd_acc") is not None]
        if rows:
            xs = list(range(1, len(rows) + 1))
            ax.plot(xs, [100 * h["val_pgd_acc"] for h in rows], color=f"C{i}", label=name)
    ax.set_xlabel("epoch (each method's own training, in order)")
    ax.set_ylabel("validation PGD-20 accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    else:  # e.g. only `none`, which does not validate
        ax.text(0.5, 0.5, "no method recorded validation accuracy", ha="center", va="center")
    cfg = report["config"]
    ax.set_title(f"{cfg['dataset']}, eval eps={cfg['eps']:.3g}")
    return fig
