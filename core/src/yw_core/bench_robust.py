"""`yw-core bench robust-training`: adversarially trained models under white- and black-box attack.

Every method trains the same architecture from the same initial weights on the same training
split (`Defense.protect(model, data=train)`; methods hold out their own validation points), and
`none` is standard training through `yw_core.train.fit`. Each model is then evaluated on the test
split at one L-inf radius: clean accuracy, FGSM, PGD-20, PGD-50 with 10 restarts and Square.

DIO is compared with `dio-single`: its own recipe (PGD-10 AT, schedule) with one head and no
diversity losses. The catastrophic-overfitting experiment: Fast-AT trained at twice the radius
(Sub-AT's training radius, as 16/255 is to 8/255 on CIFAR-10) next to Sub-AT; the validation
PGD-20 accuracy of every method by epoch goes to `val_pgd_accuracy.png`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ATTACKS = {  # row name: (attack entry point, config overrides, query budget per sample)
    "fgsm": ("fgsm", {}, 2),
    "pgd-20": ("pgd", {"steps": 20}, 21),
    "pgd-50x10": ("pgd", {"steps": 50, "restarts": 10}, 510),
    "square": ("square", {}, 1000),
}
COLLAPSE = "fast-at-2x"  # Fast-AT at twice the radius
DIO_SINGLE = "dio-single"  # DIO's recipe with one head: the single-head model DIO is compared to


class RobustBenchConfig(BaseModel):
    """Settings of one `bench robust-training` run; recorded in results.json."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    methods: tuple[str, ...] = Field(
        ("fast-at", "pgd-at", "subat", "dio"), description="training-time defenses ('none' runs)"
    )
    dataset: str = Field("digits", description="dataset name (yw_core.data)")
    arch: str = Field("digits-cnn", description="architecture (digits-cnn gets BatchNorm)")
    eps: float = Field(0.2, gt=0, le=1, description="L-inf radius of training and evaluation")
    epochs: int = Field(30, ge=1, description="epochs of every method (Sub-AT: its sampling)")
    collapse: bool = Field(True, description="also train Fast-AT at twice eps (the experiment)")
    n: int = Field(450, ge=1, description="test points evaluated")
    seed: int = Field(0, ge=0, description="seed of the models, the data order and the attacks")
    device: str = Field("auto", description="cpu, cuda, mps or auto")


def _overrides(cls, config: RobustBenchConfig, eps: float, progress: bool) -> dict[str, Any]:
    """The protocol's values for the fields a method's Config has.

    Sub-AT's stages keep the paper's proportions: 40 subspace epochs per 65 sampling epochs, and
    80 principal directions per 131 checkpoints (2 per epoch plus the initial weights)."""
    checkpoints = 2 * config.epochs + 1
    wanted = {
        "eps": eps,
        "epochs": config.epochs,
        "sample_epochs": config.epochs,
        "subspace_epochs": max(1, round(config.epochs * 40 / 65)),
        "n_components": max(1, min(checkpoints - 1, round(checkpoints * 80 / 131))),
        "progress": progress,
    }
    return {k: v for k, v in wanted.items() if k in cls.Config.model_fields}


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


