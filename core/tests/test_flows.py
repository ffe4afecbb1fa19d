"""Network flows: the table's operations, the synthetic flows whose anomalies are planted, the
checks on columns (each error names the column) and the NSL-KDD / UNSW-NB15 / CIC-IDS2017 files."""

import time

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from yw_core.flows import Flows, flows_from_columns, read_flows, synthetic_flows


@pytest.fixture(scope="module")
def flows():
    return synthetic_flows(3000, seed=0)


def test_synthetic_flows_have_the_documented_shapes_and_types(flows):
    assert flows.x.shape == (3000, 20) and flows.x.dtype == torch.float32
    assert flows.y.dtype == torch.int64 and torch.isfinite(flows.x).all()
    assert torch.equal(flows.y, flows.truth) and len(flows) == 3000 == len(flows.kind)
    assert set(flows.kind) == {"benign", "dos", "scan", "exfiltration"}
    assert int(flows.truth.sum()) == 300
    assert all((k != "benign") == bool(t) for k, t in zip(flows.kind, flows.truth))
    assert all(len(p) == 3 and set(p) <= set(flows.names) for p in flows.planted.values())
    x, y = flows.dataset()[0]
    assert x.shape == (20,) and y.dtype == torch.int64


def test_synthetic_flows_are_deterministic_per_seed_and_fast():
    start = time.perf_counter()
    a = synthetic_flows(3000, seed=3, label_fraction=0.1)
    assert time.perf_counter() - start < 0.5
    b = synthetic_flows(3000, seed=3, label_fraction=0.1)
    c = synthetic_flows(3000, seed=4, label_fraction=0.1)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and a.kind == b.kind
    assert not torch.equal(a.x, c.x)


def test_label_fraction_hides_labels_but_keeps_the_truth():
    flows = synthetic_flows(1000, label_fraction=0.1, seed=1)
    labelled = flows.y >= 0
    assert int(labelled.sum()) == 100 and int((flows.y == 1).sum()) == 10
    assert torch.equal(flows.y[labelled], flows.truth[labelled])
    assert int(flows.truth.sum()) == 100


def test_extra_anomaly_kinds_get_their_own_unused_features():
    flows = synthetic_flows(500, kinds=("dos", "worm", "botnet"), seed=2)
    used = [f for p in flows.planted.values() for f in p]
    assert len(used) == len(set(used)) == 9 and set(flows.kind) == {
        "benign",
        "dos",
        "worm",
        "botnet",
    }


def _auc(train, test, kind, features):
    """Held-out AUC of a logistic regression of kind-vs-benign on the named features."""
    cols = [train.names.index(f) for f in features]

    def part(f):
        rows = [i for i, k in enumerate(f.kind) if k in (kind, "benign")]
        return f.x[rows][:, cols].numpy(), np.array([f.kind[i] == kind for i in rows])

    (x, y), (x_test, y_test) = part(train), part(test)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    return roc_auc_score(y_test, model.decision_function(x_test))


def test_the_planted_features_and_only_they_separate_each_kind(flows):
    train, test = flows.split(0.5, seed=0)
    test = test.standardise(train)
    train = train.standardise()
    for kind, planted in flows.planted.items():
        others = [f for f in flows.names if f not in planted]
        assert _auc(train, test, kind, planted) > 0.95, kind
        assert abs(_auc(train, test, kind, others) - 0.5) < 0.1, kind


def test_anomalies_move_only_their_planted_features(flows):
    benign = flows.x[flows.truth == 0]
    for kind, planted in flows.planted.items():
        median = flows.x[[k == kind for k in flows.kind]].median(0).values
        # the share of benign flows below the kind's median: extreme on planted features only
        below = (benign < median).float().mean(0)
        for name, share in zip(flows.names, below.tolist()):
            ok = (share < 0.05 or share > 0.95) if name in planted else 0.3 < share < 0.7
            assert ok, (kind, name, share)


