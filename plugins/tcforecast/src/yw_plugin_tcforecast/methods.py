"""The Forecaster plugin `tcforecast`: which IPC code pairs converge in the next window.

`fit(patents)` takes the year after the last patent as the forecast window's start T. With
three-year windows (the paper's 2015-17 / 2018-20 / 2021-23), the ensemble learns from features
at cutoff T-3 and labels "the pair, unconnected before T-3, co-occurs in T-3..T-1" [I: the
spec's reading of the paper's windows]; the fusers learn the same task one window earlier
(T-6, labels in T-6..T-4) when the history reaches back that far, and at T-3 otherwise. The text
model is fitted on the patents before T-3. `predict(query)` scores (year, a, b) rows from the
patents filed before each row's year: the year is the first year of the window to forecast.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from yw_core.interfaces import Capabilities, Forecaster, MethodConfig, Paper, Records, Variant
from yw_core.patents import REQUIRED, check_patents, ipc_subclass
from yw_plugin_tcforecast import features as F
from yw_plugin_tcforecast.ensemble import BASE_MODELS, SingleModel, TwoStageEnsemble

PAPER = Paper(
    title="Three-step firm-specific technology-convergence forecasting",
    authors=("Gu", "Chen", "Wu"),
    year=2026,
    venue="arXiv",
    arxiv_id="2604.00803",
)
STEP1 = (  # the settings step 1 (features, text model, fusers) depends on
    *("window", "text_dim", "topics", "coverage_threshold", "node2vec_dim", "katz_beta"),
    *("rwr_restart", "lp_epsilon", "fuser_epochs", "seed"),
)


class TCForecastConfig(MethodConfig):
    """Step 1 (features) and step 2 (imbalance handling, two-stage ensemble) settings."""

    window: int = Field(3, ge=1, le=20, description="years per window (the paper: 3)")
    features: tuple[Literal["bibliometric", "network", "text"], ...] = Field(
        F.BLOCKS, min_length=1, description="feature blocks the ensemble sees (the paper: all)"
    )
    sampler: Literal["smotetomek", "smote", "class_weight", "none"] = Field(
        "smotetomek", description="imbalance handling (the paper: SMOTETomek)"
    )
    ratio: float = Field(
        0.25, gt=0, le=1, description="positives per negative after resampling (the paper: 2:8)"
    )
    ensemble: Literal["two-stage", "single"] = Field(
        "two-stage", description="stacking of the best base models, or `single_model` alone"
    )
    base_models: tuple[str, ...] = Field(
        tuple(BASE_MODELS), min_length=1, description="stage-1 candidates (the paper's seven)"
    )
    keep: int = Field(3, ge=1, description="base models kept by CV KS (the paper: 3)")
    single_model: str = Field("lightgbm", description="the model of ensemble=single")
    cv: int = Field(5, ge=2, le=20, description="folds of stage 1's KS and stage 2's stacking")
    theta: float = Field(
        1.0, gt=0, description="Cost = FPR + theta*FNR of the threshold (firm's; not reported)"
    )
    coverage_threshold: float = Field(
        0.1, gt=0, lt=1, description="topic weight above which a patent covers a topic"
    )
    text_dim: int = Field(32, ge=2, le=1024, description="patent text embedding width (LSA)")
    topics: int = Field(20, ge=2, le=500, description="topics of the topic model")
    node2vec_dim: int = Field(16, ge=2, le=512, description="Node2Vec embedding width")
    katz_beta: float = Field(
        0.01, gt=0, lt=1, description="Katz damping; capped at 0.5/lambda_max of a dense network"
    )
    rwr_restart: float = Field(0.15, gt=0, lt=1, description="random walk with restart: restart")
    lp_epsilon: float = Field(0.01, ge=0, description="local path index: weight of A^3")
    fuser_epochs: int = Field(200, ge=1, le=10000, description="full-batch Adam steps of fusers")
    seed: int = Field(0, ge=0, description="seed of the text model, Node2Vec, fusers, models")

    @field_validator("base_models", "single_model")
    @classmethod
    def _known_models(cls, value):
        names = (value,) if isinstance(value, str) else value
        if unknown := [n for n in names if n not in BASE_MODELS]:
            raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(BASE_MODELS)}")
        return value

    @field_validator("features")
    @classmethod
    def _distinct(cls, value):
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _keep_fits(self):
        if self.keep > len(self.base_models):
            raise ValueError(f"keep={self.keep} exceeds the {len(self.base_models)} base_models")
        return self


class TCForecast(Forecaster):
    """Which IPC code pairs converge in the next window, from patents: fused bibliometric,
    network and text features, and an imbalance-aware two-stage stacking ensemble."""

    name = "tcforecast"
    summary = "IPC-pair convergence: fused patent features, imbalance-aware two-stage stacking"
    paper = PAPER
    license = "MIT"
    status = "experimental"
    capabilities = Capabilities(devices=("cpu",), deterministic=True)
    Config = TCForecastConfig
    history_columns = REQUIRED
    query_columns = ("year", "a", "b")
    variants = {
        "tcforecast-bibliometric": Variant(
            label="bibliometric features only (F1)", overrides={"features": ("bibliometric",)}
        ),
        "tcforecast-network": Variant(
            label="network features only (F2)", overrides={"features": ("network",)}
        ),
        "tcforecast-text": Variant(
            label="text features only (F3)", overrides={"features": ("text",)}
        ),
        "tcforecast-bib+network": Variant(
            label="bibliometric and network features (F1+F2)",
            overrides={"features": ("bibliometric", "network")},
        ),
        "tcforecast-bib+text": Variant(
            label="bibliometric and text features (F1+F3)",
            overrides={"features": ("bibliometric", "text")},
        ),
        "tcforecast-no-imbalance": Variant(
            label="no imbalance handling (no resampling, no weights)", overrides={"sampler": "none"}
        ),
        "tcforecast-single": Variant(
            label="one model (LightGBM-style) instead of the two-stage ensemble",
            overrides={"ensemble": "single"},
        ),
    }

    history: Records | None = None

    def fit(self, history: Records) -> TCForecast:
        history.require(self.history_columns, "history")
        patents = check_patents(history, "history")
        cfg = self.config
        self.forecast_year = max(patents["year"]) + 1
        step1 = _step1(patents, cfg, self.forecast_year)
        x = step1.train.select(cfg.features)
        imbalance = {"sampler": cfg.sampler, "ratio": cfg.ratio}
        if cfg.ensemble == "single":
            model = SingleModel(cfg.single_model, cfg.theta, cfg.seed, cfg.cv, **imbalance)
        else:
            model = TwoStageEnsemble(
                cfg.base_models, cfg.keep, cfg.cv, cfg.theta, cfg.seed, **imbalance
            )
        self.model = model.fit(x, step1.labels)
        self.threshold = float(model.threshold_)
        self.history, self.step1 = patents, step1
        return self

    def predict(self, query: Records):
        import torch

        if self.history is None:
            raise RuntimeError("call fit() before predict()")
        query.require(self.query_columns, "query")
        by_year: dict[int, list[int]] = {}
        pairs = []
        for i, (year, a, b) in enumerate(zip(query["year"], query["a"], query["b"])):
            try:
                pair = F.pair_key(ipc_subclass(a), ipc_subclass(b))
            except ValueError as exc:
                raise ValueError(f"query row {i}: {exc}") from None
            if pair[0] == pair[1]:
                raise ValueError(f"query row {i}: a and b are the same code {pair[0]}")
            if isinstance(year, bool) or not float(year).is_integer():
                raise ValueError(f"query row {i}: year {year!r} is not a whole number")
            by_year.setdefault(int(year), []).append(i)
            pairs.append(pair)
        scores = np.zeros(len(pairs))
        for year, rows in by_year.items():
            table = self.features(year, [pairs[i] for i in rows], rows)
            scores[rows] = self.model.decision_function(table.select(self.config.features))
        return torch.as_tensor(scores, dtype=torch.float32)

    def opportunities(
        self, firm: str, *, pairs: int = 3, judge: str | object = "formula", k_max: int = 6
    ) -> dict:
        """Step 3 for `firm`: its `pairs` most promising predicted pairs (predicted to converge,
        type III before II before I as the paper prefers, then by score), each refined into
        topic pairs ranked by the formula, and the judge's scores beside them.

        `judge`: "formula" (the offline stand-in, not an LLM), an `llm` model id, or a
        `yw_plugin_tcforecast.judges.Judge`. Returns plain data, ready for JSON."""
        from dataclasses import asdict

        from yw_core.patents import firm_codes
        from yw_plugin_tcforecast.judges import (
            FormulaJudge,
            Judge,
            LLMJudge,
            evidence_texts,
            ranking_agreement,
        )
        from yw_plugin_tcforecast.opportunities import pair_type, topic_opportunities

        if self.history is None:
            raise RuntimeError("call fit() before opportunities()")
        if firm not in set(self.history["assignee"]):
            raise ValueError(f"firm {firm!r} has no patent in the history")
        if not isinstance(judge, Judge):
            judge = FormulaJudge() if judge == "formula" else LLMJudge(judge)
        year, held = self.forecast_year, firm_codes(self.history, firm)
        snap = F.snapshot(self.history, year, self.config.window)
        candidates = F.candidates(snap)
        table = self.features(year, candidates)
        scores = self.model.decision_function(table.select(self.config.features))
        kinds = [pair_type(pair, held) for pair in candidates]
        order = sorted(
            range(len(candidates)),
            key=lambda k: (
                scores[k] < self.threshold,
                "III II I".split().index(kinds[k]),
                -scores[k],
            ),
        )
        chosen = [
            {
                "pair": list(candidates[k]),
                "type": kinds[k],
                "score": float(scores[k]),
                "predicted": bool(scores[k] >= self.threshold),
            }
            for k in order[:pairs]
        ]
        found = []
        for row in chosen:
            found += topic_opportunities(
                self.history,
                self.step1.model.embed,
                tuple(row["pair"]),
                firm,
                year,
                k_max=k_max,
                seed=self.config.seed,
            )
        found.sort(key=lambda o: -o.score)
        judged = judge.judge(found, evidence_texts(self.history, found)) if found else []
        agreement = ranking_agreement(found, judged) if len(found) > 1 else None
        return {
            "firm": firm,
            "year": year,
            "judge": judge.name,
            "is_llm": judge.is_llm,
            "pairs": chosen,
            "topics": [
                {**asdict(o), "judge_score": j.score, "rationale": j.rationale}
                for o, j in zip(found, judged)
            ],
            "agreement": None if agreement is None or np.isnan(agreement) else agreement,
        }

    def features(self, year: int, pairs: list, rows: list[int] | None = None) -> F.FeatureTable:
        """Every block's features of `pairs` from the patents filed before `year`."""
        first = min(self.history["year"])
        if year <= first:
            where = f"query row {rows[0]}: " if rows else ""
            raise ValueError(
                f"{where}the forecast window {year} has no history: the patents start in {first}"
            )
        snap = F.snapshot(self.history, year, self.config.window)
        for k, pair in enumerate(pairs):
            if missing := [c for c in pair if c not in snap.index]:
                where = f"query row {rows[k]}" if rows else f"pair {pair}"
                raise ValueError(
                    f"{where}: IPC code {missing[0]} has no patent before {year}, so it has no "
                    "features to forecast from"
                )
        return _cached_features(self.history, snap, pairs, self.step1, self.config)


