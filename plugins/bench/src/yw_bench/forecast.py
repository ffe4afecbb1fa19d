"""`yw-core bench forecast`: which IPC code pairs converge next, scored against what happened.

Per seed, one patent table (`synthetic`: `yw_core.patent_synth` with that seed, whose process
gives every pair's true convergence probability; or a patent CSV/Parquet file of your own, the
same table for every seed). The last `window` years are the future: every installed Forecaster,
and each comparison row it declares (tcforecast: one feature block alone, no imbalance handling,
one model instead of the two-stage ensemble), is fitted on the patents before them and scores
the pairs of codes that no patent before them carries; a pair is positive when some patent of
the future window carries both codes.

Reported per row, mean ± std over seeds: AUC, AUPR (average precision), KS (max TPR - FPR) and,
at the row's own decision threshold when it has one (tcforecast's `threshold`, chosen on its
training data by the paper's Cost), Cost = FPR + theta*FNR, precision, recall and F1; fit
seconds. On synthetic data a `truth` row scores the pairs by the process's own probability (the
ceiling). Then, on the first seed, the reference method's firm-specific opportunities: its top
predicted pairs for the firm (the synthetic focal firm, or the file's largest assignee), their
type by the codes the firm holds, and the topic pairs they refine into, ranked by the paper's
formula and by the judge (`formula`: the offline stand-in, not an LLM; or any `llm` model id).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from yw_bench.common import distinct, installed_methods, mean_std, method_rows, summarise
from yw_core.bench import Protocol, ProtocolConfig, Report, columns, configure, install_line

METRICS = ("auc", "aupr", "ks", "cost", "precision", "recall", "f1", "fit_seconds")
TOPIC_ROWS = 10  # topic pairs shown in the table


class ForecastBenchConfig(ProtocolConfig):
    """Settings of one `bench forecast` run; recorded in results.json."""

    methods: tuple[str, ...] | None = Field(
        None, description="forecasters; None = every installed one"
    )
    data: str = Field(
        "synthetic", description="synthetic (seeded generator) or the path of a patent CSV/Parquet"
    )
    codes: int = Field(50, ge=3, le=50, description="synthetic: IPC subclasses")
    first_year: int = Field(2006, ge=1900, le=2100, description="synthetic: first year")
    last_year: int = Field(
        2023, ge=1900, le=2100, description="synthetic: last year (the paper's data: 2006-2023)"
    )
    patents_per_year: int = Field(250, ge=10, description="synthetic: patents of the first year")
    window: int = Field(3, ge=1, description="years per window; the last window is the future")
    seeds: tuple[int, ...] = Field((0, 1, 2), description="one data set and fit per seed")
    theta: float = Field(1.0, gt=0, description="Cost = FPR + theta*FNR")
    firm: str | None = Field(
        None, description="firm of the opportunities; None: synthetic focal firm / top assignee"
    )
    top_pairs: int = Field(3, ge=0, description="predicted pairs refined into topic pairs")
    judge: str = Field("formula", description="formula (offline, not an LLM) or an llm model id")
    variants: bool = Field(True, description="also run the comparison rows methods declare")
    reference: str = Field("tcforecast", description="the row whose opportunities are shown")
    overrides: dict[str, dict[str, Any]] = Field(
        {}, description="per-method Config overrides, NAME.FIELD=VALUE"
    )

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, value):
        return distinct("seeds", value, 0)


def load_patents(config: ForecastBenchConfig, seed: int):
    """(patents, process or None, focal firm or None) of a seed."""
    from yw_core.patent_synth import synthetic_patents
    from yw_core.patents import read_patents

    if config.data == "synthetic":
        synth = synthetic_patents(
            codes=config.codes,
            years=(config.first_year, config.last_year),
            patents_per_year=config.patents_per_year,
            seed=seed,
        )
        return synth.records, synth, synth.focal_firm
    try:
        return read_patents(Path(config.data)), None, None
    except FileNotFoundError as exc:
        raise ValueError(f"data {config.data}: {exc}") from None


def split(patents, window: int):
    """(history, query, labels, start): the patents before the last `window` years, the pairs
    unconnected in them as a (year, a, b) query, and whether each converges in the window."""
    import numpy as np

    from yw_core.interfaces import Records
    from yw_core.patents import check_patents

    patents = check_patents(patents)
    start = max(patents["year"]) - window + 1
    keep = [i for i, y in enumerate(patents["year"]) if y < start]
    if not keep:
        raise ValueError(f"no patent before {start}: the data has no history before its window")
    history = Records({c: [patents[c][i] for i in keep] for c in patents.columns})
    codes = sorted({c for i in keep for c in patents["ipc"][i]})
    before = _pairs(history["ipc"])
    future = _pairs(codes_ for y, codes_ in zip(patents["year"], patents["ipc"]) if y >= start)
    pairs = [(a, b) for i, a in enumerate(codes) for b in codes[i + 1 :] if (a, b) not in before]
    labels = np.array([p in future for p in pairs], dtype=int)
    if labels.sum() == 0 or labels.sum() == len(labels):
        raise ValueError(
            f"{int(labels.sum())} of {len(pairs)} unconnected pairs converge in {start}-"
            f"{start + window - 1}: the metrics need both outcomes"
        )
    query = Records(
        {"year": [start] * len(pairs), "a": [a for a, _ in pairs], "b": [b for _, b in pairs]}
    )
    return history, query, labels, start


def scores_metrics(scores, labels, theta: float, threshold: float | None) -> dict[str, float]:
    """AUC, AUPR, KS, and at `threshold` (when given) Cost, precision, recall and F1."""
    from yw_core import metrics

    out = {
        "auc": metrics.roc_auc(scores, labels),
        "aupr": metrics.average_precision(scores, labels),
        "ks": metrics.ks_statistic(scores, labels),
    }
    if threshold is not None:
        predicted = scores >= threshold
        out["cost"] = metrics.cost(predicted, labels, theta)
        out.update(metrics.precision_recall_f1(predicted, labels))
    return out


class ForecastBench(Protocol):
    """Installed forecasters on patents: which unconnected IPC pairs converge next."""

    name = "forecast"
    summary = "technology convergence: AUC, AUPR, KS, Cost, P/R/F1 of IPC-pair forecasts"
    Config = ForecastBenchConfig
    presets = {
        # closer to the paper's data (58,000 patents of 2006-2023 in three-year windows):
        # 1,000 patents in the first year (about 26,000 in all), and five seeds
        "paper": {"patents_per_year": 1000, "seeds": (0, 1, 2, 3, 4)},
    }

    def runtime_seed(self, config: ForecastBenchConfig) -> int:
        return config.seeds[0]

    def rows(self, config: ForecastBenchConfig):
        """{row: (method name, class, overrides, label)} of every forecaster row."""
        methods = installed_methods(
            self,
            "forecaster",
            config,
            missing="no forecaster installed; bench forecast compares the installed ones "
            "(entry-point group yw.forecasters): " + install_line("yw-plugin-tcforecast"),
            first=config.reference,
        )
        return method_rows(methods, config)

    def run(self, config: ForecastBenchConfig, *, runtime, progress: bool) -> Report:
        import numpy as np
        from tqdm.auto import tqdm

        rows = self.rows(config)
        runs: dict[str, list[dict]] = {}
        facts: dict[str, Any] = {"pairs": [], "positives": [], "window": []}
        opportunities = None
        bar = tqdm(total=len(config.seeds) * len(rows), desc="bench forecast", disable=not progress)
        for seed in config.seeds:
            patents, synth, focal = load_patents(config, seed)
            history, query, labels, start = split(patents, config.window)
            facts["pairs"].append(len(labels))
            facts["positives"].append(int(labels.sum()))
            facts["window"] = [start, start + config.window - 1]
            if synth is not None:
                pairs = list(zip(query["a"], query["b"]))
                truth = synth.convergence_probability(pairs, start, start + config.window - 1)
                runs.setdefault("truth", []).append(
                    {"seed": seed, **scores_metrics(truth, labels, config.theta, None)}
                )
            for row, (name, cls, overrides, _) in rows.items():
                bar.set_postfix_str(f"seed {seed} {row}")
                settings = {"window": config.window, "seed": seed, "theta": config.theta}
                settings = {k: v for k, v in settings.items() if k not in overrides}
                method = configure(cls, settings, optional=settings, overrides=overrides)
                began = time.perf_counter()
                method.fit(history)
                scores = method.predict(query).double().numpy()
                seconds = time.perf_counter() - began
                threshold = getattr(method, "threshold", None)
                run = scores_metrics(scores, labels, config.theta, threshold)
                runs.setdefault(row, []).append({"seed": seed, "fit_seconds": seconds, **run})
                if row == config.reference and seed == config.seeds[0] and config.top_pairs:
                    opportunities = self.opportunities(method, history, focal, config, query)
                    if opportunities is not None:
                        truth_of = dict(zip(zip(query["a"], query["b"]), labels.tolist()))
                        for pair in opportunities["pairs"]:
                            pair["converged"] = truth_of.get(tuple(pair["pair"]))
                bar.update()
        bar.close()

        results: dict[str, Any] = {}
        for row, rs in runs.items():
            name, _, overrides, label = rows.get(
                row, (None, None, {}, "the process's own convergence probability (the ceiling)")
            )
            entry = {"method": name, "label": label, "overrides": overrides}
            entry.update(summarise(rs, METRICS), runs=rs)
            results[row] = entry
            self.result(row, entry)
        facts.update(
            pairs=float(np.mean(facts["pairs"])),
            positives=float(np.mean(facts["positives"])),
            data=config.data,
        )
        sections = {"opportunities": opportunities} if opportunities else {}
        return Report(results=results, manifest=facts, sections=sections)

    def opportunities(self, method, history, focal, config, query) -> dict | None:
        """The reference method's firm-specific opportunities, when it offers them."""
        from collections import Counter

        find = getattr(method, "opportunities", None)
        if not callable(find):
            return None
        firm = config.firm or focal or Counter(history["assignee"]).most_common(1)[0][0]
        return find(firm, pairs=config.top_pairs, judge=config.judge)

    def format_table(self, report: dict[str, Any]) -> str:
        """Forecast quality per row (mean ± std over seeds), then the opportunities."""
        cfg, m = report["config"], report["manifest"]
        preset = f", preset {m['preset']}" if m.get("preset") else ""
        data = (
            f"synthetic ({cfg['codes']} codes, {cfg['first_year']}-{cfg['last_year']}, "
            f"{cfg['patents_per_year']} patents in the first year)"
            if cfg["data"] == "synthetic"
            else cfg["data"]
        )
        window = m.get("window") or ["?", "?"]
        title = (
            f"bench forecast: {data}; forecast window {window[0]}-{window[1]}; "
            f"{m['pairs']:.0f} unconnected pairs, {m['positives']:.1f} converge (mean over "
            f"seeds {','.join(map(str, cfg['seeds']))}); theta {cfg['theta']:g}{preset}"
        )
        header = ["row", "AUC", "AUPR", "KS", "Cost", "precision", "recall", "F1", "fit s"]
        table = [
            [
                row,
                *(mean_std(r, k, 3) for k in METRICS[:-1]),
                mean_std(r, "fit_seconds", 1),
            ]
            for row, r in report["results"].items()
        ]
        labels = [f"  {row}: {r['label']}" for row, r in report["results"].items()]
        notes = [
            "Cost, precision, recall, F1: at the row's own threshold; fit s: fit and predict "
            "(tcforecast computes a seed's features once, in its first row, and reuses them)",
        ]
        lines = [title, "", *columns(header, table), "", *notes, "", "rows:", *labels]
        if opp := report.get("opportunities"):
            lines += ["", *format_opportunities(opp)]
        return "\n".join(lines) + "\n"

    def figures(self, report: dict[str, Any]) -> dict[str, Any]:
        return {"forecast_quality.png": plot_quality(report)}


