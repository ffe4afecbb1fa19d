"""Wall-clock time of `yw-core bench defense` on the embedded default (digits, CPU unless told).

Runs the command the issue names twice in fresh processes, each with its own empty model cache
for the first run (so it includes training the reference model) and the filled cache for the
second (the model loads from disk):

    yw-core bench defense --methods none --attacks square,simba --queries 100,1000 --n 300

    python benchmarks/bench_defense.py [--device cpu] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARGS = ["--methods", "none", "--attacks", "square,simba", "--queries", "100,1000", "--n", "300"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    yw_core = shutil.which("yw-core", path=str(Path(sys.executable).parent))
    if yw_core is None:
        sys.exit("yw-core is not installed next to this Python; pip install -e core first")
    root = Path(tempfile.mkdtemp(prefix="yw-bench-defense-"))
    env = {**os.environ, "YW_CACHE_DIR": str(root / "cache")}
    timings = {}
    try:
        for label in ("cold cache (trains the model)", "warm cache"):
            cmd = [yw_core, "bench", "defense", *ARGS, "--device", args.device, "--no-progress"]
            start = time.perf_counter()
            proc = subprocess.run(
                [*cmd, "--out", str(root / "out")], env=env, capture_output=True, text=True
            )
            timings[label] = time.perf_counter() - start
            if proc.returncode != 0:
                sys.exit(f"bench failed:\n{proc.stderr}")
        table = (root / "out" / "results.txt").read_text()
    finally:
        shutil.rmtree(root)
    if args.json:
        print(json.dumps({"command": ["yw-core", "bench", "defense", *ARGS], **timings}))
    else:
        print("yw-core bench defense " + " ".join(ARGS) + f" --device {args.device}")
        for label, seconds in timings.items():
            print(f"  {label}: {seconds:.1f} s")
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
