"""`yw-core bench defense`: post-hoc defenses against score-based query attacks.

One reference model (trained by the zoo on first use), wrapped by each defense and by "none";
for each wrapped model: clean accuracy, argmax agreement with the undefended model, ECE, logit
distortion, per-batch overhead, and robust accuracy per attack at every query budget. Each attack
runs once per method at the largest budget: an attack's trajectory does not depend on its budget,
so robust accuracy at a smaller budget Q is read off the per-sample query counts (a sample is
robust at Q unless it was fooled within Q queries).

Two counting rules, both reported: first-fooled (a sample is fooled at the first query whose
answer is misclassified, the score-based attack literature's rule) and re-check (the final
adversarial inputs re-queried `requery` times through the defended model), which tells a
randomised defense that answers one query wrongly and the next rightly from a fooled one. The
query model says how queries are batched: "batch" (the attack's shrinking set of unfooled samples
within batches of `batch_size`) or "single" (each sample alone, as a deployed model sees it).

The default is a first look in about a minute on a laptop CPU (Square, SimBA and the adaptive
up-/bi-Square that target AAA, on 200 points to 200 queries: 40 s on 2 cores, see
docs/benchmarks.md); `--preset paper` is the full protocol (the five score-based attacks to
2,500 queries on 450 points).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from yw_core.bench import Protocol, ProtocolConfig, Report, columns, configure, pct, select
from yw_core.bench.methods import check_overrides

# Default L-inf radius per dataset, and why: see docs/benchmarks.md.
DEFAULT_EPS = {"digits": 0.2, "cifar10": 8 / 255, "cifar100": 8 / 255, "svhn": 8 / 255}
DEFAULT_ARCH = {
    "digits": "digits-cnn",
    "cifar10": "resnet18",
    "cifar100": "resnet18",
    "svhn": "resnet18",
}
SCORE_BASED = ("square", "simba", "nes", "bandits", "signhunter")
QUERY_MODELS = {
    "batch": "each attack queries its shrinking set of unfooled samples together, within batches "
    "of batch_size; re-queries use the same batches",
    "single": "each sample is attacked and re-queried alone (batch of 1), as a deployed model "
    "answering one user at a time",
}
COUNTING = {
    "first_fooled": "a sample is fooled at the first query whose answer is misclassified (the "
    "score-based attack literature's rule)",
    "recheck": "the final adversarial inputs (all samples) re-queried `requery` times through the "
    "defended model; robust accuracy = 1 - mean misclassification over samples and re-queries",
}


class DefenseBenchConfig(ProtocolConfig):
    """Settings of one `bench defense` run; recorded in results.json."""

    methods: tuple[str, ...] | None = Field(None, description="defenses; None = every post-hoc one")
    attacks: tuple[str, ...] = Field(
        ("square", "simba", "up-square", "bi-square"),
        description="score-based attacks to run (up-/bi-square: the adaptive attacks on AAA)",
    )
    queries: tuple[int, ...] = Field((50, 200), description="query budgets to report")
    dataset: str = Field("digits", description="dataset name (yw_core.data)")
    eps: float | None = Field(None, gt=0, description="L-inf radius; None = the dataset's default")
    norm: Literal["linf", "l2"] = Field("linf", description="threat model")
    n: int = Field(
        200, ge=1, description="test points attacked (at most the test split less calibration)"
    )
    calibration: int = Field(
        150,
        ge=0,
        description="held-out test points given to defenses as calibration data (e.g. AAA's "
        "temperature); the last ones of the test split, disjoint from the attacked points",
    )
    batch_size: int = Field(500, ge=1, description="samples per attack batch")
    query_model: Literal["batch", "single"] = Field(
        "batch",
        description="how queries are batched: batch = the attack's unfooled samples within "
        "batches of batch_size; single = each sample attacked and re-queried alone",
    )
    requery: int = Field(
        10,
        ge=0,
        description="re-queries of each final adversarial input for the re-check rule; 0 = off",
    )
    overrides: dict[str, dict[str, Any]] = Field(
        {}, description="per-defense Config overrides, NAME.FIELD=VALUE"
    )

    @field_validator("queries")
    @classmethod
    def _positive_queries(cls, value):
        if not value or any(q < 1 for q in value):
            raise ValueError(f"query budgets must be positive integers, got {list(value)}")
        return tuple(sorted(set(value)))

    @field_validator("attacks")
    @classmethod
    def _some_attacks(cls, value):
        if not value:
            raise ValueError("at least one attack is needed")
        return tuple(value)

    @property
    def radius(self) -> float:
        return self.eps if self.eps is not None else DEFAULT_EPS.get(self.dataset, 8 / 255)

    @property
    def query_batch(self) -> int:
        """Samples per forward under the query model."""
        return 1 if self.query_model == "single" else self.batch_size


def split_test(test, config: DefenseBenchConfig):
    """Attacked points (the first n) and calibration data (the last `calibration`), disjoint.

    Calibration must be held out: the model is nearly always right on its own training data, so
    a temperature tuned there sharpens the outputs instead of calibrating them.
    """
    from torch.utils.data import TensorDataset

    x_all, y_all = test.tensors
    available = len(x_all) - config.calibration
    if available < 1:
        raise ValueError(
            f"the {config.dataset} test split has {len(x_all)} points: too few for "
            f"{config.calibration} calibration points and at least one attacked point"
        )
    n = min(config.n, available)
    calibration = TensorDataset(x_all[available:], y_all[available:])
    return x_all[:n], y_all[:n], calibration


def check_logits(logits, x, num_classes: int | None, method: str = "the reference model") -> None:
    """A model in the protocol must map (N, ...) inputs to (N, classes) logits; name the shapes."""
    ok = logits.dim() == 2 and logits.shape[0] == x.shape[0]
    if ok and num_classes is not None:
        ok = logits.shape[1] == num_classes
    if not ok:
        want = f"({x.shape[0]}, {num_classes if num_classes is not None else 'classes'})"
        raise ValueError(
            f"{method} must return logits of shape {want} for input {tuple(x.shape)}, "
            f"got {tuple(logits.shape)}"
        )


def forward_overhead(model, defended, x, runtime, repeats: int = 5) -> dict[str, float]:
    """Median seconds per batch forward of the undefended and defended model, and their ratio."""
    import statistics

    import torch

    def median_time(m):
        times = []
        for _ in range(repeats):
            with torch.no_grad(), runtime.timer() as t:
                m(x)
            times.append(t.seconds)
        return statistics.median(times)

    base, ours = median_time(model), median_time(defended)
    return {"undefended_s": base, "defended_s": ours, "ratio": ours / base if base else None}


def attack_all(attack, defended, x, y, config, runtime, progress) -> dict[str, Any]:
    """Run one attack over all points in query-model batches at the largest budget."""
    import torch

    budget = max(config.queries)
    size = config.query_batch
    success, queries, x_adv = [], [], []
    batches = range(0, len(x), size)
    for start in progress(batches, desc=f"    {attack.name}", leave=False):
        xb, yb = x[start : start + size], y[start : start + size]
        runtime.seed_everything()
        result = attack.run(
            defended, xb, yb, eps=config.radius, norm=config.norm, budget=budget, runtime=runtime
        )
        success.append(result.success.cpu())
        queries.append(result.total_queries.cpu())
        x_adv.append(result.x_adv.detach())
    return {"success": torch.cat(success), "queries": torch.cat(queries), "x_adv": torch.cat(x_adv)}


def batched_logits(defended, x, size: int):
    """The defended model's logits on x, forwarded in batches of `size` (the query model's)."""
    import torch

    with torch.no_grad():
        return torch.cat([defended(x[i : i + size]) for i in range(0, len(x), size)])


def recheck(defended, x_adv, config, runtime):
    """(requery, N) predicted classes of the final adversarial inputs, re-queried in query-model
    batches; the seed is reset first, so the re-queries are deterministic per seed."""
    import torch

    runtime.seed_everything()
    return torch.stack(
        [
            batched_logits(defended, x_adv, config.query_batch).argmax(1).cpu()
            for _ in range(config.requery)
        ]
    )


def clean_logits(defended, x, config, name: str):
    """The defended model's logits on x, in query-model batches; under "single" a defense that
    cannot answer a batch of 1 is a ValueError naming it."""
    try:
        return batched_logits(defended, x, config.query_batch)
    except (ValueError, RuntimeError) as err:
        if config.query_model != "single":
            raise
        raise ValueError(
            f"{name} cannot answer a single query (query_model='single' sends batches of 1): {err}"
        ) from err


def curve_budgets(largest: int, points: int = 40) -> list[int]:
    """Log-spaced budgets from 1 to `largest` at which the plotted curve is read."""
    import math

    steps = [round(math.exp(math.log(largest) * i / (points - 1))) for i in range(points)]
    return sorted(set(steps))


class DefenseBench(Protocol):
    """Post-hoc defenses (and the undefended model) against score-based query attacks."""

    name = "defense"
    summary = "post-hoc defenses against score-based query attacks, robust accuracy per budget"
    Config = DefenseBenchConfig
    presets = {
        "paper": {"attacks": SCORE_BASED, "queries": (100, 1000, 2500), "n": 500},
    }

    def run(self, config: DefenseBenchConfig, *, runtime, progress: bool) -> Report:
        import torch
        from tqdm.auto import tqdm

        from yw_core import metrics
        from yw_core.data import load_dataset
        from yw_core.zoo import reference_model

        def bar(iterable, **kw):
            return tqdm(iterable, disable=not progress, **kw)

        defenses = select(
            self,
            "defense",
            config.methods,
            where=lambda cls: cls.capabilities.post_hoc,
            why="training-time defenses; bench defense compares post-hoc defenses on one "
            "trained model",
            builtin=["none"],
        )
        check_overrides(config.overrides, defenses)
        attacks = select(self, "attack", config.attacks)
        arch = DEFAULT_ARCH.get(config.dataset, "resnet18")
        model = reference_model(
            config.dataset, arch, seed=config.seed, runtime=runtime, progress=progress
        )
        model = runtime.to(model).eval()
        test = load_dataset(config.dataset, "test", seed=config.seed)
        x, y, calibration = split_test(test, config)
        x, y = runtime.to(x), runtime.to(y)
        with torch.no_grad():
            clean = model(x)
        check_logits(clean, x, num_classes=None)

        results: dict[str, Any] = {}
        timing: dict[str, Any] = {}
        for name in bar(["none", *defenses], desc="methods"):
            runtime.seed_everything()
            if name == "none":
                method_config, defended = {}, model
            else:
                method = configure(defenses[name], {}, overrides=config.overrides.get(name))
                method_config = method.config.model_dump(mode="json")
                defended = method.protect(model, data=calibration, runtime=runtime)
            runtime.seed_everything()
            logits = clean_logits(defended, x, config, name)
            check_logits(logits, x, num_classes=clean.shape[1], method=name)
            probs = logits.float().softmax(1)
            entry: dict[str, Any] = {
                "config": method_config,
                "clean_accuracy": metrics.accuracy(logits, y),
                "argmax_agreement": metrics.argmax_agreement(logits, clean),
                "logit_distortion": metrics.logit_distortion(logits, clean),
                "ece": metrics.expected_calibration_error(probs, y),
                "reliability": metrics.reliability_bins(probs, y),
                "attacks": {},
            }
            timing[name] = {"forward": forward_overhead(model, defended, x, runtime)}
            correct = (logits.argmax(1) == y).cpu()
            largest = max(config.queries)
            final = {}
            for attack_name, attack_cls in attacks.items():
                with runtime.timer() as t:
                    raw = attack_all(attack_cls(), defended, x, y, config, runtime, bar)
                success, queries = raw["success"], raw["queries"]
                final[attack_name] = raw["x_adv"]
                entry["attacks"][attack_name] = {
                    "robust_accuracy": {
                        str(q): metrics.robust_accuracy(success, queries, q) for q in config.queries
                    },
                    "curve": {
                        str(q): metrics.robust_accuracy(success, queries, q)
                        for q in curve_budgets(largest)
                    },
                    "success_rate": metrics.success_rate(success, queries, largest, correct),
                    "queries": metrics.query_stats(success, queries, largest, correct),
                }
                timing[name][attack_name + "_s"] = t.seconds
            # after every attack, so the re-queries cannot change a stateful defense's attacks
            for attack_name, x_adv in final.items():
                entry["attacks"][attack_name]["recheck"] = None
                if config.requery:
                    with runtime.timer() as t:
                        predictions = recheck(defended, x_adv, config, runtime)
                    entry["attacks"][attack_name]["recheck"] = {
                        "robust_accuracy": metrics.recheck_accuracy(predictions, y),
                        "rates": metrics.recheck_rates(predictions, y),
                    }
                    timing[name][attack_name + "_recheck_s"] = t.seconds
            results[name] = entry
            self.result(name, entry)
        facts = {
            "seed": config.seed,
            "eps": config.radius,
            "arch": arch,
            "n": int(len(x)),
            "calibration": config.calibration,
            "counting": {
                "first_fooled": COUNTING["first_fooled"],
                "recheck": COUNTING["recheck"] if config.requery else "off (requery=0)",
            },
            "query_model": {
                "name": config.query_model,
                "batch": config.query_batch,
                "description": QUERY_MODELS[config.query_model],
            },
            "capabilities": {
                name: cls.capabilities.model_dump(mode="json") for name, cls in defenses.items()
            },
        }
        return Report(results=results, manifest=facts, sections={"timing": timing})

    def format_table(self, report: dict[str, Any]) -> str:
        """One table of clean metrics, one of robust accuracy per attack and budget."""
        results, m, cfg = report["results"], report["manifest"], report["config"]
        budgets = [str(q) for q in cfg["queries"]]
        requery = cfg.get("requery", 0)
        clean_rows, attack_rows = [], []
        for name, r in results.items():
            ratio = report.get("timing", {}).get(name, {}).get("forward", {}).get("ratio")
            clean_rows.append(
                [
                    name,
                    "",
                    pct(r["clean_accuracy"]),
                    pct(r["argmax_agreement"]),
                    f"{100 * r['ece']:.2f}",
                    f"{r['logit_distortion']:.3f}",
                    f"{ratio:.2f}x" if ratio else "-",
                ]
            )
            for attack, a in r["attacks"].items():
                mean, median = a["queries"]["mean"], a["queries"]["median"]
                rechecked = a.get("recheck")
                attack_rows.append(
                    [name, attack]
                    + [pct(a["robust_accuracy"][q]) for q in budgets]
                    + ([pct(rechecked["robust_accuracy"]) if rechecked else "-"] if requery else [])
                    + [
                        pct(a["success_rate"]),
                        "-" if mean is None else f"{mean:.0f}",
                        "-" if median is None else f"{median:.0f}",
                    ]
                )
        preset = f", preset {m['preset']}" if m.get("preset") else ""
        title = (
            f"bench defense: {cfg['dataset']} ({m['arch']}), n={m['n']}, {cfg['norm']} "
            f"eps={m['eps']:.4g}, seed={m['seed']}, device={m['runtime']['device']}{preset}"
        )
        clean = columns(
            ["method", "", "clean %", "agree %", "ECE %", "distortion", "overhead"], clean_rows
        )
        recheck_column = [f"re-check x{requery}"] if requery else []
        robust = columns(
            ["method", "attack"]
            + [f"@{q}" for q in budgets]
            + recheck_column
            + ["success %", "mean q", "median q"],
            attack_rows,
        )
        query_model = m.get("query_model", {}).get("name", "batch")
        note = (
            "robust accuracy (%) at each query budget; success rate and queries of successes "
            "at the largest budget"
        )
        rules = "counting: @Q first-fooled (fooled at its first misclassified answer within Q)"
        if requery:
            rules += (
                f"; re-check x{requery}: the final adversarial inputs (@{budgets[-1]}) re-queried "
                f"{requery} times, 100 - mean % misclassified"
            )
        rules += f"\nquery model: {query_model} ({QUERY_MODELS[query_model]})"
        return "\n".join([title, "", *clean, "", note, rules, *robust]) + "\n"

    def figures(self, report: dict[str, Any]) -> dict[str, Any]:
        from yw_core import metrics

        figures = {"robust_accuracy.png": plot_robust_accuracy(report)}
        for name, r in report["results"].items():
            fig = metrics.plot_reliability(r["reliability"], title=f"reliability: {name}")
            figures[f"reliability_{name}.png"] = fig
        return figures


def plot_robust_accuracy(report: dict[str, Any]):
    """Robust accuracy against query budget: one panel per attack, one line per method."""
    from matplotlib.figure import Figure

    results = report["results"]
    attacks = list(next(iter(results.values()))["attacks"])
    ncols = min(3, len(attacks))
    nrows = -(-len(attacks) // ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(attacks) :]:
        ax.set_visible(False)
    for ax, attack in zip(axes, attacks, strict=False):
        for i, (name, r) in enumerate(results.items()):
            color = f"C{i}"
            curve = r["attacks"][attack]["curve"]
            ax.step(
                [int(q) for q in curve],
                [100 * v for v in curve.values()],
                where="post",
                color=color,
                label=name,
            )
            marks = r["attacks"][attack]["robust_accuracy"]
            ax.plot([int(q) for q in marks], [100 * v for v in marks.values()], "o", color=color)
        ax.set_xscale("log")
        ax.set_ylim(0, 100)
        ax.set_xlabel("queries per sample")
        ax.set_ylabel("robust accuracy (%)")
        ax.set_title(attack)
        ax.grid(True, alpha=0.3)
    axes[0].legend(title="defense")
    m = report["manifest"]
    fig.suptitle(
        f"{report['config']['dataset']}, {report['config']['norm']} eps={m['eps']:.3g}, n={m['n']}"
    )
    return fig
