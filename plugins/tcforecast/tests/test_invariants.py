"""What tcforecast promises beyond the Forecaster contract: features see only the past, the
candidate pairs and their labels follow the spec, the blocks hold the paper's features, the
fusers are order-free, and the windows of fit are the paper's."""

import numpy as np
import pytest
import torch

from yw_core.interfaces import Records
from yw_core.patents import check_patents
from yw_plugin_tcforecast import TCForecast
from yw_plugin_tcforecast import features as F


def planted(records: Records, year: int, codes: list[str], text: str, cites: list[str]):
    """The records with one more patent filed in `year`."""
    columns = {c: list(records[c]) for c in records.columns}
    new = {
        "id": f"PLANT{year}",
        "year": year,
        "assignee": "Planter",
        "ipc": codes,
        "cited": cites,
        "text": text,
        "inventors": 40,
        "applicants": 9,
        "claims": 90,
        "family": 30,
        "nonpatent_refs": 20,
    }
    for c in columns:
        columns[c].append(new[c])
    return Records(columns)


def table_at(fitted, history, cutoff, pairs):
    snap = F.snapshot(history, cutoff, fitted.config.window)
    step1 = fitted.step1
    return F.pair_features(
        history, snap, pairs, model=step1.model, fuser=step1.fuser, config=fitted.config
    )


def test_a_patent_filed_in_the_forecast_window_changes_no_feature(fitted, synth):
    history = check_patents(synth.records)
    cutoff = 2019
    pairs = F.candidates(F.snapshot(history, cutoff, 3))[:40]
    a, b = pairs[0]
    text = " ".join(history["text"][:3])  # words the text model knows
    cites = list(history["id"][:50])  # it cites old patents: their forward citations would grow
    before = table_at(fitted, history, cutoff, pairs)
    for year in (cutoff, cutoff + 2):
        future = check_patents(planted(synth.records, year, [a, b], text, cites))
        after = table_at(fitted, future, cutoff, pairs)
        assert after.names == before.names
        assert np.array_equal(after.values, before.values), f"a {year} patent leaked"
    # the negative control: the same patent filed before the cutoff does change them
    past = check_patents(planted(synth.records, cutoff - 1, [a, b], text, cites))
    assert not np.array_equal(table_at(fitted, past, cutoff, pairs).values, before.values)


def test_candidates_are_the_unconnected_pairs_and_labels_their_future():
    history = check_patents(
        Records(
            {
                "id": ["1", "2", "3", "4"],
                "year": [2000, 2001, 2002, 2003],
                "assignee": ["x"] * 4,
                "ipc": [["A01B", "B25J"], ["C12N"], ["B25J", "C12N"], ["A01B", "C12N"]],
                "cited": [[], [], [], []],
                "text": ["a"] * 4,
            }
        )
    )
    snap = F.snapshot(history, 2002, 2)
    assert snap.codes == ("A01B", "B25J", "C12N")
    assert F.candidates(snap) == [("A01B", "C12N"), ("B25J", "C12N")]
    assert F.converged(history, 2002, 2004) == {("B25J", "C12N"), ("A01B", "C12N")}
    assert F.converged(history, 2003, 2004) == {("A01B", "C12N")}


def test_blocks_hold_the_papers_features(fitted):
    table = fitted.step1.train
    counts = {b: table.blocks.count(b) for b in F.BLOCKS}
    # 2 pair-level + 9 node-level x (mean, min, range); 14 indices + 4 Node2Vec interactions;
    # 4 topic features + 4 text-embedding interactions + 4 fused components and the fused logit
    assert counts == {"bibliometric": 29, "network": 18, "text": 13}
    assert {"katz", "rwr", "local_path", "node2vec_cosine"} <= set(table.names)
    assert {"complementarity", "main_topic_match", "fused_logit"} <= set(table.names)
    assert np.isfinite(table.values).all()
    assert table.select(["network"]).shape == (len(table.pairs), 18)


def test_missing_optional_columns_drop_their_features(synth, fast):
    keep = ("id", "year", "assignee", "ipc", "cited", "text")
    bare = Records({c: synth.records[c] for c in keep})
    forecaster = TCForecast(**fast).fit(bare)
    names = forecaster.step1.train.names
    assert "inventor_mean" not in names and "claim_min" not in names
    assert {"patent_count_mean", "patent_ref_mean", "cited_patent_range"} <= set(names)


