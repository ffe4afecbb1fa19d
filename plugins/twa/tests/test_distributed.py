"""TWA under torchrun: two gloo processes on CPU, checked through the files they write."""

import json
from pathlib import Path

import pytest

from yw_core.testing import run_torchrun

WORKER = Path(__file__).with_name("dist_worker.py")


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """Run dist_worker.py on two ranks once; return the per-rank reports."""
    out = tmp_path_factory.mktemp("twa-dist")
    run_torchrun(WORKER, out)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.distributed
@pytest.mark.parametrize("variant", ["iclr", "journal"])
def test_each_rank_holds_its_rows_and_sums_them(reports, variant):
    assert [r[variant]["rows"] for r in reports] == [[0, 2], [2, 3]]  # 3 checkpoints, 2 ranks
    assert all(r[variant]["reduce"] for r in reports)


@pytest.mark.distributed
@pytest.mark.parametrize("variant", ["iclr", "journal"])
def test_sharded_ddp_run_equals_a_one_process_run(reports, variant):
    """DDP over half batches with a row-sharded subspace = one process, whole batch, all rows."""
    for r in reports:
        assert r[variant]["moved"] > 1e-3
        assert r[variant]["max_diff_to_one_process"] < 1e-5


@pytest.mark.distributed
def test_fit_under_torchrun_ends_identical_on_both_ranks_and_in_the_span(reports):
    assert reports[0]["fit_updates"] == 2 * 4  # 64 samples, 2 ranks, batch 8, 2 epochs
    assert reports[0]["fit_weights"] == reports[1]["fit_weights"]
    assert all(r["fit_outside_span"] < 1e-5 for r in reports)
