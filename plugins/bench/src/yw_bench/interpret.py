"""`yw-core bench interpret`: semi-supervised network anomaly detection, and how far the
explanations of its detector can be trusted (AnomalyAID, arXiv 2411.11293, against explainers).

Per seed, one flow table (`synthetic`: `yw_core.flows.synthetic_flows`, whose anomaly kinds each
drive three planted features; or a flow file of your own, the same table for every seed), split
into train and test (stratified), the train split standardised with its own statistics and the
test split with the train's.

Detection, per label fraction: every interpreter that trains detectors (`build_model(in_features)`
and `train_detector(model, data, *, runtime)`, AnomalyAID) and each comparison row it declares
(AnomalyAID: supervised stage 1 only; standard self-training) trains a fresh model on the train
split with all but a stratified `fraction` of its labels hidden. On the test split: accuracy, F1,
AUC and SPAUC (sklearn's `roc_auc_score(max_fpr=0.05)`) of the anomaly probability [I: the
official code computes AUC and SPAUC on hard 0/1 predictions; scores are used here], and from the
training history the pseudo labels accepted and their precision against the hidden truth.

Interpretation, at `interpret_fraction` only [I: one detector per seed keeps the run short]: the
reference's detector is explained by every interpreter of the run, fitted on the data the
detector was trained on, for the test anomalies it flags (true positives, at most `explain`).
Metrics [I, in DeepAID's tradition; the paper gives no formulas]: fidelity (deletion: the share
of explained flows whose prediction flips when their top_n features are set to the benign train
mean; beside it the same with top_n random features, and with the top feature alone [I: top_n
features of ~20 often all flip]), stability (mean pairwise Jaccard of top_n
over `repeats` fits with different seeds), robustness (mean Jaccard of top_n of x and x + N(0,
noise^2), in standardised units, where the prediction does not change; both on the first
`rechecked` explained flows, to bound the cost of sampling explainers), planted precision@3
(synthetic: top-3 features against the planted features of the flow's kind), reliability-flag
precision (methods that give reliability: the share of flows with reliability >= the method's
threshold whose deletion flips, beside the share among all), seconds per explained flow.

Methods get the run's `seed` and `top_n` where their Config has such fields [I: AnomalyAID's
KAM then compares as many features as the bench scores]; `overrides` set any other field.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from yw_bench.common import distinct, installed_methods, mean_std, method_rows, summarise
from yw_core.bench import Protocol, ProtocolConfig, Report, columns, configure, install_line

DETECTION = (
    "accuracy",
    "f1",
    "auc",
    "spauc",
    "accepted",
    "pseudo_precision",
    "train_seconds",
)
INTERPRETATION = (
    "fidelity",
    "fidelity_random",
    "fidelity_1",
    "stability",
    "robustness",
    "planted",
    "flagged",
    "flag_precision",
    "explain_seconds",
    "fit_seconds",
)
PLANTED_TOP = 3  # planted features per anomaly kind in synthetic_flows
EXAMPLES = 3  # flows per interpreter in attributions.png


class InterpretBenchConfig(ProtocolConfig):
    """Settings of one `bench interpret` run; recorded in results.json."""

    methods: tuple[str, ...] | None = Field(
        None, description="interpreters; None = every installed one (the reference always runs)"
    )
    data: str = Field("synthetic", description="synthetic (seeded generator) or a flow file path")
    data_kind: Literal["csv", "nsl-kdd", "unsw-nb15", "cic-ids2017"] = Field(
        "csv", description="format of the flow file (data other than synthetic)"
    )
    flows: int = Field(3000, ge=100, description="synthetic: flows (train + test)")
    label_fractions: tuple[float, ...] = Field(
        (0.01, 0.05, 0.10), description="shares of train flows whose labels detectors see"
    )
    interpret_fraction: float = Field(
        0.05, gt=0, le=1, description="label fraction of the detector that is explained"
    )
    seeds: tuple[int, ...] = Field((0, 1, 2), description="one split, detector and fit per seed")
    test_fraction: float = Field(0.3, gt=0, lt=1, description="share of flows held out")
    top_n: int = Field(
        5, ge=1, description="top features scored; also set on methods with a top_n field"
    )
    explain: int = Field(100, ge=1, description="flagged test anomalies explained per seed")
    repeats: int = Field(3, ge=2, description="fits with different seeds, for stability")
    rechecked: int = Field(
        25, ge=1, description="explained flows re-explained for stability and robustness"
    )
    noise: float = Field(0.01, gt=0, description="robustness: Gaussian noise std (standardised)")
    reference: str = Field("anomalyaid", description="the interpreter whose detector is explained")
    variants: bool = Field(True, description="also run the comparison rows methods declare")
    overrides: dict[str, dict[str, Any]] = Field(
        {}, description="per-method Config overrides, NAME.FIELD=VALUE"
    )

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, value):
        return distinct("seeds", value, 0)

    @field_validator("label_fractions")
    @classmethod
    def _fractions(cls, value):
        value = distinct("label_fractions", value)
        if any(not 0 < f <= 1 for f in value):
            raise ValueError(f"label_fractions must lie in (0, 1], got {list(value)}")
        return value


def load_flows(config: InterpretBenchConfig, seed: int):
    """(train, test) Flows of a seed, standardised by the train split's statistics."""
    from yw_core.flows import read_flows, synthetic_flows

    if config.data == "synthetic":
        flows = synthetic_flows(config.flows, seed=seed)
    else:
        try:
            flows = read_flows(Path(config.data), kind=config.data_kind)
        except FileNotFoundError as exc:
            raise ValueError(f"data {config.data}: {exc}") from None
    if config.top_n > len(flows.names):
        raise ValueError(f"top_n {config.top_n} exceeds the {len(flows.names)} flow features")
    train, test = flows.split(config.test_fraction, seed)
    return train.standardise(), test.standardise(train)


