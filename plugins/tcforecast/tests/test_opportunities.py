"""Step 3 of the TC forecast: topics, Table-6 indicators, Develop/Fusion scores, opportunities."""

import numpy as np
import pytest
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_rand_score

from yw_core.interfaces import Records
from yw_plugin_tcforecast.opportunities import (
    DIMENSIONS,
    develop,
    fusion,
    pair_type,
    topic_indicators,
    topic_opportunities,
    topic_terms,
    topics,
)

YEAR = 2020
WORDS = {
    "cool": "compressor refrigerant valve condenser evaporator expansion coolant",
    "smart": "smart thermostat controller wireless sensor app remote",
    "fire": "smoke fire alarm detector siren flame warning",
    "iot": "wireless sensor network gateway iot monitoring cloud",
    "cell": "battery electrode lithium cathode anode electrolyte separator",
}


def corpus() -> list[dict]:
    """About 60 patents: the firm Acme in F24F (cooling, smart control); others in F24F, G08B
    (an old fire-alarm topic, a young fast-growing IoT one that is much cited) and H01M."""
    rng = np.random.default_rng(0)
    rows = []

    def add(assignee, year, ipc, group, n, cited=()):
        for k in range(n):
            words = rng.choice(WORDS[group].split(), 5, replace=False)
            rows.append(
                dict(
                    id=f"{group}-{assignee}-{len(rows)}",
                    year=year + k % 4,
                    assignee=assignee,
                    ipc=list(ipc),
                    cited=list(cited),
                    text=" ".join(words),
                    inventors=1 + k % 3,
                    family=1 + k % 2,
                    functions=["cool"] if group == "cool" else ["sense", "signal"],
                )
            )

    add("Acme", 2008, ["F24F"], "cool", 10)
    add("Acme", 2014, ["F24F", "G05B"], "smart", 8)
    add("Other", 2006, ["F24F"], "cool", 6)
    add("Other", 2006, ["G08B"], "fire", 12)
    add("Other", 2015, ["G08B", "H04W"], "iot", 4)
    iot = [r["id"] for r in rows[-4:]]
    add("Other", 2016, ["G08B", "H04W"], "iot", 8, cited=iot)
    add("Other", 2010, ["H01M"], "cell", 8)
    add("Both", 2012, ["F24F"], "cool", 2)
    add("Both", 2012, ["G08B"], "fire", 4)
    return rows


@pytest.fixture(scope="module")
def patents() -> Records:
    return Records.from_rows(corpus())


@pytest.fixture(scope="module")
def embed(patents):
    """TF-IDF + SVD to 5 dimensions (one per word group), fitted once: a fixed text -> vector."""
    tfidf = TfidfVectorizer().fit(patents["text"])
    svd = TruncatedSVD(5, random_state=0).fit(tfidf.transform(patents["text"]))

    def embed(texts):
        x = svd.transform(tfidf.transform(texts))
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return embed


def tiny() -> Records:
    """Six patents in two topics, small enough to compute every indicator by hand."""
    return Records(
        {
            "id": ["p1", "p2", "p3", "p4", "p5", "p6"],
            "year": [2010, 2012, 2018, 2017, 2018, 2019],
            "ipc": [["A"], ["A", "B"], ["A"], ["A", "B"], ["A", "C"], ["A", "B", "C"]],
            "cited": [[], [], ["p1", "p2"], ["p1"], ["p4"], ["p4", "p1"]],
            "inventors": [2, 1, 3, 1, 1, 2],
            "family": [1, 2, 3, 4, 4, 4],
            "functions": [["a"], ["a", "b"], [], ["c"], ["c"], ["c", "d"]],
        }
    )


TINY_LABELS = np.array([0, 0, 0, 1, 1, 1])
TINY_X = np.array([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3)


def test_pair_type_counts_the_codes_the_firm_holds():
    assert pair_type(("F24F", "G08B"), {"H01M"}) == "I"
    assert pair_type(("F24F", "G08B"), {"F24F", "H01M"}) == "II"
    assert pair_type(("F24F", "G08B"), {"G08B"}) == "II"
    assert pair_type(("F24F", "G08B"), {"G08B", "F24F"}) == "III"


def test_topics_recovers_planted_clusters():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 5)) * 5
    truth = np.repeat([0, 1, 2], 10)
    x = centres[truth] + rng.normal(scale=0.1, size=(30, 5))
    labels = topics(x, seed=0)
    assert adjusted_rand_score(truth, labels) == 1.0
    assert np.array_equal(labels, topics(x, seed=0))
    assert topics(x[:2]).tolist() == [0, 0]
    assert topics(np.ones((5, 3))).tolist() == [0] * 5  # nothing to split


