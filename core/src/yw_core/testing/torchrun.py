"""Launch a script under torchrun on CPU ranks, for plugins' distributed tests."""

from __future__ import annotations

import pytest


def run_torchrun(script, *args, nproc: int = 2, timeout: float = 180):
    """Run `python -m torch.distributed.run --standalone` on `script` with `nproc` CPU ranks.

    For plugins' distributed tests: the workers write their reports to files the test reads.
    One thread per rank; torchrun variables from an outer launch are dropped. Fails the test
    with both output streams when a rank fails.
    """
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    proc = subprocess.run(
        [*cmd, f"--nproc_per_node={nproc}", str(script), *map(str, args)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        pytest.fail(f"torchrun failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc
