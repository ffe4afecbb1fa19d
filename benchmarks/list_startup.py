"""Whole-process time of `yw-core list` with 20 plugin entry points installed, as a ratio to a bare
`entry_points(group='yw.defenses')` call in a fresh interpreter (target: 2.0x or less).

Both commands see the same 20 plugin entry points: those already installed in this environment
(e.g. yw-plugin-attacks' eight) topped up with fake distributions (dist-info folders on
PYTHONPATH, one entry point each, spread over the nine method groups), so the ratio measures what
yw-core adds on top of reading entry-point metadata: its own imports, requirement checks, table.

    python benchmarks/list_startup.py [--runs 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GROUPS = [
    "yw.defenses",
    "yw.weight_optimizers",
    "yw.ood_scorers",
    "yw.unlearners",
    "yw.rec_models",
    "yw.forecasters",
    "yw.interpreters",
    "yw.continual_learners",
    "yw.attacks",
]


def make_site(root: Path, count: int = 20) -> None:
    """`count` fake distributions, each declaring one method entry point and a yw-core pin."""
    for i in range(count):
        info = root / f"yw_bench_plugin_{i}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: yw-bench-plugin-{i}\nVersion: 1.0\n"
            "Requires-Dist: yw-core>=1,<2\nRequires-Dist: torch>=2.2\n"
        )
        group = GROUPS[i % len(GROUPS)]
        (info / "entry_points.txt").write_text(
            f"[{group}]\nmethod-{i} = yw_bench_plugin_{i}:Method\n"
        )


def time_command(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each command (interleaved)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()

    yw_core = shutil.which("yw-core", path=str(Path(sys.executable).parent))
    if yw_core is None:
        sys.exit("yw-core is not installed next to this Python; pip install -e core first")
    root = Path(tempfile.mkdtemp(prefix="yw-bench-"))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("YW_")}
        installed = len(json.loads(subprocess.check_output([yw_core, "list", "--json"], env=env)))
        make_site(root, count=max(0, 20 - installed))
        env["PYTHONPATH"] = str(root)
        listed = json.loads(subprocess.check_output([yw_core, "list", "--json"], env=env))
        assert len(listed) == max(20, installed), "the fake plugins were not all listed"
        baseline_cmd = [
            sys.executable,
            "-c",
            "from importlib.metadata import entry_points; entry_points(group='yw.defenses')",
        ]
        list_cmd = [yw_core, "list"]
        for cmd in (baseline_cmd, list_cmd):  # warm the file cache
            time_command(cmd, env)
        base, ours = [], []
        for _ in range(args.runs):
            base.append(time_command(baseline_cmd, env))
            ours.append(time_command(list_cmd, env))
    finally:
        shutil.rmtree(root)
    result = {
        "entry_points": len(listed),
        "installed_before": installed,
        "runs": args.runs,
        "baseline_median_s": statistics.median(base),
        "yw_core_list_median_s": statistics.median(ours),
        "ratio": statistics.median(ours) / statistics.median(base),
        "target_ratio": 2.0,
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        base_ms, ours_ms = result["baseline_median_s"] * 1e3, result["yw_core_list_median_s"] * 1e3
        print(f"baseline (entry_points(group=...)) median: {base_ms:.1f} ms")
        print(f"yw-core list median:                      {ours_ms:.1f} ms")
        print(f"ratio: {result['ratio']:.2f}x (target <= 2.0x), {args.runs} interleaved runs")
        print(f"entry points listed: {len(listed)} ({installed} installed + fakes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
