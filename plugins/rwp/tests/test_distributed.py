"""RWP under torchrun: two gloo processes on CPU run `fit`, checked through the files they save."""

import math
from pathlib import Path

import pytest
import torch

from yw_core.testing import run_torchrun

WORKER = Path(__file__).with_name("dist_worker.py")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run dist_worker.py on two ranks once; return the two rank reports."""
    out = tmp_path_factory.mktemp("rwp-dist")
    run_torchrun(WORKER, out)
    return [torch.load(out / f"rank{r}.pt") for r in range(2)]


def _equal(a: dict, b: dict, params_only: bool = False) -> bool:
    keys = [k for k in a if not (params_only and ("running" in k or "num_batches" in k))]
    return all(torch.equal(a[k], b[k]) for k in keys)


@pytest.mark.distributed
def test_both_ranks_end_with_the_same_weights(ranks):
    """Weights only: DDP broadcasts rank 0's BN buffers at the start of each forward, so rank 1's
    lag rank 0's last update at the end of training (plain SGD under DDP does the same)."""
    assert ranks[0]["world_size"] == 2
    for run in ("rwp", "alpha0", "gamma0"):
        assert _equal(ranks[0][run], ranks[1][run], params_only=True), run
    assert all(math.isfinite(x) for r in ranks for x in r["rwp_losses"])


@pytest.mark.distributed
def test_the_noise_changes_the_run(ranks):
    assert not _equal(ranks[0]["rwp"], ranks[0]["gamma0"], params_only=True)


@pytest.mark.distributed
def test_alpha_zero_is_sgd_on_the_clean_ranks_batches(ranks):
    """alpha = 0: odd ranks contribute zero gradient and DDP halves rank 0's doubled one, so the
    run is plain SGD on rank 0's shard, bit for bit (weights and BN statistics)."""
    assert _equal(ranks[0]["alpha0"], ranks[0]["local_sgd"])


@pytest.mark.distributed
def test_alpha_half_without_noise_is_ddp_sgd(ranks):
    """gamma = 0, alpha = 0.5: both ranks weigh their loss by 1, so DDP averages two clean
    gradients, exactly as plain SGD under DDP does."""
    for r in ranks:
        assert _equal(r["gamma0"], r["sgd"], params_only=True)
