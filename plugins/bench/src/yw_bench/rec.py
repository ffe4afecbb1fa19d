"""`yw-core bench rec`: click models on one log: AUC, log-loss, serving latency and FLOPs.

Per seed, one click log (`synthetic`: the seeded generator of `yw_bench.rec_data`, whose true
click probabilities give the ceiling; `movielens`: MovieLens-100k when on disk), split by
request into train and test. Every installed RecModel, and each comparison row it declares
(`variants`, e.g. UG-Sep without Information Compensation), is built from the same schema with
the protocol's model sizes, trained from its seed with Adam and binary cross-entropy, and scored
on the test impressions: AUC, log-loss, and gAUC (the per-request AUC averaged over requests
with both clicks and non-clicks, weighted by impressions; RankMixer's UAUC). A model that offers
`w8a16()` also gets a `+w8a16` row: the trained model with int8 weights, not retrained.

Serving is timed on the seed's trained models through `serve(user, candidates)`: one test user
against 1, 100 and 1,000 candidates, the rows interleaved in each repeat so that machine noise
falls on all alike, the median per row; ratios (and ΔAUC) are to the `reference` row, plain
RankMixer (`rankmixer`) by default, when it runs. FLOPs per request are counted by torch's
FlopCounterMode on the same calls (matmuls; element-wise work is not counted); a `+w8a16` row
does the same arithmetic as its model and is given its model's count.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Literal

from pydantic import Field, field_validator

from yw_bench.common import distinct, installed_methods, mean_std, method_rows, summarise
from yw_core.bench import (
    Protocol,
    ProtocolConfig,
    Report,
    columns,
    configure,
    install_line,
)

SIZES = ("tokens", "width", "layers")
QUALITY_KEYS = ("auc", "logloss", "gauc", "train_seconds")


class RecBenchConfig(ProtocolConfig):
    """Settings of one `bench rec` run; recorded in results.json."""

    methods: tuple[str, ...] | None = Field(
        None, description="rec models; None = every installed one"
    )
    data: Literal["synthetic", "movielens"] = Field(
        "synthetic", description="synthetic (seeded generator) or movielens (100k, on disk)"
    )
    requests: int = Field(1250, ge=2, description="synthetic: requests (train + test)")
    candidates: int = Field(100, ge=1, description="synthetic: impressions per request")
    interaction: float = Field(
        1.5, ge=0, description="synthetic: weight of the user x item latent interaction"
    )
    test_fraction: float = Field(0.2, gt=0, lt=1, description="share of requests held out")
    tokens: int = Field(8, ge=2, description="model setting: tokens T")
    width: int = Field(64, ge=2, description="model setting: token width D")
    layers: int = Field(2, ge=1, description="model setting: mixer layers L")
    epochs: int = Field(2, ge=1, description="passes over the train impressions")
    batch_size: int = Field(1024, ge=1, description="impressions per Adam step")
    lr: float = Field(3e-3, gt=0, description="Adam learning rate")
    seeds: tuple[int, ...] = Field((0, 1, 2), description="one log split and model per seed")
    latency_candidates: tuple[int, ...] = Field(
        (1, 100, 1000), description="candidates per timed request"
    )
    latency_repeats: int = Field(20, ge=1, description="timed calls per row and size")
    w8a16: bool = Field(True, description="add a +w8a16 row for models that offer w8a16()")
    variants: bool = Field(True, description="also run the comparison rows models declare")
    reference: str = Field(
        "rankmixer", description="the row ΔAUC and latency ratios are taken to, when it runs"
    )
    overrides: dict[str, dict[str, Any]] = Field(
        {}, description="per-method Config overrides, NAME.FIELD=VALUE"
    )

    @field_validator("seeds", "latency_candidates")
    @classmethod
    def _distinct(cls, value, info):
        return distinct(info.field_name, value, 0 if info.field_name == "seeds" else 1)


def load_log(config: RecBenchConfig, seed: int):
    """(train, test) ClickLogs of a seed; a ValueError when MovieLens is not on disk."""
    from yw_bench.rec_data import movielens_100k, synthetic_click_log

    if config.data == "synthetic":
        log = synthetic_click_log(
            config.requests, config.candidates, interaction=config.interaction, seed=seed
        )
    else:
        try:
            log = movielens_100k()
        except FileNotFoundError as exc:
            raise ValueError(f"data movielens: {exc}") from None
    return log.split(config.test_fraction, seed)


def train(module, log, config: RecBenchConfig, seed: int, runtime) -> float:
    """Adam on binary cross-entropy over `epochs` shuffled passes; returns the seconds taken."""
    import torch
    import torch.nn.functional as F

    optimizer = torch.optim.Adam(module.parameters(), lr=config.lr)
    order = torch.Generator().manual_seed(seed)
    module.train()
    start = time.perf_counter()
    for _ in range(config.epochs):
        for user, items, labels in log.batches(config.batch_size, order):
            user, items, labels = runtime.to((user, items, labels))
            loss = F.binary_cross_entropy_with_logits(module(user, items), labels)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"the training loss is {loss.item()}")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    module.eval()
    return time.perf_counter() - start


def predict(module, log, runtime, batch: int = 8192):
    """Logits of every impression of the log, in order, on the CPU."""
    import torch

    users = log.user_rows()
    out = []
    with torch.no_grad():
        for i in range(0, len(log), batch):
            part = slice(i, i + batch)
            user = runtime.to({k: v[part] for k, v in users.items()})
            items = runtime.to({k: v[part] for k, v in log.items.items()})
            out.append(module(user, items).float().cpu())
    return torch.cat(out)


def auc(scores, labels) -> float:
    """ROC AUC of scores against 0/1 labels (ties count half)."""
    from yw_core import metrics

    return metrics.auroc(scores[labels == 1], scores[labels == 0])


def quality(logits, log) -> dict[str, float]:
    """AUC, log-loss and gAUC of logits on a log."""
    import torch.nn.functional as F

    labels = log.labels
    weighted, total = 0.0, 0
    for start, stop in log.request_slices():
        y = labels[start:stop]
        if 0 < int(y.sum()) < len(y):
            weighted += auc(logits[start:stop], y) * len(y)
            total += len(y)
    return {
        "auc": auc(logits, labels),
        "logloss": float(F.binary_cross_entropy_with_logits(logits, labels)),
        "gauc": weighted / total if total else None,
    }


def request(log, candidates: int, runtime):
    """One timed request: the log's first user against `candidates` of its items (cycled)."""
    import torch

    rows = torch.arange(candidates) % len(log)
    user = {k: v[:1] for k, v in log.users.items()}
    return runtime.to(user), runtime.to({k: v[rows] for k, v in log.items.items()})


