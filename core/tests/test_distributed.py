"""Runtime under torchrun: two gloo processes on CPU, checked through the files they write."""

import json
from pathlib import Path

import pytest

from yw_core.testing import run_torchrun

WORKER = Path(__file__).with_name("dist_worker.py")
MARKER = "YW-DIST-PRINT-MARKER"


@pytest.fixture(scope="module")
def torchrun(tmp_path_factory):
    """Run dist_worker.py on two ranks once; return (per-rank reports, combined stdout)."""
    out = tmp_path_factory.mktemp("dist")
    proc = run_torchrun(WORKER, out)
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    closed = [json.loads((out / f"rank{r}.closed").read_text()) for r in range(2)]
    return reports, closed, proc.stdout


@pytest.mark.distributed
def test_process_group_set_up_and_closed(torchrun):
    reports, closed, _ = torchrun
    assert [r["rank"] for r in reports] == [0, 1]
    for r in reports:
        assert r["world_size"] == 2 and r["is_distributed"] and r["backend"] == "gloo"
        assert r["describe"]["world_size"] == 2 and r["describe"]["rank"] == r["rank"]
    assert [r["is_main"] for r in reports] == [True, False]
    assert closed == [True, True]  # leaving the `with` destroyed the group the runtime created


@pytest.mark.distributed
def test_all_reduce_across_ranks(torchrun):
    reports, _, _ = torchrun
    for r in reports:
        assert (r["sum"], r["mean"], r["max"], r["min"]) == (3.0, 1.5, 2.0, 1.0)


@pytest.mark.distributed
def test_loader_shards_dataset_disjointly(torchrun):
    reports, _, _ = torchrun
    for key in ("items", "items_epoch1"):
        a, b = reports[0][key], reports[1][key]
        assert len(a) == len(set(a)) == 5 and len(b) == len(set(b)) == 5
        assert set(a).isdisjoint(b) and set(a) | set(b) == set(range(10))
    for r in reports:
        assert r["items_again"] == r["items"]  # same epoch, same order
    assert [r["items"] for r in reports] != [r["items_epoch1"] for r in reports]


@pytest.mark.distributed
def test_print_only_on_rank_zero(torchrun):
    _, _, stdout = torchrun
    assert sum(line.strip().endswith(MARKER) for line in stdout.splitlines()) == 1


@pytest.mark.distributed
def test_ddp_averages_gradients(torchrun):
    reports, _, _ = torchrun
    assert all(r["ddp_type"] == "DistributedDataParallel" for r in reports)
    assert reports[0]["ddp_grad"] == reports[1]["ddp_grad"]
    assert reports[0]["local_grad"] != reports[1]["local_grad"]  # inputs differ per rank
    local0, local1 = (_flat(r["local_grad"]) for r in reports)
    mean = [(a + b) / 2 for a, b in zip(local0, local1)]
    assert _flat(reports[0]["ddp_grad"]) == pytest.approx(mean)


def _flat(rows):
    return [x for row in rows for x in row]