def truth_of(flows):
    """The flows' true 0/1 labels (`truth`, else `y`); a ValueError when some are unknown."""
    truth = flows.truth if flows.truth is not None else flows.y
    if (truth < 0).any():
        raise ValueError("bench interpret needs every flow's true label; some are -1")
    return truth


def can_detect(cls: type) -> bool:
    """Whether an interpreter class trains detectors: `build_model` and `train_detector`."""
    return callable(getattr(cls, "build_model", None)) and callable(
        getattr(cls, "train_detector", None)
    )


def reseeded(runtime, seed: int):
    """A Runtime like `runtime` (device, precision) whose seed is `seed`, so that methods drawing
    from `runtime.generator()` differ per seed and repeat; creating it seeds everything."""
    from yw_core.runtime import Runtime

    return Runtime(
        device=runtime.device,
        precision=runtime.precision,
        seed=seed,
        deterministic=runtime.deterministic,
        distributed=False,
    )


def probabilities(model, x, runtime):
    """Class probabilities (N, C) of the model on x, in eval mode, on the CPU."""
    import torch

    from yw_core.models import eval_mode

    with torch.no_grad(), eval_mode(model):
        return torch.softmax(model(runtime.to(x)).float(), dim=1).cpu()


def predict(model, x, runtime):
    """Predicted classes (N,) of the model on x, on the CPU."""
    return probabilities(model, x, runtime).argmax(dim=1)


