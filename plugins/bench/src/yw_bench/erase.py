"""`yw-core bench erase`: concept erasure in a class-conditional diffusion model on digits.

One DDPM (`yw_core.diffusion.reference_ddpm(ddpm_seed)`, trained on first use and cached) is the
pre-trained model. Per seed, the forget set is `forget_samples` of its own generations of the
concept (class 3 by default), and every installed diffusion unlearner (MiM-MU, ESD, concept
ablation) erases the concept from a copy with the same recipe (lr, epochs, batch). Each model
then draws `samples_per_class` samples of every class with classifier-free guidance, from the
same noise for every model, and the zoo's digits classifier reads them.

Reported per method, mean ± std over seeds (percent unless named):
- erased: the concept's samples the classifier calls the concept (UA = 100 − erased). With the
  mutual information at zero the concept's samples are the model's unconditional ones, of which
  about a tenth are any given digit: MI-based erasure cannot go far below that share.
- others, worst: accuracy on the other classes' samples, mean and worst class.
- FD others: Fréchet distance (in the real digits' first 20 principal components) between each
  other class's samples and the original model's, from another noise draw, mean over the classes;
  the original's row is the noise floor (two draws of itself).
- FD erased: the concept's samples against the real digits of every class (how digit-like what it
  draws now is).
- Î erased, Î others: the mutual-information proxy E‖ε(x_t, c) − ε(x_t, ∅)‖² on the real test
  images of the concept and of the other classes, as a share of the original model's.
- seconds: the erasure's wall time.
"""

from __future__ import annotations

import statistics
from typing import Any

from pydantic import Field, model_validator

from yw_bench.common import distinct, installed_methods, mean_std, summarise
from yw_core.bench import Protocol, ProtocolConfig, Report, columns, configure, install_line

ORIGINAL = "original"
METRICS = ("erased", "ua", "others", "worst", "fd_others", "fd_erased", "mi_erased", "mi_others")


class EraseBenchConfig(ProtocolConfig):
    """Settings of one `bench erase` run; recorded in results.json."""

    methods: tuple[str, ...] | None = Field(
        None, description="diffusion unlearners; None = every installed one"
    )
    concept: int = Field(3, ge=0, le=9, description="the digit class to erase")
    anchor: int = Field(8, ge=0, le=9, description="the anchor class of concept ablation")
    seeds: tuple[int, ...] = Field((0, 1, 2), description="one forget set and erasure per seed")
    ddpm_seed: int = Field(0, ge=0, description="seed of the pre-trained DDPM and its data split")
    ddpm_steps: int = Field(2500, ge=1, description="training steps of the pre-trained DDPM")
    forget_samples: int = Field(256, ge=1, description="generations of the concept to erase on")
    samples_per_class: int = Field(100, ge=2, description="evaluation samples per class")
    guidance: float = Field(2.0, ge=0, description="classifier-free guidance scale w")
    lr: float = Field(1e-3, gt=0, description="every method's learning rate (AdamW)")
    epochs: int = Field(100, ge=1, description="every method's passes over the forget set")
    batch_size: int = Field(32, ge=1, description="every method's batch size")
    grid: int = Field(4, ge=0, le=16, description="samples per class shown in samples.png")
    overrides: dict[str, dict[str, Any]] = Field(
        {}, description="per-method Config overrides, NAME.FIELD=VALUE"
    )

    @model_validator(mode="after")
    def _check(self):
        object.__setattr__(self, "seeds", distinct("seeds", self.seeds, 0))
        if self.anchor == self.concept:
            raise ValueError(f"anchor must differ from the concept, both are {self.concept}")
        return self