def test_hide_labels_keeps_a_stratified_fraction_and_the_truth(flows):
    hidden = flows.hide_labels(0.05, seed=0)
    kept = hidden.y >= 0
    assert int(kept.sum()) == 150 and int((hidden.y == 1).sum()) == 15
    assert torch.equal(hidden.y[kept], flows.y[kept]) and torch.equal(hidden.truth, flows.truth)
    assert torch.equal(hidden.x, flows.x) and hidden.kind == flows.kind
    tiny = flows.hide_labels(0.0001, seed=0)
    assert int((tiny.y == 0).sum()) == 1 and int((tiny.y == 1).sum()) == 1
    assert torch.equal(flows.hide_labels(0.05, seed=0).y, hidden.y)
    assert not torch.equal(flows.hide_labels(0.05, seed=1).y, hidden.y)
    assert len(hidden.labelled()) == 150 and (hidden.labelled().y >= 0).all()


def test_split_is_stratified_disjoint_and_complete():
    flows = synthetic_flows(1000, label_fraction=0.2, seed=0)
    flows = Flows(
        x=flows.x,
        y=flows.y,
        names=flows.names,
        truth=flows.truth,
        kind=tuple(map(str, range(1000))),
    )  # row ids as kinds, to trace rows
    train, test = flows.split(0.3, seed=0)
    assert len(train) == 700 and len(test) == 300
    assert not set(train.kind) & set(test.kind) and len(set(train.kind) | set(test.kind)) == 1000
    assert int(test.truth.sum()) == 30 and int(train.truth.sum()) == 70
    row = int(test.kind[0])
    assert torch.equal(test.x[0], flows.x[row]) and test.y[0] == flows.y[row]
    unlabelled = Flows(x=flows.x, y=flows.y, names=flows.names)  # stratified by y, -1 included
    train, test = unlabelled.split(0.5, seed=0)
    assert int((test.y == 1).sum()) == int((train.y == 1).sum()) == 10


