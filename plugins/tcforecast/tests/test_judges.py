"""Judges of step 3: the offline formula judge, the `llm` judge with a fake model, agreement."""

import json
import math
import sys

import pytest

from yw_core.interfaces import Records
from yw_plugin_tcforecast.judges import (
    CRITERIA,
    FormulaJudge,
    Judgement,
    LLMJudge,
    evidence_texts,
    ranking_agreement,
    spearman,
)
from yw_plugin_tcforecast.opportunities import Opportunity

try:
    import llm
except ImportError:  # without the [llm] extra, the LLM judge's tests skip
    llm = None
needs_llm = pytest.mark.skipif(llm is None, reason="pip install 'yw-plugin-tcforecast[llm]'")


def opportunity(k: int, score: float) -> Opportunity:
    fus = 0.5 + k / 20
    return Opportunity(
        pair=("F24F", "G08B"),
        pair_type="II",
        firm_code="F24F",
        target_code="G08B",
        firm_topic=k % 2,
        target_topic=k,
        firm_terms=["smart", "thermostat"],
        target_terms=["iot", "gateway"] if k else ["smoke", "alarm"],
        fusion=fus,
        develop=score / fus,
        score=score,
        indicators={"uniqueness": 0.4, "patent_growth": 1.5},
        dimensions={"novelty": 1.0, "growth": 2.5, "influence": 0.5, "versatility": 0.0},
        evidence=[f"p{k}", "p9"],
        n_patents=10 + k,
    )


OPS = [opportunity(0, 3.7), opportunity(1, 6.1), opportunity(2, 0.4), opportunity(3, 3.1)]
CONTEXT = {
    "p0": "smart thermostat with wireless sensor",
    "p9": "refrigerant valve for a compressor",
}


def fake_model(answer: str):
    """An `llm` model with id "fake-judge" that answers `answer` and remembers its prompts."""

    class FakeJudge(llm.Model):
        model_id = "fake-judge"

        def __init__(self):
            self.prompts = []

        def execute(self, prompt, stream, response, conversation):
            self.prompts.append((prompt.prompt, prompt.system))
            yield answer

    return FakeJudge()


def test_formula_judge_is_offline_deterministic_and_agrees():
    judge = FormulaJudge()
    assert judge.is_llm is False and "not an LLM" in judge.name
    out = judge.judge(OPS, CONTEXT)
    assert out == judge.judge(OPS, CONTEXT)
    assert [j.score for j in out] == pytest.approx([1 + 0.9 * o.score for o in OPS])
    assert all(1 <= j.score <= 10 for j in out)
    assert "growth" in out[0].rationale and "fusion" in out[0].rationale
    assert ranking_agreement(OPS, out) == pytest.approx(1.0)


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="4 opportunities but 1 judgements"):
        ranking_agreement(OPS, [Judgement(5.0, "")])


@needs_llm
def test_llm_judge_parses_fenced_json_and_clips():
    items = [
        {"index": i + 1, "score": s, "rationale": f"r{i}"} for i, s in enumerate([7, 12, 1, 0])
    ]
    answer = f"<think>hmm [draft]</think>Here you are:\n```json\n{json.dumps(items)}\n```\nDone."
    model = fake_model(answer)
    judge = LLMJudge(model, system="be brief")
    assert judge.is_llm and "fake-judge" in judge.name
    out = judge.judge(OPS, CONTEXT)
    assert [j.score for j in out] == [7.0, 10.0, 1.0, 1.0]
    assert [j.rationale for j in out] == ["r0", "r1", "r2", "r3"]
    ((prompt, system),) = model.prompts
    assert system == "be brief"
    for word in ("## Instruction", "## Context", "## Input", "## Output", *CRITERIA):
        assert word in prompt
    assert set(CRITERIA) == {"novelty", "growth", "impact", "versatility", "feasibility"}
    assert all(f"[{pid}] {text}" in prompt for pid, text in CONTEXT.items())
    assert "G08B-2 [iot, gateway]" in prompt and "formula score 6.10/10" in prompt


@needs_llm
def test_llm_judge_rejects_unusable_answers():
    for answer, why in [
        ("I cannot rank these.", "no JSON list"),
        ('[{"index": 1, "score": 5}]', r"missing index \[2, 3, 4\]"),
        ('[{"index": 1, "score": "high"}]', "bad item"),
        ("[1, 2", "no JSON list"),
    ]:
        with pytest.raises(ValueError, match=f"'fake-judge'.*{why}"):
            LLMJudge(fake_model(answer)).judge(OPS, CONTEXT)
    with pytest.raises(ValueError, match="I cannot rank"):
        LLMJudge(fake_model("I cannot rank these.")).judge(OPS, CONTEXT)
    assert LLMJudge(fake_model("nothing")).judge([], CONTEXT) == []


@needs_llm
def test_llm_judge_unknown_model_id(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path))  # llm's config dir, not the user's
    with pytest.raises(ValueError, match="no-such-judge"):
        LLMJudge("no-such-judge")


def test_evidence_texts_is_the_rag_context():
    records = Records({"id": ["p0", "p1", "p9"], "text": ["a", "b", "c"]})
    assert evidence_texts(records, OPS[:1]) == {"p0": "a", "p9": "c"}


def test_llm_judge_without_the_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "llm", None)  # import llm now raises ImportError
    with pytest.raises(ImportError, match=r"yw-plugin-tcforecast\[llm\]"):
        LLMJudge("any-model")
