"""m-RWP, ARWP and m-ARWP under torchrun: two gloo processes on CPU run `fit`."""

import math
from pathlib import Path

import pytest
import torch

from yw_core.testing import run_torchrun

WORKER = Path(__file__).with_name("dist_worker.py")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Run dist_worker.py on two ranks once; return the two rank reports."""
    out = tmp_path_factory.mktemp("marwp-dist")
    run_torchrun(WORKER, out)
    return [torch.load(out / f"rank{r}.pt") for r in range(2)]


@pytest.mark.distributed
@pytest.mark.parametrize("name", ["mrwp", "arwp", "marwp"])
def test_ranks_stay_identical_and_the_loss_is_finite(ranks, name):
    """m-RWP splits clean/perturbed over the ranks; ARWP and m-ARWP draw the same noise on every
    rank and fold DDP's averaged gradient into F, so the weights never drift apart."""
    a, b = (r[name]["weights"] for r in ranks)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(math.isfinite(x) for r in ranks for x in r[name]["losses"])