def detection_metrics(scores, truth) -> dict[str, float]:
    """Accuracy, F1 (anomaly = positive) at the 0.5 threshold, AUC and SPAUC of anomaly scores."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    scores, truth = np.asarray(scores, dtype=float), np.asarray(truth)
    if len(set(truth.tolist())) < 2:
        raise ValueError("the test split needs benign and anomalous flows")
    predicted = (scores >= 0.5).astype(int)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "f1": float(f1_score(truth, predicted, zero_division=0)),
        "auc": float(roc_auc_score(truth, scores)),
        "spauc": float(roc_auc_score(truth, scores, max_fpr=0.05)),
    }


def pseudo_label_metrics(history: dict, truth) -> dict[str, float | None]:
    """Pseudo labels accepted during training, and their precision against the hidden truth."""
    import torch

    accepted = torch.as_tensor(list(history.get("accepted", [])), dtype=torch.long)
    labels = torch.as_tensor(list(history.get("pseudo_labels", [])), dtype=torch.long)
    if len(accepted) != len(labels):
        raise ValueError(
            f"train_detector's history has {len(accepted)} accepted rows and {len(labels)} "
            "pseudo_labels"
        )
    precision = (labels == truth[accepted]).float().mean().item() if len(accepted) else None
    return {"accepted": float(len(accepted)), "pseudo_precision": precision}


def kinds_first(index, kinds):
    """The row `index` reordered so that one row of each anomaly kind comes first (the figure
    shows the first rows), the others after, each in its order."""
    import torch

    if kinds is None:
        return index
    first, rest, seen = [], [], set()
    for i in index.tolist():
        (rest if kinds[i] in seen else first).append(i)
        seen.add(kinds[i])
    return torch.tensor(first + rest, dtype=torch.long)


def deletion_flips(model, x, top, reference, target, runtime):
    """(N,) bool: whether the prediction leaves `target` when each row's `top` features (N, k)
    are set to `reference` (F,) values (the benign train mean)."""
    import torch

    deleted = x.clone()
    rows = torch.arange(len(x)).unsqueeze(1)
    deleted[rows, top] = reference[top]
    return predict(model, deleted, runtime) != target


def jaccard(a, b):
    """(N,) Jaccard similarity of the index sets in each row of a and b (N, k)."""
    import torch

    width = int(max(a.max(), b.max())) + 1 if a.numel() else 1
    in_a = torch.zeros(len(a), width, dtype=torch.bool).scatter_(1, a, True)
    in_b = torch.zeros(len(b), width, dtype=torch.bool).scatter_(1, b, True)
    union = (in_a | in_b).sum(1).clamp(min=1)
    return (in_a & in_b).sum(1) / union


def stability(tops) -> float:
    """Mean pairwise Jaccard of repeated top-n sets (a list of (N, k)) over pairs and rows."""
    import itertools

    import torch

    pairs = [jaccard(a, b).mean() for a, b in itertools.combinations(tops, 2)]
    return torch.stack(pairs).mean().item()


def planted_precision(top, kinds, planted, names) -> float | None:
    """Mean precision of each row's top features (N, k) against the planted features of its
    kind; rows whose kind plants nothing are skipped (None when none is left)."""
    index = {name: i for i, name in enumerate(names)}
    shares = [
        len(set(row.tolist()) & {index[n] for n in planted[kind]}) / top.shape[1]
        for row, kind in zip(top, kinds)
        if kind in planted
    ]
    return sum(shares) / len(shares) if shares else None


def flag_metrics(reliability, faithful, threshold: float) -> dict[str, float | None]:
    """The share of explanations flagged reliable (reliability >= threshold) and the share of
    them that are faithful (None when none is flagged)."""
    flagged = reliability >= threshold
    precision = faithful[flagged].float().mean().item() if flagged.any() else None
    return {"flagged": flagged.float().mean().item(), "flag_precision": precision}


class InterpretBench(Protocol):
    """Installed interpreters on network flows: semi-supervised detection and explanations."""

    name = "interpret"
    summary = "anomaly detection with few labels, and the fidelity/stability of its explanations"
    Config = InterpretBenchConfig
    presets = {
        # closer to the paper's data sets (tens of thousands of flows), and five seeds
        "paper": {"flows": 20000, "explain": 500, "seeds": (0, 1, 2, 3, 4)},
    }

    def runtime_seed(self, config: InterpretBenchConfig) -> int:
        return config.seeds[0]

    def methods(self, config: InterpretBenchConfig) -> dict[str, type]:
        """{name: class} of the run's interpreters, the reference first (always in the run)."""
        if config.methods is not None and config.reference not in config.methods:
            config = config.model_copy(update={"methods": (config.reference, *config.methods)})
        methods = installed_methods(
            self,
            "interpreter",
            config,
            missing="no interpreter installed; bench interpret compares the installed ones "
            "(entry-point group yw.interpreters): " + install_line("yw-plugin-anomalyaid"),
            first=config.reference,
        )
        if not can_detect(methods.get(config.reference, object)):
            raise ValueError(
                f"reference {config.reference}: bench interpret explains the detector the "
                "reference trains, so it must be an installed interpreter with build_model("
                f"in_features) and train_detector(model, data, *, runtime); installed: "
                f"{', '.join(methods) or 'none'}"
            )
        return methods

    def rows(self, config: InterpretBenchConfig, methods: dict[str, type] | None = None):
        """{row: (method name, class, overrides, label)} of the detection rows."""
        methods = self.methods(config) if methods is None else methods
        return method_rows({n: c for n, c in methods.items() if can_detect(c)}, config)

    def run(self, config: InterpretBenchConfig, *, runtime, progress: bool) -> Report:
        from tqdm.auto import tqdm

        methods = self.methods(config)
        rows = self.rows(config, methods)
        detection: dict[str, dict[str, list[dict]]] = {row: {} for row in rows}
        interpretation: dict[str, list[dict]] = {name: [] for name in methods}
        facts: dict[str, list] = {"train": [], "test": [], "anomalies": [], "explained": []}
        examples = None
        steps = len(rows) * len(config.label_fractions) + len(methods) + 1
        bar = tqdm(total=len(config.seeds) * steps, desc="bench interpret", disable=not progress)
        for seed in config.seeds:
            train, test = load_flows(config, seed)
            truth = truth_of(test)
            facts["train"].append(len(train))
            facts["test"].append(len(test))
            facts["anomalies"].append(int(truth.sum()))
            detectors = {}
            for fraction in config.label_fractions:
                for row, (name, cls, overrides, _) in rows.items():
                    bar.set_postfix_str(f"seed {seed} {row} {fraction:g}")
                    model, run = self.detect(
                        cls, overrides, (train, test), fraction, seed, config, runtime
                    )
                    detection[row].setdefault(f"{fraction:g}", []).append(run)
                    if row == config.reference:
                        detectors[fraction] = model
                    bar.update()
            fraction = config.interpret_fraction
            if fraction not in detectors:
                _, cls, overrides, _ = rows[config.reference]
                detectors[fraction], _ = self.detect(
                    cls, overrides, (train, test), fraction, seed, config, runtime
                )
            bar.update()
            detector = detectors[fraction]
            data = train.hide_labels(fraction, seed)
            flagged = (predict(detector, test.x, runtime) == 1) & (truth == 1)
            chosen = kinds_first(flagged.nonzero().flatten()[: config.explain], test.kind)
            facts["explained"].append(len(chosen))
            # the figure shows the first seed whose detector flags any test anomaly
            show = len(chosen) > 0 and not (examples and examples["attributions"])
            if show:
                examples = {**self.example_rows(test, chosen), "seed": seed}
            for name, cls in methods.items():
                bar.set_postfix_str(f"seed {seed} explain {name}")
                run, shown = self.interpret(
                    cls, config, detector, data, train, test.subset(chosen), seed, runtime
                )
                interpretation[name].append(run)
                if show and shown is not None:
                    examples["attributions"][name] = shown
                bar.update()
        bar.close()
        return Report(
            results=self.summary_rows(rows, methods, detection, interpretation, config),
            manifest=self.manifest(facts, config),
            sections={"examples": examples} if examples else {},
        )

    def detect(self, cls, overrides, splits, fraction, seed, config, runtime):
        """(trained model, run) of one detection row at one label fraction."""
        import torch

        train, test = splits
        method = self.make(cls, overrides, seed, config.top_n)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = runtime.to(method.build_model(train.x.shape[1]))
        data = train.hide_labels(fraction, seed)
        runtime = reseeded(runtime, seed)
        began = time.perf_counter()
        model, history = method.train_detector(model, data.dataset(), runtime=runtime)
        seconds = time.perf_counter() - began
        scores = probabilities(model, test.x, runtime)[:, 1]
        run = {"seed": seed, "labelled": int((data.y >= 0).sum()), "train_seconds": seconds}
        run.update(detection_metrics(scores.numpy(), truth_of(test).numpy()))
        run.update(pseudo_label_metrics(history, truth_of(train)))
        return model, run

    def make(self, cls, overrides, seed, top_n):
        """The method configured with the run's seed and top_n (where its Config has them)."""
        settings = {"seed": seed, "top_n": top_n}
        settings = {k: v for k, v in settings.items() if k not in overrides}
        return configure(cls, settings, optional=settings, overrides=overrides)

    def interpret(self, cls, config, detector, data, train, explained, seed, runtime):
        """(run, attributions of the first flows as lists) of one interpreter on one seed."""
        import torch

        overrides = dict(config.overrides.get(cls.name, {}))
        k, x = config.top_n, explained.x
        run: dict[str, Any] = {"seed": seed, "explained": len(x)}
        if len(x) == 0:
            return run, None
        target = predict(detector, x, runtime)
        m = min(config.rechecked, len(x))  # flows re-explained for stability and robustness
        tops, first = [], None
        for repeat in range(config.repeats):
            method = self.make(cls, overrides, seed + 1000 * repeat, k)
            fit_runtime = reseeded(runtime, seed + 1000 * repeat)
            began = time.perf_counter()
            method.fit(detector, data.dataset(), runtime=fit_runtime)
            fitted = time.perf_counter()
            fit_runtime.seed_everything()
            if first is None:
                first, interpreter, first_runtime = method.explain(x).check(x), method, fit_runtime
                run["fit_seconds"] = fitted - began
                run["explain_seconds"] = (time.perf_counter() - fitted) / len(x)
                tops.append(first.top_features(k)[:m].cpu())
            else:
                tops.append(method.explain(x[:m]).check(x[:m]).top_features(k).cpu())
        top = first.top_features(k).cpu()
        benign = train.x[truth_of(train) == 0].mean(dim=0)
        faithful = deletion_flips(detector, x, top, benign, target, runtime)
        gen = torch.Generator().manual_seed(seed)
        random_top = torch.stack([torch.randperm(x.shape[1], generator=gen)[:k] for _ in x])
        control = deletion_flips(detector, x, random_top, benign, target, runtime)
        run["fidelity"] = faithful.float().mean().item()
        run["fidelity_random"] = control.float().mean().item()
        alone = deletion_flips(detector, x, top[:, :1], benign, target, runtime)
        run["fidelity_1"] = alone.float().mean().item()
        run["stability"] = stability(tops)
        noisy = x[:m] + config.noise * torch.randn(x[:m].shape, generator=gen)
        kept = predict(detector, noisy, runtime) == target[:m]
        if kept.any():
            first_runtime.seed_everything()
            moved = interpreter.explain(noisy[kept]).top_features(k).cpu()
            run["robustness"] = jaccard(top[:m][kept], moved).mean().item()
        if explained.planted is not None:
            top3 = first.top_features(min(PLANTED_TOP, x.shape[1])).cpu()
            run["planted"] = planted_precision(top3, explained.kind, explained.planted, train.names)
        if first.reliability is not None:
            threshold = getattr(interpreter.config, "threshold", 0.5)
            run.update(flag_metrics(first.reliability.cpu(), faithful, threshold))
        return run, first.attributions[:EXAMPLES].cpu().tolist()

    def example_rows(self, test, chosen) -> dict[str, Any]:
        """The first explained flows of the first seed (the figure's): their kind and planted
        features."""
        rows = chosen[:EXAMPLES].tolist()
        kinds = [test.kind[i] if test.kind is not None else "anomaly" for i in rows]
        planted = test.planted or {}
        return {
            "names": list(test.names),
            "rows": [{"kind": kind, "planted": list(planted.get(kind, ()))} for kind in kinds],
            "attributions": {},
        }

    def summary_rows(self, rows, methods, detection, interpretation, config) -> dict[str, Any]:
        """results.json's rows, each method before its comparison rows: mean ± std over seeds
        and every seed's runs, of detection per label fraction and of interpretation."""
        results: dict[str, Any] = {}
        for name, cls in methods.items():
            overrides = dict(config.overrides.get(name, {}))
            results[name] = {"method": name, "label": cls.summary, "overrides": overrides}
            for row, (method, _, overrides, label) in rows.items():
                if method != name:
                    continue
                entry = results.setdefault(row, {"method": name, "label": label})
                entry["overrides"] = overrides
                entry["detection"] = {
                    fraction: {**summarise(runs, DETECTION), "runs": runs}
                    for fraction, runs in detection[row].items()
                }
            runs = interpretation[name]
            results[name]["interpretation"] = {**summarise(runs, INTERPRETATION), "runs": runs}
            for row in results:
                if results[row]["method"] == name:
                    self.result(row, results[row])
        return results

    def manifest(self, facts, config) -> dict[str, Any]:
        """The run's facts: split sizes and anomalies (means over seeds), the detector explained."""
        import statistics

        out = {key: statistics.fmean(values) for key, values in facts.items()}
        out.update(
            data=config.data,
            detector=f"{config.reference} at label fraction {config.interpret_fraction:g}",
        )
        return out

    def format_table(self, report: dict[str, Any]) -> str:
        """Detection per row and label fraction, then interpretation per interpreter."""
        cfg, m, results = report["config"], report["manifest"], report["results"]
        preset = f", preset {m['preset']}" if m.get("preset") else ""
        data = f"synthetic ({cfg['flows']} flows)" if cfg["data"] == "synthetic" else cfg["data"]
        title = (
            f"bench interpret: {data}; {m['train']:.0f} train / {m['test']:.0f} test flows, "
            f"{m['anomalies']:.0f} test anomalies (means over seeds "
            f"{','.join(map(str, cfg['seeds']))}){preset}"
        )
        header = ["row", "labels", "accuracy", "F1", "AUC", "SPAUC", "accepted", "pseudo P"]
        header.append("train s")
        table = [
            [
                row,
                f"{float(fraction):.0%}",
                *(mean_std(d, key, 3) for key in DETECTION[:4]),
                mean_std(d, "accepted", 0),
                mean_std(d, "pseudo_precision", 3),
                mean_std(d, "train_seconds", 1),
            ]
            for row, r in results.items()
            for fraction, d in r.get("detection", {}).items()
        ]
        lines = [title, "", "detection (test split):", *columns(header, table)]
        header = ["interpreter", "fidelity", "random", "top 1", "stability", "robust", "planted@3"]
        header += ["flagged", "flag P", "ms/flow"]
        table = []
        for name, r in results.items():
            i = r.get("interpretation")
            if i is None:
                continue
            ms = f"{1000 * i['explain_seconds']:.2f}" if "explain_seconds" in i else "-"
            table.append([name, *(mean_std(i, key, 3) for key in INTERPRETATION[:8]), ms])
        lines += [
            "",
            f"interpretation of the detector of {m['detector']}, {m['explained']:.0f} flagged "
            f"test anomalies per seed, top {cfg['top_n']} features:",
            *columns(header, table),
            "",
            "AUC, SPAUC (max FPR 0.05): of the anomaly probability [I: the official code uses "
            "hard predictions]; accepted, pseudo P: pseudo labels accepted in training and their "
            "precision against the hidden truth",
            "fidelity: share of flows whose prediction flips when their top features are set to "
            "the benign train mean (random: random features; top 1: the top feature alone); "
            f"stability: Jaccard of the top features over {cfg['repeats']} fits; robust: Jaccard "
            f"under noise {cfg['noise']:g}; planted@3: top-3 precision against the planted "
            "features; flagged: share with reliability >= the method's threshold; flag P: "
            "fidelity among them",
            "",
            "rows:",
            *(f"  {row}: {r['label']}" for row, r in results.items()),
        ]
        return "\n".join(lines) + "\n"

    def figures(self, report: dict[str, Any]) -> dict[str, Any]:
        examples = report.get("examples")
        if not examples or not examples["attributions"]:
            return {}
        return {"attributions.png": plot_attributions(examples)}


def plot_attributions(examples: dict[str, Any]):
    """Per-feature attributions of the first flagged test flows per interpreter; the planted
    features of each flow's kind in red."""
    from matplotlib.figure import Figure

    names, rows = examples["names"], examples["rows"]
    methods = list(examples["attributions"])
    fig = Figure(figsize=(4.2 * len(rows), 0.6 + 2.4 * len(methods)), layout="constrained")
    axes = fig.subplots(len(methods), len(rows), squeeze=False, sharex=True)
    for i, method in enumerate(methods):
        for j, row in enumerate(rows):
            ax = axes[i][j]
            values = examples["attributions"][method][j]
            colours = ["tab:red" if n in row["planted"] else "tab:grey" for n in names]
            ax.bar(range(len(names)), values, color=colours)
            ax.axhline(0, color="black", linewidth=0.5)
            ax.set_title(f"{method}: flow {j + 1} ({row['kind']})", fontsize=9)
            ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    fig.suptitle(
        f"bench interpret: attributions of flagged test flows of seed {examples.get('seed', '?')} "
        "(red: planted features)"
    )
    return fig
