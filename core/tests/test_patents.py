"""Patent tables: the checks (each error names the record), the CSV/Parquet files, and the
synthetic generator whose convergence process is known."""

from itertools import combinations

import numpy as np
import pytest

from yw_core.interfaces import Records
from yw_core.patent_synth import synthetic_patents
from yw_core.patents import check_patents, firm_codes, ipc_subclass, read_patents, write_patents


def table(**changes):
    columns = {
        "id": ["P1", "P2", "P3"],
        "year": [2001, 2002, 2003],
        "assignee": ["Acme", "Acme", "Other"],
        "ipc": [["F24F 11/00", "G08B"], ["F24F0011000000"], ["H01M10/42", "h01m"]],
        "cited": [[], ["P1"], ["P1", "P2"]],
        "text": ["air conditioner alarm", "air flow", "battery cell"],
        "claims": [10, 12, 3],
    }
    columns.update(changes)
    return Records(columns)


@pytest.mark.parametrize(
    "code, subclass",
    [("F24F", "F24F"), ("F24F 11/00", "F24F"), ("f24f11/00", "F24F"), ("G08B0021180000", "G08B")],
)
def test_ipc_codes_of_any_level_cut_to_the_subclass(code, subclass):
    assert ipc_subclass(code) == subclass


@pytest.mark.parametrize("code", ["F24", "Z01B", "F24F 11", "F24F-11/00", "", 42, None])
def test_malformed_ipc_code_is_a_value_error_quoting_it(code):
    with pytest.raises(ValueError, match="malformed IPC code"):
        ipc_subclass(code)


def test_check_normalises_codes_and_leaves_the_callers_table_alone():
    records = table()
    checked = check_patents(records)
    assert checked["ipc"] == [["F24F", "G08B"], ["F24F"], ["H01M"]]
    assert records["ipc"][0] == ["F24F 11/00", "G08B"]
    assert checked["claims"] == [10, 12, 3] and checked["year"] == [2001, 2002, 2003]
    assert firm_codes(checked, "Acme") == {"F24F", "G08B"}


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"ipc": [["F24F"], ["F2F"], ["H01M"]]},
            r"patent 'P2' \(row 1\): malformed IPC code 'F2F'",
        ),
        ({"ipc": [["F24F"], [], ["H01M"]]}, r"patent 'P2' \(row 1\) has no IPC code"),
        ({"ipc": [["F24F"], "F24F", ["H01M"]]}, r"patent 'P2' \(row 1\) has ipc 'F24F'"),
        ({"id": ["P1", "P1", "P3"]}, r"patent 'P1' \(row 1\) repeats the id of row 0"),
        ({"id": ["P1", "", "P3"]}, "row 1 has id ''"),
        ({"year": [2001, 2002.5, 2003]}, r"patent 'P2' \(row 1\) has year 2002.5"),
        ({"year": [2001, "2002", 2003]}, r"patent 'P2' \(row 1\) has year '2002'"),
        ({"claims": [10, -1, 3]}, r"patent 'P2' \(row 1\) has claims -1"),
        ({"cited": [[], ["P1", 7], []]}, r"patent 'P2' \(row 1\) has cited entries \[7\]"),
        ({"text": ["a", None, "c"]}, r"patent 'P2' \(row 1\) has text None"),
    ],
)
def test_bad_records_are_named(changes, message):
    with pytest.raises(ValueError, match=message):
        check_patents(table(**changes))


def test_missing_columns_are_named():
    columns = {k: table()[k] for k in table().columns if k not in ("cited", "text")}
    with pytest.raises(ValueError, match=r"patents miss column\(s\): cited, text"):
        check_patents(Records(columns))
    with pytest.raises(ValueError, match="are empty"):
        check_patents(Records({k: [] for k in table().columns}))


def test_csv_round_trip(tmp_path):
    path = tmp_path / "patents.csv"
    write_patents(table(), path)
    back = read_patents(path)
    assert back.columns == table().columns
    for name in back.columns:
        assert back[name] == check_patents(table())[name]


def test_csv_errors_name_the_file_line_and_patent(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,year,assignee,ipc,text\nP1,2001,A,F24F,x\n")
    with pytest.raises(ValueError, match=r"p.csv misses column\(s\) cited"):
        read_patents(path)
    path.write_text("id,year,assignee,ipc,cited,text\nP1,2001,A,F24F,,x\nP2,20x2,A,F24F,P1,y\n")
    with pytest.raises(ValueError, match=r"line 3 \(patent 'P2'\): column year has '20x2'"):
        read_patents(path)
    path.write_text("id,year,assignee,ipc,cited,text\nP1,2001,A,F24F;X99,,x\n")
    with pytest.raises(ValueError, match=r"patent 'P1' \(row 0\): malformed IPC code 'X99'"):
        read_patents(path)
    with pytest.raises(FileNotFoundError, match="no patent file"):
        read_patents(tmp_path / "absent.csv")
    (tmp_path / "p.json").write_text("{}")
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        read_patents(tmp_path / "p.json")


def test_parquet_reads_like_csv(tmp_path):
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    checked = check_patents(table())
    frame = pandas.DataFrame({name: checked[name] for name in checked.columns})
    frame.to_parquet(tmp_path / "p.parquet")
    back = read_patents(tmp_path / "p.parquet")
    assert back["ipc"] == checked["ipc"] and back["cited"] == checked["cited"]


@pytest.fixture(scope="module")
def synth():
    return synthetic_patents(seed=0)


def test_synthetic_patents_are_valid_and_deterministic(synth):
    records = check_patents(synth.records)
    assert len(records) > 5000 and set(records["year"]) == set(range(2006, 2024))
    again = synthetic_patents(seed=0).records
    assert again["text"] == synth.records["text"] and again["ipc"] == synth.records["ipc"]
    assert synthetic_patents(seed=1).records["text"] != synth.records["text"]
    assert synth.focal_firm in records["assignee"]
    ids = set(records["id"])
    assert all(c in ids for cited in records["cited"] for c in cited)
    assert max(synth.before(2010)["year"]) == 2009


def test_the_process_probability_ranks_the_pairs_that_converge(synth):
    from sklearn.metrics import roc_auc_score

    def pairs(start, stop):
        return {
            tuple(sorted(c))
            for c, y in zip(synth.records["ipc"], synth.records["year"])
            if start <= y <= stop and len(c) > 1
        }

    candidates = sorted(set(combinations(synth.codes, 2)) - pairs(2006, 2020))
    converged = pairs(2021, 2023)
    labels = np.array([p in converged for p in candidates])
    truth = synth.convergence_probability(candidates, 2021, 2023)
    assert 0.02 < labels.mean() < 0.15  # a rare event, as in the paper (~1 in 6 after 2:8)
    assert ((truth >= 0) & (truth <= 1)).all()
    assert roc_auc_score(labels, truth) > 0.9
    # the planted pairs end up closer than they start
    index = {c: i for i, c in enumerate(synth.codes)}
    for a, b in synth.converging:
        z = synth.positions[:, [index[a], index[b]]]
        assert np.linalg.norm(z[-1, 0] - z[-1, 1]) < np.linalg.norm(z[0, 0] - z[0, 1])


def test_generator_arguments_are_checked():
    with pytest.raises(ValueError, match="codes must be in 3"):
        synthetic_patents(codes=2)
    with pytest.raises(ValueError, match="at least three years"):
        synthetic_patents(years=(2000, 2001))