class EraseBench(Protocol):
    """Diffusion unlearners on a digits DDPM: is the concept gone, are the others intact?"""

    name = "erase"
    summary = (
        "concept erasure in a digits DDPM: the erased class's generations, the other classes' "
        "accuracy and Fréchet distance, the MI proxy, run time"
    )
    Config = EraseBenchConfig
    presets = {"paper": {"seeds": (0, 1, 2, 3, 4), "samples_per_class": 200, "ddpm_steps": 8000}}

    def runtime_seed(self, config: EraseBenchConfig) -> int:
        return config.seeds[0]

    def run(self, config: EraseBenchConfig, *, runtime, progress: bool) -> Report:
        from tqdm.auto import tqdm

        from yw_core.runtime import Runtime

        methods = installed_methods(
            self,
            "unlearner",
            config,
            missing="no diffusion unlearner installed; bench erase compares the installed "
            "concept erasers (yw.unlearners with model_kind 'diffusion'): "
            + install_line("yw-plugin-mimmu", "yw-plugin-baselines"),
            first="mimmu",
            where=lambda cls: getattr(cls, "model_kind", "classifier") == "diffusion",
            why="unlearns classifiers, not diffusion models: run it with yw-core bench unlearn",
        )
        recipe = {
            "lr": config.lr,
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "anchor": config.anchor,
            "progress": False,
        }
        erasers = {
            name: configure(
                cls,
                recipe,
                optional=("anchor", "progress"),
                overrides=config.overrides.get(name),
            )
            for name, cls in methods.items()
        }
        world = Reference(config, runtime, progress)
        runs: dict[str, list[dict[str, Any]]] = {ORIGINAL: [], **{n: [] for n in methods}}
        grid: dict[str, list] = {}
        bar = tqdm(
            total=len(config.seeds) * (1 + len(methods)), desc="bench erase", disable=not progress
        )
        for seed in config.seeds:
            seeded = Runtime(device=config.device, seed=seed, distributed=False)
            forget = world.forget_set(seed)
            for name in runs:
                bar.set_postfix_str(f"seed {seed} {name}")
                if name == ORIGINAL:
                    model, seconds = world.ddpm, 0.0
                else:
                    seeded.seed_everything()
                    with seeded.timer() as took:
                        model = erasers[name].unlearn(world.ddpm, forget, runtime=seeded)
                    seconds = took.seconds
                row, shown = world.evaluate(model, seed)
                runs[name].append({**row, "seconds": seconds, "seed": seed})
                if seed == config.seeds[0]:
                    grid[name] = shown
                bar.update()
        bar.close()

        results: dict[str, Any] = {}
        for name, rows in runs.items():
            entry = {**summarise(rows), "runs": rows}
            if name in erasers:
                entry["config"] = erasers[name].config.model_dump(mode="json")
            results[name] = entry
            self.result(name, entry)
        facts = {
            "ddpm": world.ddpm.zoo_info["config"],
            "ddpm_train_seconds": world.ddpm.zoo_info["train_seconds"],
            "classifier": "digits-cnn",
            "classifier_test_accuracy": world.classifier.zoo_info["test_accuracy"],
            "fd_space": "PCA-20 of the real digits train split, pixels in [0, 1]",
        }
        return Report(
            results=results, manifest=facts, sections={"grid": grid} if config.grid else {}
        )

    def format_table(self, report: dict[str, Any]) -> str:
        """One row per method, mean ± std over seeds, then the notes."""
        cfg, m = report["config"], report["manifest"]
        preset = f", preset {m['preset']}" if m.get("preset") else ""
        title = (
            f"bench erase: class {cfg['concept']} from a digits DDPM (T={m['ddpm']['timesteps']}, "
            f"{m['ddpm']['steps']} steps), {cfg['forget_samples']} forget samples, "
            f"{cfg['samples_per_class']} samples/class at w={cfg['guidance']:g}, erasure: AdamW lr "
            f"{cfg['lr']:g}, {cfg['epochs']} epochs, batch {cfg['batch_size']}; seeds "
            f"{','.join(map(str, cfg['seeds']))}, device={m['runtime']['device']}{preset}"
        )
        header = [
            "method",
            "erased",
            "UA",
            "others",
            "worst",
            "FD others",
            "FD erased",
            "Î erased",
            "Î others",
            "seconds",
        ]
        rows = []
        for name, r in report["results"].items():
            rows.append(
                [name]
                + [mean_std(r, k) for k in ("erased", "ua", "others", "worst")]
                + [mean_std(r, k, 2) for k in ("fd_others", "fd_erased")]
                + [mean_std(r, k, 2) for k in ("mi_erased", "mi_others")]
                + [mean_std(r, "seconds", 1)]
            )
        notes = [
            "",
            f"erased: % of class-{cfg['concept']} samples the digits classifier "
            f"(test accuracy {m['classifier_test_accuracy']:.1%}) calls {cfg['concept']}; "
            "UA = 100 - erased; others / worst: accuracy on the other classes' samples, mean and "
            "worst class",
            "FD others: Fréchet distance (real digits' PCA-20) of each other class's samples to "
            "the original model's (another noise draw; the original row is that noise floor); "
            "FD erased: the erased class's samples against the real digits of every class",
            "Î: the MI proxy E|ε(x_t,c) - ε(x_t,∅)|² on real test images, as a share of the "
            f"original's (class {cfg['concept']}; mean over the others); ablation maps the "
            f"concept onto class {cfg['anchor']}",
        ]
        return "\n".join([title, "", *columns(header, rows), *notes]) + "\n"

    def figures(self, report: dict[str, Any]) -> dict[str, Any]:
        return {"samples.png": plot_samples(report)} if report.get("grid") else {}


