"""Judges of step 3: a second opinion on the formula-ranked topic-pair opportunities.

The paper asks an LLM (DeepSeek-R1 with retrieval over the firm's documents) to score each
topic pair from 1 to 10 on five criteria. It then compares that ranking with the formula's.
Here a judge is pluggable. `FormulaJudge` is the offline default: it is deterministic, is not
an LLM, and only restates the formula. `LLMJudge` sends the paper's ICIO prompt (Instruction,
Context, Input, Output) to any model the `llm` library serves. Its context is the texts of the
firm's patents that `topic_opportunities` retrieved as evidence.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from yw_core.interfaces import Records
from yw_plugin_tcforecast.opportunities import Opportunity

CRITERIA = {
    "novelty": "how new and distinctive the target topic is (uniqueness, maturity)",
    "growth": "how fast the target topic grows (patents, inventors)",
    "impact": "how influential the target topic is (citations per year, family size)",
    "versatility": "how broadly the target topic applies (IPC codes, TRIZ functions per patent)",
    "feasibility": "how well the firm's existing technology (the context) can reach it",
}
SYSTEM = (
    "You are a technology-strategy analyst. You assess technology-convergence opportunities "
    "for a firm from patent evidence and answer only with the JSON requested."
)


@dataclass
class Judgement:
    """A judge's verdict on one opportunity: a score in [1, 10] and why."""

    score: float
    rationale: str


class Judge(ABC):
    """Scores a list of opportunities, given `context` (evidence patent id -> its text)."""

    name: str
    is_llm: bool

    @abstractmethod
    def judge(self, opportunities: list[Opportunity], context: dict[str, str]) -> list[Judgement]:
        """One judgement per opportunity, in the same order."""


class FormulaJudge(Judge):
    """The offline default: score = 1 + 9 * formula score / 10 (so the same ranking); not an LLM."""

    name = "formula (not an LLM)"
    is_llm = False

    def judge(self, opportunities: list[Opportunity], context: dict[str, str]) -> list[Judgement]:
        return [Judgement(1.0 + 0.9 * o.score, _rationale(o)) for o in opportunities]


class LLMJudge(Judge):
    """Asks an `llm` model (an id such as "gpt-4o-mini", or a model object) to score the list.

    The opportunities go out in one call with the ICIO prompt. The model answers a JSON list
    of {"index", "score", "rationale"}. Code fences, <think> blocks and text around the list are
    tolerated, and scores are clipped to [1, 10].
    """

    is_llm = True

    def __init__(self, model: str | object, *, key: str | None = None, system: str | None = None):
        if isinstance(model, str):
            try:
                import llm
            except ImportError:
                raise ImportError(
                    "LLMJudge needs the llm library: pip install 'yw-plugin-tcforecast[llm]'"
                ) from None
            try:
                model = llm.get_model(model)
            except llm.UnknownModelError:
                raise ValueError(
                    f"the llm library knows no model {model!r} (see `llm models`; a model "
                    "from a plugin needs that plugin installed)"
                ) from None
        self.model, self.key = model, key
        self.system = SYSTEM if system is None else system
        self.model_id = str(getattr(model, "model_id", model))
        self.name = f"llm: {self.model_id}"

    def judge(self, opportunities: list[Opportunity], context: dict[str, str]) -> list[Judgement]:
        if not opportunities:
            return []
        kwargs = {"system": self.system} | ({"key": self.key} if self.key is not None else {})
        answer = self.model.prompt(icio_prompt(opportunities, context), **kwargs).text()
        return _parse(answer, len(opportunities), self.model_id)


def icio_prompt(opportunities: list[Opportunity], context: dict[str, str]) -> str:
    """The paper's ICIO prompt (Table 12): Instruction, Context, Input, Output."""
    criteria = "\n".join(f"- {name}: {what}" for name, what in CRITERIA.items())
    evidence = "\n".join(f"[{pid}] {text}" for pid, text in context.items()) or "(none)"
    items = "\n".join(_describe(n, o) for n, o in enumerate(opportunities, 1))
    return (
        "## Instruction\n"
        "Each candidate below pairs one of the firm's technology topics with a topic of a "
        "target technology field that is predicted to converge with it. Judge how attractive "
        "each candidate is for this firm on five criteria:\n"
        f"{criteria}\n"
        "Weigh them together into one score from 1 (poor) to 10 (excellent). The formula score "
        "is a guide, not the answer.\n\n"
        "## Context\nThe firm's patents most related to the candidates:\n"
        f"{evidence}\n\n"
        f"## Input\n{items}\n\n"
        "## Output\nOnly a JSON list with one object per candidate, e.g. "
        '[{"index": 1, "score": 7.5, "rationale": "one or two sentences"}], '
        f"covering every index from 1 to {len(opportunities)}."
    )