def test_topic_indicators_match_hand_values():
    ind = topic_indicators(tiny(), TINY_LABELS, TINY_X, YEAR)
    assert list(ind) == [n for names in DIMENSIONS.values() for n in names]
    # ages 10, 8, 2 | 3, 2, 1: all mean 13/3, topic means 20/3 and 2
    np.testing.assert_allclose(ind["maturity"], [13 / 3 - 20 / 3, 13 / 3 - 2])
    # topic 0: 3 patents, 2 before 2015; topic 1 starts 2017 (younger than 5 years): 1 then 3
    np.testing.assert_allclose(ind["patent_growth"], [0.5, 2.0])
    # inventors 2+1 before 2015, 6 in all | first year 1, 4 in all
    np.testing.assert_allclose(ind["inventor_growth"], [1.0, 3.0])
    # forward citations p1..p6: 3, 1, 0, 2, 0, 0 -> means 4/3 and 2/3 over mean ages
    np.testing.assert_allclose(ind["citation_impact"], [(4 / 3) / (20 / 3), (2 / 3) / 2])
    np.testing.assert_allclose(ind["family_size"], [2.0, 4.0])
    np.testing.assert_allclose(ind["field_diversity"], [4 / 3, 7 / 3])
    np.testing.assert_allclose(ind["functional_diversity"], [1.0, 4 / 3])
    np.testing.assert_allclose(ind["uniqueness"], [0.5, 0.5])  # orthogonal centroids


def test_uniqueness_over_the_other_topics_and_missing_columns():
    records = Records(
        {"id": ["a", "b", "c"], "year": [2015] * 3, "ipc": [["A"]] * 3, "cited": [[]] * 3}
    )
    x = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    ind = topic_indicators(records, np.array([0, 1, 2]), x, YEAR)
    # scaled cosines: (0,1) 0.5, (0,2) 0, (1,2) 0.5; mean over the M-1 = 2 others
    np.testing.assert_allclose(ind["uniqueness"], [0.75, 0.5, 0.75])
    assert set(ind) == {  # no inventors, family or functions columns
        "uniqueness",
        "maturity",
        "patent_growth",
        "citation_impact",
        "field_diversity",
    }
    with pytest.raises(ValueError, match="before 2015"):
        topic_indicators(records, np.array([0, 1, 2]), x, 2015)


def test_develop_spans_zero_to_ten():
    names = [n for pair in DIMENSIONS.values() for n in pair]
    ind = {n: np.array([5.0, k / 2, -1.0]) for k, n in enumerate(names)}
    d = develop(ind)
    assert d[0] == pytest.approx(10.0) and d[2] == pytest.approx(0.0)
    assert 0 < d[1] < 10


def test_develop_missing_indicator_carries_its_dimension():
    ind = {
        "uniqueness": np.array([0.0, 1.0, 2.0]),
        "maturity": np.array([0.0, 0.0, 2.0]),
        "patent_growth": np.array([0.0, 1.0, 2.0]),  # inventor_growth missing: 2.5 alone
        "citation_impact": np.array([3.0, 3.0, 3.0]),  # constant: contributes 0
        "family_size": np.array([3.0, 3.0, 3.0]),
        "field_diversity": np.array([2.0, 1.0, 0.0]),
    }
    novelty = 1.25 * np.array([0.0, 0.5, 1.0]) + 1.25 * np.array([0.0, 0.0, 1.0])
    expected = novelty + 2.5 * np.array([0.0, 0.5, 1.0]) + 2.5 * np.array([1.0, 0.5, 0.0])
    np.testing.assert_allclose(develop(ind), expected)
    assert not np.isnan(develop(ind)).any()
    with pytest.raises(ValueError, match="growth"):
        develop({k: v for k, v in ind.items() if k != "patent_growth"})


