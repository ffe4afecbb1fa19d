"""`yw-core bench certify`: certified robustness of smoothed classifiers (Cohen et al. CERTIFY).

Three kinds of smoothed classifiers with the same trunk, trained for the same epochs at one
sigma: `single` (one network trained with Gaussian noise augmentation), each installed
certified-training method (`capabilities.certified`, e.g. SOME: one trunk, H heads) and
`ensemble` (H independent single networks, logits summed: what multi-head methods claim to beat
at a fraction of the cost). Each certifies every k-th test point with CERTIFY (n0, n, alpha);
reported: certified accuracy against L2 radius, ACR, abstentions, and certification throughput
(noise samples per second) and cost relative to `single`.

Methods get the protocol's `sigma`, `epochs` and `progress`, and, when their Config has fields
for them (`bench_fields`), `heads` and `head_layers`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from yw_core.bench import (
    Protocol,
    ProtocolConfig,
    Report,
    check_overrides,
    columns,
    configure,
    seeded_model,
    select,
)

RADII = (0.0, 0.25, 0.5, 0.75, 1.0)


class CertifyBenchConfig(ProtocolConfig):
    """Settings of one `bench certify` run; recorded in results.json."""

    methods: tuple[str, ...] | None = Field(
        None, description="certified-training defenses; None = every installed one"
    )
    dataset: str = Field("digits", description="dataset name (yw_core.data)")
    arch: str = Field("digits-cnn", description="trunk architecture (yw_core.models)")
    sigma: float = Field(0.25, gt=0, description="noise std for training and certification")
    epochs: int = Field(10, ge=1, description="training epochs of every model")
    heads: int = Field(5, ge=2, description="H: the heads of multi-head methods and the ensemble")
    head_layers: int | None = Field(
        None,
        ge=0,
        description="trailing modules of the trunk's .features that every head owns; None: 2 on "
        "digits-cnn (its hidden Linear + ReLU, as the papers' heads own ResNet-110's last "
        "stage), else 0",
    )
    n0: int = Field(100, ge=1, description="CERTIFY selection samples")
    n: int = Field(10_000, ge=1, description="CERTIFY estimation samples")
    alpha: float = Field(0.001, gt=0, lt=1, description="CERTIFY failure probability")
    every: int = Field(30, ge=1, description="certify every k-th test point")
    batch_size: int = Field(1000, ge=1, description="noise samples per forward")
    overrides: dict[str, dict[str, Any]] = Field(
        {}, description="per-method Config overrides, NAME.FIELD=VALUE"
    )

    @model_validator(mode="after")
    def _n0_at_most_n(self):
        if self.n0 > self.n:
            raise ValueError(f"n0 ({self.n0}) must not exceed n ({self.n})")
        return self


def gaussian_loss(sigma: float, generator):
    """Cross-entropy on x + N(0, sigma^2) (Cohen et al.'s noise augmentation)."""
    import torch
    import torch.nn.functional as F

    def loss_fn(model, batch):
        x, y = batch[0], batch[1]
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return F.cross_entropy(model(x + sigma * noise), y)

    return loss_fn


def ensemble(members):
    """H independently trained networks as one classifier: the sum of their logits."""
    import torch
    from torch import nn

    class Ensemble(nn.Module):
        def __init__(self):
            super().__init__()
            self.members = nn.ModuleList(members)

        def forward(self, x):
            return torch.stack([m(x) for m in self.members]).sum(0)

    return Ensemble()


def train_single(config, train, classes, channels, seed, runtime, progress):
    from yw_core.train import TrainConfig, fit

    model = seeded_model(config.arch, classes, channels, seed)
    generator = runtime.generator(seed, device=runtime.device)
    result = fit(
        model,
        train,
        runtime=runtime,
        config=TrainConfig(epochs=config.epochs, batch_size=64, lr=0.1, progress=progress),
        loss_fn=gaussian_loss(config.sigma, generator),
    )
    return result.model


def certify_model(model, x, y, config: CertifyBenchConfig, runtime) -> dict[str, Any]:
    """CERTIFY every point; certified accuracy per radius, ACR, abstentions, throughput."""
    import torch

    from yw_core import metrics
    from yw_core.models import eval_mode

    generator = runtime.generator(config.seed, device=runtime.device)
    predictions, radii = [], []
    with eval_mode(model), runtime.timer() as t:
        for xi in x:
            c, r = metrics.certify(
                model,
                xi,
                config.sigma,
                n0=config.n0,
                n=config.n,
                alpha=config.alpha,
                batch_size=config.batch_size,
                generator=generator,
            )
            predictions.append(c)
            radii.append(r)
    predictions, radii = torch.tensor(predictions), torch.tensor(radii)
    samples = len(x) * (config.n0 + config.n)
    return {
        "certified_accuracy": {
            str(r): metrics.certified_accuracy(predictions, radii, y.cpu(), r) for r in RADII
        },
        "acr": metrics.average_certified_radius(predictions, radii, y.cpu()),
        "abstain": float((predictions == metrics.ABSTAIN).float().mean()),
        "seconds": t.seconds,
        "samples_per_second": samples / t.seconds if t.seconds else None,
        "correct": (predictions == y.cpu()).tolist(),
        "radii": radii.tolist(),
    }


class CertifyBench(Protocol):
    """Certified-training methods against one smoothed network and an H-network ensemble."""

    name = "certify"
    summary = "certified accuracy and ACR of smoothed classifiers (single, methods, ensemble)"
    Config = CertifyBenchConfig
    presets = {"paper": {"epochs": 30, "n": 100_000, "every": 10}}

    def run(self, config: CertifyBenchConfig, *, runtime, progress: bool) -> Report:
        import time

        from yw_core.data import load_dataset

        methods = select(
            self,
            "defense",
            config.methods,
            where=lambda cls: cls.capabilities.certified,
            why="not certified-training defenses (capabilities.certified); certify compares "
            "smoothed classifiers trained for certification",
        )
        check_overrides(config.overrides, methods)
        train = load_dataset(config.dataset, "train", seed=config.seed)
        test = load_dataset(config.dataset, "test", seed=config.seed)
        x_train, y_train = train.tensors
        classes, channels = int(y_train.max()) + 1, x_train.shape[1]
        x, y = test.tensors[0][:: config.every], test.tensors[1][:: config.every]
        x, y = runtime.to(x), runtime.to(y)
        head_layers = config.head_layers
        if head_layers is None:
            head_layers = 2 if config.arch == "digits-cnn" else 0
        settings = {
            "sigma": config.sigma,
            "epochs": config.epochs,
            "heads": config.heads,
            "head_layers": head_layers,
            "progress": progress,
        }

        models: dict[str, Any] = {}
        train_seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        models["single"] = train_single(
            config, train, classes, channels, config.seed, runtime, progress
        )
        train_seconds["single"] = time.perf_counter() - t0
        for name, cls in methods.items():
            t0 = time.perf_counter()
            trunk = runtime.to(seeded_model(config.arch, classes, channels, config.seed))
            method = configure(
                cls,
                settings,
                optional=("heads", "head_layers", "progress"),
                overrides=config.overrides.get(name),
            )
            models[name] = method.protect(trunk, data=train, runtime=runtime)
            train_seconds[name] = time.perf_counter() - t0
        t0 = time.perf_counter()
        members = [
            train_single(config, train, classes, channels, config.seed + 1 + h, runtime, progress)
            for h in range(config.heads)
        ]
        models["ensemble"] = runtime.to(ensemble(members))
        train_seconds["ensemble"] = time.perf_counter() - t0

        results = {}
        for name, model in models.items():
            entry = certify_model(model, x, y, config, runtime)
            entry["train_seconds"] = train_seconds[name]
            results[name] = entry
            self.result(name, entry)
        for entry in results.values():
            entry["cost_vs_single"] = entry["seconds"] / results["single"]["seconds"]
        return Report(results=results, manifest={"points": len(x)})

    def format_table(self, report: dict[str, Any]) -> str:
        """Certified accuracy per radius, ACR, abstentions and certification cost per model."""
        cfg, m = report["config"], report["manifest"]
        rows = []
        for name, r in report["results"].items():
            rows.append(
                [name, ""]
                + [f"{100 * v:.1f}" for v in r["certified_accuracy"].values()]
                + [
                    f"{r['acr']:.3f}",
                    f"{100 * r['abstain']:.1f}",
                    f"{r['samples_per_second']:.0f}",
                    f"{r['cost_vs_single']:.2f}x",
                ]
            )
        header = (
            ["model", ""]
            + [f"r={r}" for r in RADII]
            + ["ACR", "abstain %", "samples/s", "cost vs single"]
        )
        preset = f", preset {m['preset']}" if m.get("preset") else ""
        title = (
            f"bench certify: {cfg['dataset']} ({cfg['arch']}), sigma={cfg['sigma']}, "
            f"{m['points']} points, n0={cfg['n0']}, n={cfg['n']}, alpha={cfg['alpha']}, "
            f"H={cfg['heads']}, {cfg['epochs']} epochs, device={m['runtime']['device']}{preset}"
        )
        note = "certified accuracy (%) at each L2 radius; ACR = average certified radius"
        return "\n".join([title, "", *columns(header, rows), "", note]) + "\n"

    def figures(self, report: dict[str, Any]) -> dict[str, Any]:
        return {"certified_accuracy.png": plot(report)}


def plot(report: dict[str, Any]):
    """Certified accuracy against radius, one line per model."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.subplots()
    largest = max(max(r["radii"], default=0) for r in report["results"].values())
    grid = np.linspace(0, max(1.0, largest), 200)
    for i, (name, r) in enumerate(report["results"].items()):
        radii, correct = np.array(r["radii"]), np.array(r["correct"], dtype=bool)
        curve = [100 * float((correct & (radii >= g)).mean()) for g in grid]
        ax.plot(grid, curve, color=f"C{i}", label=f"{name} (ACR {r['acr']:.3f})")
    ax.set_xlabel("L2 radius")
    ax.set_ylabel("certified accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend()
    cfg = report["config"]
    ax.set_title(f"{cfg['dataset']}, sigma={cfg['sigma']}, {report['manifest']['points']} points")
    return fig