def format_opportunities(opp: dict[str, Any]) -> list[str]:
    """The opportunities section of the table: pairs, then topic pairs by formula and judge."""
    lines = [
        f"opportunities for {opp['firm']} (judge: {opp['judge']}; ranking agreement with the "
        f"formula, Spearman: {_num(opp.get('agreement'), 2)})",
    ]
    pair_rows = [
        [
            f"{p['pair'][0]}-{p['pair'][1]}",
            p["type"],
            f"{p['score']:.3f}",
            {1: "yes", 0: "no", None: "-"}[p.get("converged")],
        ]
        for p in opp["pairs"]
    ]
    lines += columns(["pair", "type", "score", "converged"], pair_rows)
    topic_rows = [
        [
            f"{t['firm_code']}-{t['firm_topic']} x {t['target_code']}-{t['target_topic']}",
            " ".join(t["firm_terms"][:3]) + " | " + " ".join(t["target_terms"][:3]),
            f"{t['fusion']:.2f}",
            f"{t['develop']:.2f}",
            f"{t['score']:.2f}",
            f"{t['judge_score']:.1f}",
        ]
        for t in opp["topics"][:TOPIC_ROWS]
    ]
    if topic_rows:
        header = ["topic pair", "terms (firm | target)", "fusion", "develop", "score", "judge"]
        lines += ["", *columns(header, topic_rows)]
        if len(opp["topics"]) > TOPIC_ROWS:
            lines.append(f"(the best {TOPIC_ROWS} of {len(opp['topics'])}; all in results.json)")
    return lines


def plot_quality(report: dict[str, Any]):
    """AUPR and KS per row (mean ± std over seeds)."""
    from matplotlib.figure import Figure

    results = report["results"]
    names = list(results)
    fig = Figure(figsize=(10.4, 0.9 + 0.35 * len(names)), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, title in zip(axes, ("aupr", "ks"), ("AUPR", "KS")):
        values = [results[n].get(key, 0.0) for n in names]
        spread = [results[n].get(f"{key}_std", 0.0) for n in names]
        colours = ["grey" if n == "truth" else "tab:blue" for n in names]
        ax.barh(names, values, xerr=spread, color=colours)
        ax.set_xlabel(f"{title} (mean ± std over seeds)")
        ax.set_xlim(0, 1)
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].invert_yaxis()
    fig.suptitle("bench forecast: which unconnected IPC pairs converge in the next window")
    return fig


def _pairs(ipc_lists) -> set[tuple[str, str]]:
    return {
        (a, b)
        for codes in ipc_lists
        for a in sorted(set(codes))
        for b in sorted(set(codes))
        if a < b
    }


def _num(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