def test_standardise_uses_the_references_statistics():
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    ref = Flows(x=x, y=torch.tensor([0, 1]), names=("a", "b"))
    other = Flows(x=torch.tensor([[5.0, 7.0]]), y=torch.tensor([-1]), names=("a", "b"))
    assert torch.allclose(ref.standardise().x, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    assert torch.allclose(other.standardise(ref).x, torch.tensor([[3.0, 2.0]]))  # std 0 -> 1
    with pytest.raises(ValueError, match="reference has features"):
        other.standardise(Flows(x=x, y=torch.tensor([0, 1]), names=("a", "c")))


def test_subset_accepts_indices_masks_and_slices(flows):
    assert flows.subset([2, 0]).kind == (flows.kind[2], flows.kind[0])
    assert len(flows.subset(flows.y == 1)) == 300
    part = flows.subset(slice(0, 10))
    assert torch.equal(part.x, flows.x[:10]) and part.planted == flows.planted


def test_flows_check_their_fields():
    with pytest.raises(ValueError, match=r"y holds \[2\]"):
        Flows(x=torch.zeros(2, 1), y=torch.tensor([0, 2]), names=("a",))
    with pytest.raises(ValueError, match="NaN or inf in b"):
        Flows(x=torch.tensor([[0.0, float("nan")]]), y=torch.tensor([0]), names=("a", "b"))
    with pytest.raises(ValueError, match="distinct feature names"):
        Flows(x=torch.zeros(1, 2), y=torch.tensor([0]), names=("a", "a"))


def test_columns_become_checked_flows():
    flows = flows_from_columns(
        {"bytes": ["10", 20, 30.5, 1], "syn": [True, False, 0, 1], "label": [0, "1", "", None]}
    )
    assert flows.names == ("bytes", "syn") and flows.x.dtype == torch.float32
    assert flows.x[:, 0].tolist() == [10.0, 20.0, 30.5, 1.0]
    assert flows.y.tolist() == [0, 1, -1, -1] and flows.truth is None and flows.kind is None
    named = flows_from_columns({"a": [1, 2, 3, 4], "label": ["BENIGN", "normal", "DDoS", -1]})
    assert named.y.tolist() == [0, 0, 1, -1]
    assert named.kind == ("benign", "benign", "DDoS", "unknown") and named.truth is None
    full = flows_from_columns({"a": [1, 2], "label": [0.0, 1.0]})
    assert full.truth.tolist() == [0, 1]
    assert flows_from_columns({"a": [1, 2]}, label=None).y.tolist() == [-1, -1]


@pytest.mark.parametrize(
    "columns, message",
    [
        (
            {"a": [1, 2], "proto": ["tcp", "udp"], "label": [0, 1]},
            r"'proto' is not numeric .*'tcp'",
        ),
        ({"a": [1, float("nan")], "label": [0, 1]}, r"column 'a' has nan \(NaN or inf\) at row 1"),
        ({"a": ["1", "inf"], "label": [0, 1]}, r"column 'a' has 'inf' \(NaN or inf\) at row 1"),
        ({"a": [1, None], "label": [0, 1]}, "column 'a' has no value at row 1"),
        ({"a": [1, 2], "label": ["", None]}, "every value of the label column 'label' is missing"),
        ({"a": [1, 2], "y": [0, 1]}, "no column 'label'"),
        ({"a": [1, 2], "label": [0, 2]}, "label column 'label' has 2 at row 1"),
        ({"a": [1, 2, 3], "label": [0, 1]}, r"unequal lengths \(a=3, label=2\)"),
        ({"label": [0, 1]}, "no feature columns"),
    ],
)
def test_bad_columns_are_named(columns, message):
    with pytest.raises(ValueError, match=message):
        flows_from_columns(columns)


def test_plain_csv_round_trips(tmp_path):
    path = tmp_path / "flows.csv"
    path.write_text("bytes,syn,label,kind\n10,0.5,0,benign\n20,0.1,1,dos\n30,0.2,,\n")
    flows = read_flows(path)
    assert flows.names == ("bytes", "syn") and flows.x[:, 0].tolist() == [10, 20, 30]
    assert flows.y.tolist() == [0, 1, -1] and flows.kind == ("benign", "dos", "unknown")
    path.write_text("bytes,label\n10,0\n")
    assert read_flows(path).truth.tolist() == [0]
    path.write_text("bytes,y\n10,0\n")
    with pytest.raises(ValueError, match=r"misses column\(s\) label for a csv file"):
        read_flows(path)
    with pytest.raises(FileNotFoundError):
        read_flows(tmp_path / "absent.csv")
    with pytest.raises(ValueError, match="unknown flow file kind"):
        read_flows(path, kind="kitsune")


def _kdd_row(protocol, service, flag, label):
    return ",".join(["0", protocol, service, flag, "491", "0"] + ["0"] * 35 + [label, "20"])


def test_nsl_kdd_files_are_read_with_one_hot_categories(tmp_path):
    path = tmp_path / "KDDTrain+.txt"
    rows = [("tcp", "ftp_data", "SF", "normal"), ("udp", "other", "SF", "neptune")]
    rows.append(("tcp", "private", "S0", "neptune"))
    path.write_text("\n".join(_kdd_row(*r) for r in rows) + "\n")
    flows = read_flows(path, kind="nsl-kdd")
    assert flows.x.shape == (3, 38 + 2 + 3 + 2)
    assert flows.names[:3] == ("duration", "protocol_type=tcp", "protocol_type=udp")
    assert "difficulty" not in " ".join(flows.names) and "service=private" in flows.names
    assert flows.x[:, flows.names.index("flag=S0")].tolist() == [0, 0, 1]
    assert flows.x[:, flows.names.index("src_bytes")].tolist() == [491] * 3
    assert flows.y.tolist() == [0, 1, 1] and flows.kind == ("benign", "neptune", "neptune")
    path.write_text(",".join(["0"] * 41) + "\n")
    with pytest.raises(ValueError, match="line 1: 41 fields"):
        read_flows(path, kind="nsl-kdd")


def test_a_test_file_is_aligned_to_its_training_file(tmp_path):
    train, test = tmp_path / "train.txt", tmp_path / "test.txt"
    train.write_text(
        _kdd_row("tcp", "ftp", "SF", "normal") + "\n" + _kdd_row("udp", "ftp", "REJ", "satan")
    )
    test.write_text(_kdd_row("icmp", "ftp", "SF", "smurf") + "\n")
    reference = read_flows(train, kind="nsl-kdd")
    with pytest.warns(UserWarning, match="1 rows have categories the reference lacks"):
        aligned = read_flows(test, kind="nsl-kdd", like=reference)
    assert aligned.names == reference.names
    assert aligned.x[0, reference.names.index("flag=SF")] == 1
    assert (
        aligned.x[0, [reference.names.index(f"protocol_type={p}") for p in ("tcp", "udp")]].sum()
        == 0
    )


def test_unsw_nb15_files_are_read(tmp_path):
    path = tmp_path / "UNSW_NB15_training-set.csv"
    path.write_text(
        "id,dur,proto,service,state,spkts,attack_cat,label\n"
        "1,0.1,tcp,-,FIN,6,Normal,0\n"
        "2,0.2,udp,dns,INT,2,Generic,1\n"
        "3,0.0,tcp,http,FIN,8, Exploits ,1\n"
    )
    flows = read_flows(path, kind="unsw-nb15")
    assert flows.names == (
        "dur", "proto=tcp", "proto=udp", "service=-", "service=dns", "service=http",
        "state=FIN", "state=INT", "spkts",
    )  # fmt: skip
    assert flows.y.tolist() == [0, 1, 1] and flows.kind == ("benign", "Generic", "Exploits")
    assert flows.truth.tolist() == [0, 1, 1]
    path.write_text("id,dur,proto,label\n1,0.1,tcp,0\n")
    with pytest.raises(ValueError, match=r"misses column\(s\) attack_cat, service, state"):
        read_flows(path, kind="unsw-nb15")


def test_cic_ids2017_files_are_read_and_infinities_named_or_dropped(tmp_path):
    path = tmp_path / "Tuesday-WorkingHours.pcap_ISCX.csv"
    path.write_text(
        "Flow ID, Source IP, Destination Port, Flow Bytes/s, Fwd Header Length,"
        " Fwd Header Length, Timestamp, Label\n"
        "a,1.2.3.4,80,100.5,20,20,3/7/2017,BENIGN\n"
        "b,1.2.3.5,21,Infinity,40,40,3/7/2017,FTP-Patator\n"
        "c,1.2.3.6,22,NaN,40,40,3/7/2017,SSH-Patator\n"
        "d,1.2.3.7,80,7,32,32,3/7/2017,BENIGN\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"column 'Flow Bytes/s' has 'Infinity' \(NaN or inf\)"):
        read_flows(path, kind="cic-ids2017")
    with pytest.warns(UserWarning, match="dropped 2 of 4 rows"):
        flows = read_flows(path, kind="cic-ids2017", dropna=True)
    assert flows.names == (
        "Destination Port", "Flow Bytes/s", "Fwd Header Length", "Fwd Header Length.1"
    )  # fmt: skip
    assert flows.x[:, 1].tolist() == [100.5, 7.0]
    assert flows.y.tolist() == [0, 0] and flows.truth.tolist() == [0, 0]
    path.write_text("Flow ID, Source IP, Destination Port\na,b,80\n")
    with pytest.raises(ValueError, match=r"misses column\(s\) Label"):
        read_flows(path, kind="cic-ids2017")