def test_fusion_is_scaled_cosine():
    assert fusion(np.array([1.0, 0.0]), np.array([2.0, 0.0])) == pytest.approx(1.0)
    assert fusion(np.array([1.0, 0.0]), np.array([-1.0, 0.0])) == pytest.approx(0.0)
    assert fusion(np.array([1.0, 0.0]), np.array([0.0, 3.0])) == pytest.approx(0.5)
    assert fusion(np.zeros(2), np.array([1.0, 0.0])) == pytest.approx(0.5)
    rows = fusion(np.array([1.0, 0.0]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(rows, [1.0, 0.5])


def test_topic_terms_are_class_tfidf_top_words():
    texts = ["alarm smoke", "alarm smoke fire", "valve pump", "valve pump valve"]
    terms = topic_terms(texts, np.array([0, 0, 1, 1]), n=2)
    assert terms == [["alarm", "smoke"], ["valve", "pump"]]


def test_opportunities_type_ii_ranked_by_score(patents, embed):
    ops = topic_opportunities(patents, embed, ("F24F", "G08B"), "Acme", YEAR)
    firm_topics = {o.firm_topic for o in ops}
    target_topics = {o.target_topic for o in ops}
    assert len(ops) == len(firm_topics) * len(target_topics) >= 4
    assert all(o.pair_type == "II" and o.firm_code == "F24F" for o in ops)
    assert all(o.target_code == "G08B" for o in ops)
    scores = [o.score for o in ops]
    assert scores == sorted(scores, reverse=True)
    for o in ops:
        assert o.score == pytest.approx(o.fusion * o.develop)
        assert 0 <= o.develop <= 10 and 0 <= o.fusion <= 1
        assert o.develop == pytest.approx(sum(o.dimensions.values()))
        assert len(o.evidence) == 3 and all(e.split("-")[1] == "Acme" for e in o.evidence)
        assert len(o.firm_terms) == len(o.target_terms) == 5
    # the planted best: Acme's smart-control topic meets the young, much-cited IoT topic
    top = ops[0]
    assert {"thermostat", "smart"} & set(top.firm_terms)
    assert {"iot", "gateway"} & set(top.target_terms)
    assert all(e.startswith("smart-") for e in top.evidence)
    assert top.develop == max(o.develop for o in ops)


def test_opportunities_type_iii_and_type_i(patents, embed):
    three = topic_opportunities(patents, embed, ("F24F", "G08B"), "Both", YEAR)
    assert {(o.pair_type, o.firm_code, o.target_code) for o in three} == {("III", "G08B", "F24F")}
    one = topic_opportunities(patents, embed, ("G08B", "H01M"), "Acme", YEAR)
    assert {(o.pair_type, o.firm_code) for o in one} == {("I", "*")}
    assert {o.target_code for o in one} == {"G08B", "H01M"}
    assert [o.score for o in one] == sorted((o.score for o in one), reverse=True)


def test_future_patents_change_nothing(patents, embed):
    before = topic_opportunities(patents, embed, ("F24F", "G08B"), "Acme", YEAR)
    rows = corpus()
    ids = [r["id"] for r in rows]
    future = dict(rows[0], id="future", year=YEAR, ipc=["F24F", "G08B"], cited=ids)
    later = dict(rows[-1], id="later", year=YEAR + 1, assignee="Acme", cited=ids)
    after = topic_opportunities(
        Records.from_rows([*rows, future, later]), embed, ("F24F", "G08B"), "Acme", YEAR
    )
    assert after == before


def test_clear_errors(patents, embed):
    with pytest.raises(ValueError, match="'Nobody'"):
        topic_opportunities(patents, embed, ("F24F", "G08B"), "Nobody", YEAR)
    with pytest.raises(ValueError, match="'Acme' has no patents before 2000"):
        topic_opportunities(patents, embed, ("F24F", "G08B"), "Acme", 2000)
    with pytest.raises(ValueError, match="'H99Z'"):
        topic_opportunities(patents, embed, ("F24F", "H99Z"), "Acme", YEAR)
    with pytest.raises(ValueError, match="two different"):
        topic_opportunities(patents, embed, ("F24F", "F24F"), "Acme", YEAR)
    with pytest.raises(ValueError, match="text"):
        topic_opportunities(Records({"id": ["a"], "year": [2000]}), embed, ("A", "B"), "x", YEAR)


def test_topic_terms_drop_patent_boilerplate():
    from yw_plugin_tcforecast.opportunities import topic_terms

    texts = ["method apparatus smoke alarm", "system comprising smoke sensor", "fan duct"]
    terms = topic_terms(texts, np.array([0, 0, 1]))
    assert terms[0][:1] == ["smoke"] and not {"method", "apparatus", "system"} & set(terms[0])
    assert set(terms[1]) == {"fan", "duct"}