def evidence_texts(records: Records, opportunities: list[Opportunity]) -> dict[str, str]:
    """The RAG context of a list of opportunities: each evidence patent id -> its text."""
    wanted = {pid for o in opportunities for pid in o.evidence}
    return {str(i): t for i, t in zip(records["id"], records["text"]) if str(i) in wanted}


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (ties get average ranks). It is NaN if either side is constant."""
    from scipy.stats import rankdata

    if len(a) != len(b):
        raise ValueError(f"spearman needs equal lengths, got {len(a)} and {len(b)}")
    ra, rb = rankdata(a) - (len(a) + 1) / 2, rankdata(b) - (len(b) + 1) / 2
    norm = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / norm) if norm > 0 else float("nan")


def ranking_agreement(opportunities: list[Opportunity], judgements: list[Judgement]) -> float:
    """Spearman between the formula scores and the judge's scores."""
    if len(opportunities) != len(judgements):
        raise ValueError(f"{len(opportunities)} opportunities but {len(judgements)} judgements")
    return spearman([o.score for o in opportunities], [j.score for j in judgements])


def _rationale(o: Opportunity) -> str:
    dims = sorted(o.dimensions.items(), key=lambda kv: -kv[1])
    (best, high), (worst, low) = dims[0], dims[-1]
    closeness = "close to" if o.fusion >= 0.75 else "related to" if o.fusion >= 0.5 else "far from"
    return (
        f"Formula score {o.score:.2f}/10 = fusion {o.fusion:.2f} x develop {o.develop:.2f}. "
        f"The target topic ({', '.join(o.target_terms) or 'no terms'}) of {o.target_code} is "
        f"strongest in {best} ({high:.2f}/2.5) and weakest in {worst} ({low:.2f}/2.5); "
        f"it is {closeness} the firm's topic ({', '.join(o.firm_terms) or 'no terms'})."
    )


def _describe(n: int, o: Opportunity) -> str:
    indicators = ", ".join(f"{k} {v:.3g}" for k, v in o.indicators.items())
    dims = ", ".join(f"{k} {v:.2f}/2.5" for k, v in o.dimensions.items())
    return (
        f"{n}. firm topic {o.firm_code}-{o.firm_topic + 1} [{', '.join(o.firm_terms)}] x "
        f"target topic {o.target_code}-{o.target_topic + 1} [{', '.join(o.target_terms)}] "
        f"(IPC pair {o.pair[0]}-{o.pair[1]}, type {o.pair_type}, {o.n_patents} patents); "
        f"indicators: {indicators}; develop parts: {dims}; fusion {o.fusion:.3f}, "
        f"develop {o.develop:.2f}/10, formula score {o.score:.2f}/10"
    )


def _parse(answer: str, n: int, model_id: str) -> list[Judgement]:
    """Judgements 1..n from the model's answer, or a ValueError quoting its start."""

    def fail(why: str) -> ValueError:
        start = answer.strip()[:200]
        return ValueError(f"model {model_id!r} gave an unusable answer ({why}): {start!r}")

    text = re.sub(r"<think>.*?</think>", "", answer, flags=re.S)
    text = re.sub(r"```(?:json)?", "", text)
    first, last = text.find("["), text.rfind("]")
    if first < 0 or last < first:
        raise fail("no JSON list")
    try:
        items = json.loads(text[first : last + 1])
    except json.JSONDecodeError:
        raise fail("invalid JSON") from None
    found = {}
    for item in items:
        try:
            index, score = int(item["index"]), float(item["score"])
        except (TypeError, KeyError, ValueError):
            raise fail(f"bad item {item!r}") from None
        if not np.isfinite(score):
            raise fail(f"bad score in {item!r}")
        found.setdefault(
            index, Judgement(min(max(score, 1.0), 10.0), str(item.get("rationale", "")))
        )
    if missing := [i for i in range(1, n + 1) if i not in found]:
        raise fail(f"missing index {missing}")
    return [found[i] for i in range(1, n + 1)]