class Step1:
    """Step 1 fitted on a history: the text model, the fuser, and the training table."""

    def __init__(self, key: tuple, model, fuser, labels: np.ndarray, fuser_cutoff: int):
        self.key, self.model, self.fuser, self.labels = key, model, fuser, labels
        self.fuser_cutoff = fuser_cutoff
        self.train: F.FeatureTable | None = None


_CACHE: OrderedDict = OrderedDict()  # step 1 and feature tables of recent histories


def _step1(patents: Records, cfg: TCForecastConfig, forecast_year: int) -> Step1:
    """Step 1 for a history (cached: variants of one history differ only in step 2)."""
    key = ("step1", _fingerprint(patents), tuple(getattr(cfg, k) for k in STEP1))
    if key not in _CACHE:
        _remember(key, _fit_step1(key, patents, cfg, forecast_year))
    return _CACHE[key]


def _fit_step1(key: tuple, patents: Records, cfg: TCForecastConfig, forecast_year: int) -> Step1:
    from yw_plugin_tcforecast.fusers import code_patents, train_fuser
    from yw_plugin_tcforecast.text import TextModel

    train_cutoff = forecast_year - cfg.window
    first = min(patents["year"])
    if train_cutoff <= first:
        raise ValueError(
            f"the history ({first}-{forecast_year - 1}) is shorter than two windows of "
            f"{cfg.window} years: tcforecast learns from features before {train_cutoff} and "
            f"convergences in {train_cutoff}-{forecast_year - 1}"
        )
    snap = F.snapshot(patents, train_cutoff, cfg.window)
    pairs, labels = _labelled(patents, snap, forecast_year)
    if labels.sum() < 2:
        raise ValueError(
            f"only {int(labels.sum())} unconnected pair(s) converge in {train_cutoff}-"
            f"{forecast_year - 1}: too few to learn from; give a longer history or a longer window"
        )
    model = TextModel(cfg.text_dim, cfg.topics, cfg.seed).fit(
        [patents["text"][r] for r in snap.rows]
    )
    fuser_snap, fuser_pairs, fuser_labels = snap, pairs, labels  # in-sample fallback
    if train_cutoff - cfg.window > first:
        earlier = F.snapshot(patents, train_cutoff - cfg.window, cfg.window)
        e_pairs, e_labels = _labelled(patents, earlier, train_cutoff)
        if e_labels.sum() >= 2:
            fuser_snap, fuser_pairs, fuser_labels = earlier, e_pairs, e_labels
    embeddings = model.embed([patents["text"][r] for r in fuser_snap.rows])
    members = fuser_snap.members(fuser_snap.cutoff - cfg.window)
    fuser = train_fuser(
        *code_patents(embeddings, members),
        fuser_snap.indices(fuser_pairs),
        fuser_labels,
        epochs=cfg.fuser_epochs,
        seed=cfg.seed,
    )
    step1 = Step1(key, model, fuser, labels, fuser_snap.cutoff)
    step1.train = F.pair_features(patents, snap, pairs, model=model, fuser=fuser, config=cfg)
    return step1


def _labelled(patents: Records, snap: F.Snapshot, stop: int) -> tuple[list, np.ndarray]:
    """The snapshot's unconnected pairs and whether each converges from its cutoff to `stop`."""
    pairs = F.candidates(snap)
    future = F.converged(patents, snap.cutoff, stop)
    return pairs, np.array([p in future for p in pairs], dtype=int)


def _cached_features(patents, snap, pairs, step1: Step1, cfg) -> F.FeatureTable:
    key = ("features", step1.key, snap.cutoff, tuple(pairs))
    if key not in _CACHE:
        table = F.pair_features(
            patents, snap, pairs, model=step1.model, fuser=step1.fuser, config=cfg
        )
        _remember(key, table)
    return _CACHE[key]


def _remember(key, value, size: int = 8) -> None:
    _CACHE[key] = value
    while len(_CACHE) > size:
        _CACHE.popitem(last=False)


def _fingerprint(patents: Records) -> str:
    """A digest of every column of a (checked) patent table."""
    digest = hashlib.sha256()
    for name in patents.columns:
        digest.update(name.encode())
        digest.update(repr(list(patents[name])).encode())
    return digest.hexdigest()