def test_fit_uses_the_papers_windows(fitted, synth):
    # patents 2010-2021: forecast from 2022, ensemble at 2019 (labels 2019-21), fuser at 2016
    assert fitted.forecast_year == 2022
    assert fitted.step1.fuser_cutoff == 2016
    history = check_patents(synth.records)
    pairs = F.candidates(F.snapshot(history, 2019, 3))
    assert fitted.step1.train.pairs == pairs
    future = F.converged(history, 2019, 2022)
    assert fitted.step1.labels.tolist() == [int(p in future) for p in pairs]


def test_text_model_never_reads_the_label_window(synth, fast):
    late = planted(synth.records, 2020, ["A01B"], "zyxwordonlylate " * 5, [])
    late = planted(late, 2021, ["A01B"], "zyxwordonlylate " * 5, [])
    forecaster = TCForecast(**fast).fit(late)
    assert "zyxwordonlylate" not in forecaster.step1.model.counter.vocabulary_


def test_pair_order_does_not_matter(fitted):
    query = Records({"year": [2022, 2022], "a": ["A01B", "C12N"], "b": ["C12N", "A01B"]})
    scores = fitted.predict(query)
    assert scores[0] == scores[1]


def test_fuser_is_order_free_and_ignores_padding():
    from yw_plugin_tcforecast.fusers import Fuser, code_patents

    torch.manual_seed(0)
    fuser = Fuser(dim=6)
    embeddings = np.random.default_rng(0).normal(size=(9, 6))
    members = [np.array([0, 1, 2]), np.array([3, 4]), np.array([5, 6, 7, 8])]
    patents, mask = code_patents(embeddings, members)
    assert mask.sum(1).tolist() == [3, 2, 4]
    pairs = torch.tensor([[0, 1], [1, 0], [0, 2]])
    vectors, logits = fuser(patents, mask, pairs)
    assert torch.allclose(vectors[0], vectors[1]) and torch.allclose(logits[0], logits[1])
    noisy = patents.clone()
    noisy[~mask] = 100.0  # padding must not count
    assert torch.allclose(fuser(noisy, mask, pairs)[0], vectors)
    weights = torch.softmax(fuser.score(patents).squeeze(-1).masked_fill(~mask, -torch.inf), 1)
    pooled = fuser.pool(patents, mask)
    assert torch.allclose(pooled, (weights.nan_to_num(0).unsqueeze(-1) * patents).sum(1))


def test_same_history_same_forecast(synth, fast):
    from yw_plugin_tcforecast import methods

    query = Records({"year": [2022] * 2, "a": ["A01B", "C12N"], "b": ["C12N", "B64C"]})
    first = TCForecast(**fast).fit(synth.records).predict(query)
    methods._CACHE.clear()  # recompute step 1 from scratch
    second = TCForecast(**fast).fit(synth.records).predict(query)
    assert torch.equal(first, second)


def test_threshold_is_chosen_by_cost(fitted):
    assert np.isfinite(fitted.threshold)
    query = Records(
        {"year": [2022] * 3, "a": ["A01B", "A23L", "A47L"], "b": ["C12N", "A61K", "B25J"]}
    )
    assert fitted.predict(query).shape == (3,)


@pytest.mark.parametrize("variant", sorted(TCForecast.variants))
def test_each_variant_fits_and_scores(variant, synth, fast):
    overrides = TCForecast.variants[variant].overrides
    forecaster = TCForecast(**{**fast, **overrides}).fit(synth.records)
    query = Records({"year": [2022], "a": ["A01B"], "b": ["C12N"]})
    assert torch.isfinite(forecaster.predict(query)).all()


def test_opportunities_rank_the_firms_pairs_and_topics(fitted, synth):
    report = fitted.opportunities(synth.focal_firm, pairs=2)
    assert report["firm"] == synth.focal_firm and report["year"] == 2022
    assert report["judge"] == "formula (not an LLM)" and report["is_llm"] is False
    assert len(report["pairs"]) == 2
    kinds = "III II I".split()
    order = [(not p["predicted"], kinds.index(p["type"]), -p["score"]) for p in report["pairs"]]
    assert order == sorted(order)  # predicted first, then type III, II, I, then score
    scores = [t["score"] for t in report["topics"]]
    assert scores == sorted(scores, reverse=True) and scores
    assert all(0 <= t["develop"] <= 10 and 0 <= t["fusion"] <= 1 for t in report["topics"])
    assert report["agreement"] == pytest.approx(1.0)  # the formula judge restates the formula
    pairs = {tuple(p["pair"]) for p in report["pairs"]}
    assert {tuple(t["pair"]) for t in report["topics"]} <= pairs
    import json

    json.dumps(report)  # plain data
    with pytest.raises(ValueError, match="firm 'Nobody' has no patent"):
        fitted.opportunities("Nobody")
    with pytest.raises(RuntimeError, match="fit"):
        TCForecast().opportunities(synth.focal_firm)
