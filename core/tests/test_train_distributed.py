"""`fit` under torchrun: two gloo processes on CPU train one DDP model."""

import json
from pathlib import Path

import pytest

from yw_core.testing import run_torchrun


@pytest.mark.distributed
def test_fit_under_torchrun_keeps_ranks_identical(tmp_path):
    run_torchrun(Path(__file__).with_name("train_worker.py"), tmp_path)
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["rank"] for r in reports] == [0, 1]
    assert all(r["wrapped"] == "Sequential" for r in reports)  # fit returns the unwrapped model
    assert reports[0]["weights"] == reports[1]["weights"]
    assert reports[0]["buffers"] == reports[1]["buffers"]  # BN statistics synced from rank 0
    assert all(r["updates"] == 2 * 4 for r in reports)  # 64 samples / 2 ranks / batch 8, 2 epochs
    assert reports[0]["losses"] != reports[1]["losses"]  # each rank saw its own shard
