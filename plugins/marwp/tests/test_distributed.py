"""m-RWP, ARWP and m-ARWP under torchrun: two gloo processes on CPU run `fit`."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("dist_worker.py")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run dist_worker.py on two ranks once; return the two rank reports."""
    out = tmp_path_factory.mktemp("marwp-dist")
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.run(
        [*cmd, str(WORKER), str(out)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout}\n{proc.stderr}"
    return [torch.load(out / f"rank{r}.pt") for r in range(2)]


@pytest.mark.distributed
@pytest.mark.parametrize("name", ["mrwp", "arwp", "marwp"])
def test_ranks_stay_identical_and_the_loss_is_finite(ranks, name):
    """m-RWP splits clean/perturbed over the ranks; ARWP and m-ARWP draw the same noise on every
    rank and fold DDP's averaged gradient into F, so the weights never drift apart."""
    a, b = (r[name]["weights"] for r in ranks)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(math.isfinite(x) for r in ranks for x in r[name]["losses"])