def run_robust_bench(
    config: RobustBenchConfig, out: Path | str, registry=None, progress: bool = True
) -> dict[str, Any]:
    """Train each method (and `none`), attack each; write results.json, table and plot."""
    from yw_core import hooks
    from yw_core.bench import _resolve, _versions, seeded_model, write_report
    from yw_core.data import load_dataset
    from yw_core.registry import Registry
    from yw_core.runtime import Runtime
    from yw_core.train import TrainConfig, fit

    registry = registry or Registry.discover()
    wanted = [m for m in config.methods if m != "none"]
    if config.collapse and "fast-at" not in wanted:
        wanted.append("fast-at")
    defenses = _resolve(registry, wanted, "defense", "method", extra=["none"])
    post_hoc = [n for n, cls in defenses.items() if cls.capabilities.post_hoc]
    if post_hoc:
        raise ValueError(
            f"{', '.join(post_hoc)}: post-hoc defenses; bench robust-training compares "
            "training-time defenses (use bench defense for post-hoc ones)"
        )
    attacks = {row: registry.load(name, "attack") for row, (name, _, _) in ATTACKS.items()}
    out = Path(out)
    runtime = Runtime(device=config.device, seed=config.seed)
    train = load_dataset(config.dataset, "train", seed=config.seed)
    test = load_dataset(config.dataset, "test", seed=config.seed)
    classes, channels = int(train.tensors[1].max()) + 1, train.tensors[0].shape[1]
    x, y = runtime.to(test.tensors[0][: config.n]), runtime.to(test.tensors[1][: config.n])
    pm = hooks.get_plugin_manager()
    run_info = {"config": config.model_dump(mode="json"), "out": str(out)}
    pm.hook.yw_bench_start(run=run_info)
    started = time.perf_counter()

    jobs = [("none", None, config.eps)]
    jobs += [(n, defenses[n], config.eps) for n in config.methods if n != "none"]
    if "dio" in defenses:  # DIO's own recipe with one head and no diversity losses
        jobs.append((DIO_SINGLE, defenses["dio"], config.eps))
    if config.collapse:
        jobs.append((COLLAPSE, defenses["fast-at"], 2 * config.eps))
    results = {}
    for name, cls, eps in jobs:
        runtime.seed_everything()
        model = runtime.to(seeded_model(config.arch, classes, channels, config.seed))
        t0 = time.perf_counter()
        if cls is None:
            fit_config = TrainConfig(epochs=config.epochs, batch_size=128, progress=progress)
            model = fit(model, train, runtime=runtime, config=fit_config).model
            method_config, history = {}, []
        else:
            extra = {"num_paths": 1, "alpha": 0.0, "beta": 0.0} if name == DIO_SINGLE else {}
            method = cls(**_overrides(cls, config, eps, progress), **extra)
            model = method.protect(model, data=train, runtime=runtime)
            method_config = method.config.model_dump(mode="json")
            history = getattr(method, "history", [])
        entry = {
            "config": method_config,
            "train_eps": eps,
            "train_seconds": time.perf_counter() - t0,
            "history": history,
            **evaluate(model, x, y, attacks, config, runtime),
        }
        results[name] = entry
        pm.hook.yw_bench_result(run=run_info, method_name=name, metrics=entry)
    report = {
        "manifest": {
            "protocol": "robust-training",
            "versions": _versions(
                registry, {"defense": defenses, "attack": [a for a, _, _ in ATTACKS.values()]}
            ),
            "runtime": runtime.describe(),
            "wall_seconds": time.perf_counter() - started,
        },
        "config": config.model_dump(mode="json"),
        "results": results,
    }
    figures = {"val_pgd_accuracy.png": plot_validation(report)}
    write_report(report, out, format_table(report), figures)
    pm.hook.yw_bench_end(run=run_info, results=report)
    return report


def format_table(report: dict[str, Any]) -> str:
    """Clean and robust accuracy per method and attack, training radius and time."""
    from yw_core.bench import _columns

    cfg = report["config"]
    rows = []
    for name, r in report["results"].items():
        rows.append(
            [name, ""]
            + [f"{r['train_eps']:.3g}", f"{100 * r['clean']:.1f}"]
            + [f"{100 * r[a]:.1f}" for a in ATTACKS]
            + [f"{r['train_seconds']:.0f}"]
        )
    header = ["method", "", "train eps", "clean %", *[f"{a} %" for a in ATTACKS], "train s"]
    title = (
        f"bench robust-training: {cfg['dataset']} ({cfg['arch']}), eval eps={cfg['eps']:.3g} "
        f"(L-inf), {cfg['epochs']} epochs, n={cfg['n']}, seed={cfg['seed']}, "
        f"device={report['manifest']['runtime']['device']}"
    )
    note = (
        "robust accuracy (%) at eval eps; pgd-50x10: 50 steps, 10 restarts; square: 1000 "
        f"queries; {COLLAPSE}: Fast-AT trained at twice eps; {DIO_SINGLE}: DIO's recipe with "
        "one head and alpha = beta = 0"
    )
    return "\n".join([title, "", *_columns(header, rows), "", note]) + "\n"


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
    ax.legend(fontsize=8)
    cfg = report["config"]
    ax.set_title(f"{cfg['dataset']}, eval eps={cfg['eps']:.3g}")
    return fig