def time_serving(modules: dict[str, Any], log, config: RecBenchConfig, runtime):
    """{row: {C: median ms}} and {row: {C: FLOPs}} of serve(), rows interleaved per repeat."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    sync = torch.cuda.synchronize if runtime.device.type == "cuda" else (lambda: None)
    times: dict[str, dict[int, list[float]]] = {r: {} for r in modules}
    flops: dict[str, dict[int, int]] = {r: {} for r in modules}
    with torch.no_grad():
        for c in config.latency_candidates:
            user, items = request(log, c, runtime)
            for row, module in modules.items():
                with FlopCounterMode(display=False) as counter:
                    module.serve(user, items)
                flops[row][c] = counter.get_total_flops()
                for _ in range(3):  # warm-up
                    module.serve(user, items)
            for _ in range(config.latency_repeats):
                for row, module in modules.items():
                    sync()
                    start = time.perf_counter()
                    module.serve(user, items)
                    sync()
                    times[row].setdefault(c, []).append(1000 * (time.perf_counter() - start))
    medians = {r: {c: statistics.median(ts) for c, ts in by_c.items()} for r, by_c in times.items()}
    return medians, flops


class RecBench(Protocol):
    """Installed rec models on one click log: quality, serving latency and FLOPs per request."""

    name = "rec"
    summary = "click models: AUC, log-loss, gAUC; serving latency and FLOPs per request"
    Config = RecBenchConfig
    presets = {
        # the spec's CPU plan for quality: 2,000 train and 500 test requests of 100, Config S
        # (the default sizes), 3 epochs of Adam lr 1e-3; latency over the plan's candidate counts
        "paper": {
            "requests": 2500,
            "epochs": 3,
            "lr": 1e-3,
            "latency_candidates": (1, 8, 32, 128, 512, 1000),
        }
    }

    def runtime_seed(self, config: RecBenchConfig) -> int:
        return config.seeds[0]

    def rows(self, config: RecBenchConfig):
        """{row: (method name, class, overrides, label)} of every model row to train."""
        methods = installed_methods(
            self,
            "rec_model",
            config,
            missing="no rec model installed; bench rec compares the installed ones (entry-point "
            "group yw.rec_models): " + install_line("yw-plugin-ugsep"),
            first=config.reference,
        )
        return method_rows(methods, config)

    def run(self, config: RecBenchConfig, *, runtime, progress: bool) -> Report:
        import torch
        from tqdm.auto import tqdm

        from yw_core.runtime import Runtime

        rows = self.rows(config)
        settings = {k: getattr(config, k) for k in SIZES}
        runs: dict[str, list[dict]] = {}
        served: dict[str, Any] = {}
        facts: dict[str, Any] = {"threads": torch.get_num_threads(), "truth_auc": []}
        bar = tqdm(total=len(config.seeds) * len(rows), desc="bench rec", disable=not progress)
        for seed in config.seeds:
            seeded = Runtime(device=config.device, seed=seed, distributed=False)
            train_log, test_log = load_log(config, seed)
            if test_log.truth is not None:
                facts["truth_auc"].append(auc(test_log.truth, test_log.labels))
            for row, (_, cls, overrides, _) in rows.items():
                bar.set_postfix_str(f"seed {seed} {row}")
                method = configure(cls, settings, optional=SIZES, overrides=overrides)
                seeded.seed_everything()
                module = seeded.to(method.build(train_log.schema))
                seconds = train(module, train_log, config, seed, seeded)
                logits = predict(module, test_log, seeded)
                run = {"seed": seed, "train_seconds": seconds, **quality(logits, test_log)}
                run["params"] = sum(p.numel() for p in module.parameters())
                runs.setdefault(row, []).append(run)
                quantise = getattr(module, "w8a16", None) if config.w8a16 else None
                if callable(quantise):
                    q_module = quantise()
                    q_logits = predict(q_module, test_log, seeded)
                    runs.setdefault(f"{row}+w8a16", []).append(
                        {
                            "seed": seed,
                            **quality(q_logits, test_log),
                            "max_logit_change": float((q_logits - logits).abs().max()),
                        }
                    )
                if seed == config.seeds[0]:
                    served[row] = module
                    if callable(quantise):
                        served[f"{row}+w8a16"] = q_module
                bar.update()
            if seed == config.seeds[0]:
                timing_log, timing_runtime = test_log, seeded
        bar.close()
        bar = tqdm(total=1, desc="bench rec: serving", disable=not progress)
        latency, flops = time_serving(served, timing_log, config, timing_runtime)
        for row in flops:  # FlopCounterMode does not see fused int8 kernels; the math is the same
            if row.endswith("+w8a16"):
                flops[row] = flops[row.removesuffix("+w8a16")]
        bar.update()
        bar.close()

        reference = config.reference if config.reference in latency else None
        results: dict[str, Any] = {}
        for row, rs in runs.items():
            base = row.removesuffix("+w8a16")
            name, _, overrides, label = rows[base]
            entry = {
                "method": name,
                "label": label + (", weights int8 (W8A16), not retrained" if row != base else ""),
                "overrides": overrides,
                **summarise(rs, (*QUALITY_KEYS, "max_logit_change")),
                "params": rs[0].get("params"),
                "latency_ms": {str(c): ms for c, ms in latency[row].items()},
                "flops": {str(c): f for c, f in flops[row].items()},
                "latency_ratio": {
                    str(c): ms / latency[reference][c] for c, ms in latency[row].items()
                }
                if reference
                else None,
                "runs": rs,
            }
            results[row] = entry
            self.result(row, entry)
        facts["truth_auc"] = statistics.fmean(facts["truth_auc"]) if facts["truth_auc"] else None
        facts.update(
            train_impressions=len(train_log),
            test_impressions=len(test_log),
            test_requests=test_log.n_requests,
            timing_user_row=0,
            reference=reference,
        )
        return Report(results=results, manifest=facts)

    def format_table(self, report: dict[str, Any]) -> str:
        """Quality (mean ± std over seeds) and serving (seed 0's models) per row."""
        cfg, m = report["config"], report["manifest"]
        preset = f", preset {m['preset']}" if m.get("preset") else ""
        data = (
            f"synthetic ({cfg['requests']} requests x {cfg['candidates']}, interaction "
            f"{cfg['interaction']:g})"
            if cfg["data"] == "synthetic"
            else "MovieLens-100k"
        )
        title = (
            f"bench rec: {data}, T={cfg['tokens']} D={cfg['width']} L={cfg['layers']}, "
            f"{cfg['epochs']} epochs of Adam lr {cfg['lr']:g} batch {cfg['batch_size']}, seeds "
            f"{','.join(map(str, cfg['seeds']))}, device={m['runtime']['device']}, "
            f"{m['threads']} threads{preset}"
        )
        results = report["results"]
        ref = results.get(m.get("reference") or "", {})
        header = ["row", "params", "AUC", "ΔAUC", "log-loss", "gAUC", "train s", "max Δlogit"]
        rows = []
        for row, r in results.items():
            delta = f"{r['auc'] - ref['auc']:+.4f}" if ref else "-"
            rows.append(
                [
                    row,
                    "-" if r["params"] is None else f"{r['params'] / 1e6:.2f}M",
                    mean_std(r, "auc", 4),
                    delta,
                    mean_std(r, "logloss", 4),
                    mean_std(r, "gauc", 4),
                    mean_std(r, "train_seconds", 1),
                    mean_std(r, "max_logit_change", 4),
                ]
            )
        sizes = [str(c) for c in cfg["latency_candidates"]]
        serving_header = [
            "row",
            *(f"ms@{c}" for c in sizes),
            *(f"ratio@{c}" for c in sizes),
            *(f"MFLOPs@{c}" for c in sizes),
        ]
        serving = [
            [
                row,
                *(f"{r['latency_ms'][c]:.2f}" for c in sizes),
                *(f"{r['latency_ratio'][c]:.2f}" if r["latency_ratio"] else "-" for c in sizes),
                *(f"{r['flops'][c] / 1e6:.1f}" for c in sizes),
            ]
            for row, r in results.items()
        ]
        truth = m.get("truth_auc")
        notes = [
            "",
            "AUC, log-loss, gAUC on the test impressions, mean ± std over seeds; ΔAUC: to "
            f"{m.get('reference') or 'no reference'}"
            + (f"; the true click probabilities reach AUC {truth:.4f}" if truth else ""),
            "serving: serve(one test user, C candidates), median of "
            f"{cfg['latency_repeats']} interleaved calls on seed {cfg['seeds'][0]}'s models; "
            "ratio: to the reference's median at the same C; MFLOPs: matmul FLOPs per request; "
            "max Δlogit: the largest change of a test logit that int8 weights make",
        ]
        return (
            "\n".join(
                [title, "", *columns(header, rows), "", *columns(serving_header, serving), *notes]
            )
            + "\n"
        )

    def figures(self, report: dict[str, Any]) -> dict[str, Any]:
        return {"serving_latency.png": plot_latency(report)}


def plot_latency(report: dict[str, Any]):
    """Median serving latency per request against candidates, and its ratio to the reference."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    colours = colormaps["tab10"]
    fig = Figure(figsize=(10.4, 4.0), layout="constrained")
    ms_ax, ratio_ax = fig.subplots(1, 2)
    bases = list(dict.fromkeys(row.removesuffix("+w8a16") for row in report["results"]))
    for row, r in report["results"].items():
        sizes = [int(c) for c in r["latency_ms"]]
        style = "--" if row.endswith("+w8a16") else "-"  # a model's int8 copy: its colour, dashed
        colour = colours(bases.index(row.removesuffix("+w8a16")) % 10)
        ms_ax.plot(sizes, list(r["latency_ms"].values()), "o" + style, color=colour, label=row)
        if r["latency_ratio"]:
            ratio_ax.plot(sizes, list(r["latency_ratio"].values()), "o" + style, color=colour)
    for ax in (ms_ax, ratio_ax):
        ax.set_xscale("log")
        ax.set_xlabel("candidates per request")
        ax.grid(True, alpha=0.3)
    ms_ax.set_yscale("log")
    ms_ax.set_ylabel("median ms per request")
    ms_ax.set_title("serving latency")
    ratio_ax.set_ylabel(f"latency / {report['manifest'].get('reference') or 'reference'}")
    ratio_ax.set_title("ratio to the reference")
    ratio_ax.axhline(0.8, color="grey", lw=0.8, ls=":")
    if ms_ax.get_legend_handles_labels()[0]:
        ms_ax.legend(fontsize=7)
    return fig
