"""Bad input to tcforecast: Config values (ValidationError naming the field), patents and
queries that name the record at fault, histories too short to learn from."""

import pytest
from pydantic import ValidationError

from yw_core.interfaces import Records
from yw_plugin_tcforecast import TCForecast


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"window": 0}, "window"),
        ({"sampler": "oversample"}, "sampler"),
        ({"ratio": 0}, "ratio"),
        ({"features": ()}, "features"),
        ({"features": ("citations",)}, "features"),
        ({"base_models": ("svm", "catboost")}, "base_models"),
        ({"single_model": "catboost"}, "single_model"),
        ({"cv": 1}, "cv"),
        ({"theta": 0}, "theta"),
        ({"windows": 3}, "windows"),
    ],
)
def test_bad_config_values_name_the_field(overrides, field):
    with pytest.raises(ValidationError, match=field):
        TCForecast(**overrides)


def test_keep_beyond_the_base_models():
    with pytest.raises(ValueError, match="keep=4 exceeds the 3 base_models"):
        TCForecast(base_models=("rf", "knn", "mlp"), keep=4)


def with_column(records, name, values):
    return Records({**{c: records[c] for c in records.columns}, name: values})


def test_malformed_ipc_code_names_the_patent(synth):
    ipc = list(synth.records["ipc"])
    ipc[5] = ["G06F", "G6F"]
    bad = with_column(synth.records, "ipc", ipc)
    pid = synth.records["id"][5]
    with pytest.raises(ValueError, match=rf"history: patent '{pid}' \(row 5\): malformed IPC code"):
        TCForecast().fit(bad)


def test_missing_column_is_named(synth):
    bare = Records({c: synth.records[c] for c in synth.records.columns if c != "cited"})
    with pytest.raises(ValueError, match=r"history miss column\(s\): cited"):
        TCForecast().fit(bare)


def test_history_shorter_than_two_windows(synth):
    recent = synth.before(2013)  # 2010-2012 only
    with pytest.raises(ValueError, match="shorter than two windows of 3 years"):
        TCForecast(window=3).fit(recent)


def test_no_convergence_to_learn_from():
    rows = [
        {"id": str(i), "year": 2000 + i, "assignee": "x", "ipc": ["A01B"], "cited": [], "text": "t"}
        for i in range(8)
    ]
    with pytest.raises(ValueError, match="only 0 unconnected pair"):
        TCForecast(window=2).fit(Records.from_rows(rows))


@pytest.mark.parametrize(
    "query, message",
    [
        (
            {"year": [2022, 2022], "a": ["A01B", "A0B"], "b": ["C12N", "C12N"]},
            "query row 1: malformed",
        ),
        ({"year": [2022], "a": ["A01B"], "b": ["A01B 1/00"]}, "query row 0: a and b are the same"),
        (
            {"year": [2022], "a": ["A01B"], "b": ["H04W"]},
            "query row 0: IPC code H04W has no patent",
        ),
        (
            {"year": [2010], "a": ["A01B"], "b": ["C12N"]},
            "query row 0: the forecast window 2010 has no",
        ),
        ({"year": [2022.5], "a": ["A01B"], "b": ["C12N"]}, "query row 0: year 2022.5"),
    ],
)
def test_bad_queries_name_the_row(fitted, query, message):
    with pytest.raises(ValueError, match=message):
        fitted.predict(Records(query))