class Reference:
    """What every model of the run is measured with: the pre-trained DDPM, the digits
    classifier, the PCA space, the real digits' features and the original's MI proxy."""

    def __init__(self, config: EraseBenchConfig, runtime, progress: bool):
        import torch
        from sklearn.decomposition import PCA

        from yw_core.data import load_dataset
        from yw_core.diffusion import from_unit, reference_ddpm
        from yw_core.zoo import reference_model

        self.config = c = config
        self.runtime = runtime
        self.ddpm = reference_ddpm(c.ddpm_seed, runtime, progress=progress, steps=c.ddpm_steps)
        self.classifier = reference_model(
            "digits", "digits-cnn", c.ddpm_seed, runtime, progress=progress
        )
        train = load_dataset("digits", "train", seed=c.ddpm_seed).tensors[0]
        self.pca = PCA(20, random_state=0).fit(train.flatten(1).numpy())
        self.real = self.pca.transform(train.flatten(1).numpy())
        x, y = load_dataset("digits", "test", seed=c.ddpm_seed).tensors
        self.test = runtime.to(from_unit(x)), y.long()
        self.labels = torch.arange(10).repeat_interleave(c.samples_per_class)
        self.floor = self.features(self.draw(self.ddpm, seed=10_000))  # the original, redrawn
        self.mi0 = self.mi(self.ddpm)

    def forget_set(self, seed: int):
        """`forget_samples` of the original's own generations of the concept, labelled with it."""
        import torch
        from torch.utils.data import TensorDataset

        c = self.config
        concept = torch.full((c.forget_samples,), c.concept)
        x = self.ddpm.sample(concept, c.guidance, torch.Generator().manual_seed(20_000 + seed))
        return TensorDataset(x.cpu(), concept)

    def draw(self, model, seed: int):
        import torch

        return model.sample(
            self.labels, self.config.guidance, torch.Generator().manual_seed(seed)
        ).cpu()

    def mi(self, model) -> list[float]:
        import torch

        from yw_core.erasure import mi_proxy

        x, y = self.test
        return [
            mi_proxy(model, x[(y == k).to(x.device)], y[y == k], torch.Generator().manual_seed(k))
            for k in range(10)
        ]

    def features(self, samples):
        from yw_core.diffusion import to_unit

        return self.pca.transform(to_unit(samples).flatten(1).numpy())

    def evaluate(self, model, seed: int) -> tuple[dict[str, float], list]:
        """(metrics, the first `grid` samples of every class as [0, 1] pixel lists)."""
        import torch

        from yw_core.diffusion import to_unit
        from yw_core.metrics import frechet_distance

        c = self.config
        samples = self.draw(model, seed)
        with torch.no_grad():
            pred = self.classifier(self.runtime.to(to_unit(samples))).argmax(1).cpu()
        acc = [float((pred[self.labels == k] == k).float().mean()) * 100 for k in range(10)]
        others = [k for k in range(10) if k != c.concept]
        feats, floor = self.features(samples), self.floor
        fd = {k: frechet_distance(feats[self.labels == k], floor[self.labels == k]) for k in others}
        mi = self.mi(model)
        row = {
            "erased": acc[c.concept],
            "ua": 100 - acc[c.concept],
            "others": statistics.fmean(acc[k] for k in others),
            "worst": min(acc[k] for k in others),
            "worst_class": min(others, key=lambda k: acc[k]),
            "fd_others": statistics.fmean(fd.values()),
            "fd_erased": frechet_distance(feats[self.labels == c.concept], self.real),
            "mi_erased": mi[c.concept] / self.mi0[c.concept],
            "mi_others": statistics.fmean(mi[k] / self.mi0[k] for k in others),
            "accuracy_per_class": acc,
            "fd_per_class": {str(k): v for k, v in fd.items()},
        }
        shown = [
            [
                [round(v, 3) for v in img.flatten().tolist()]
                for img in to_unit(samples[self.labels == k][: c.grid])
            ]
            for k in range(10)
        ]
        return row, shown


def plot_samples(report: dict[str, Any]):
    """samples.png: per model, `grid` samples (rows) of every class (columns), first seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = report["grid"]
    fig, axes = plt.subplots(len(grid), 1, figsize=(6, 2.6 * len(grid)), squeeze=False)
    for ax, (name, classes) in zip(axes[:, 0], grid.items(), strict=True):
        per = len(classes[0])
        tiles = np.zeros((per * 9, 10 * 9))  # white gaps between digits
        for k, images in enumerate(classes):
            for i, img in enumerate(images):
                tiles[i * 9 : i * 9 + 8, k * 9 : k * 9 + 8] = np.asarray(img).reshape(8, 8)
        ax.imshow(tiles, cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(f"{name}: classes 0-9 (columns)", fontsize=9)
        ax.set_xticks([9 * k + 3.5 for k in range(10)], [str(k) for k in range(10)], fontsize=7)
        ax.set_yticks([])
    fig.suptitle(f"bench erase: class {report['config']['concept']} erased", fontsize=10)
    fig.tight_layout()
    return fig
