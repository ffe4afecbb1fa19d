"""Time AAA's logit post-processing against the model's own forward, at batch 128.

For each model, the forward (no grad) and each post-processing path are timed with
`Runtime.timer()` (CUDA events on a GPU, perf_counter elsewhere): the first call on its own, then
the median of `--repeats` calls after `--warmup` more. The post-processing works on logits that
were computed once, so the model's cost is not in its time. Paths: `fast` (hand-written gradient
and Adam, the default), `reference` (autograd and torch.optim.Adam) and, on CUDA, `cuda-graph`
(the fast path captured once as a CUDA graph, then replayed). Models are randomly initialised:
the cost of either side does not depend on the weights.

    python benchmarks/aaa_overhead.py [--device auto] [--repeats 20] [--threads N] [--json]

CPU: the digits CNN (1x8x8 inputs). CUDA: the digits CNN and WRN-28-10 (3x32x32 inputs).
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from yw_core.models import build_model
from yw_core.runtime import Runtime
from yw_plugin_aaa import postprocess, postprocess_reference

MODELS = {"digits-cnn": (1, 8), "wrn-28-10": (3, 32)}  # arch: (channels, image side)


def time_calls(fn, runtime: Runtime, warmup: int, repeats: int) -> dict:
    """Seconds of the first call, and the median over `repeats` calls after `warmup` more."""
    with runtime.timer() as first:
        fn()
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        with runtime.timer() as t:
            fn()
        times.append(t.seconds)
    return {"first_s": first.seconds, "median_s": statistics.median(times)}


def bench_model(arch: str, runtime: Runtime, batch: int, warmup: int, repeats: int) -> list[dict]:
    channels, side = MODELS[arch]
    model = runtime.to(build_model(arch, 10, in_channels=channels)).eval()
    g = torch.Generator().manual_seed(0)
    x = runtime.to(torch.rand(batch, channels, side, side, generator=g))
    with torch.no_grad():
        z0 = model(x)

    def forward():
        with torch.no_grad():
            model(x)

    paths = {"fast": lambda: postprocess(z0), "reference": lambda: postprocess_reference(z0)}
    if runtime.device.type == "cuda":
        paths["cuda-graph"] = lambda: postprocess(z0, cuda_graph=True)
    fwd = time_calls(forward, runtime, warmup, repeats)
    rows = []
    for path, fn in paths.items():
        row = {"model": arch, "batch": batch, "path": path, "forward_s": fwd["median_s"]}
        try:
            row.update(time_calls(fn, runtime, warmup, repeats))
            row["ratio"] = row["median_s"] / fwd["median_s"]
        except Exception as exc:  # report a broken path (e.g. capture failing) and go on
            row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runtime = Runtime(device=args.device, seed=0, distributed=False)
    archs = ["digits-cnn", "wrn-28-10"] if runtime.device.type == "cuda" else ["digits-cnn"]
    rows = [
        r for a in archs for r in bench_model(a, runtime, args.batch, args.warmup, args.repeats)
    ]
    info = {**runtime.describe(), "threads": torch.get_num_threads(), "rows": rows}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(
        f"AAA post-processing vs forward on {info['device_name']} ({info['device']}, "
        f"{info['threads']} threads), median of {args.repeats} after {args.warmup} warm-up calls"
    )
    print(f"{'model':<11} {'path':<11} {'forward':>10} {'AAA':>10} {'ratio':>7} {'first call':>11}")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<11} {r['path']:<11} failed: {r['error']}")
            continue
        print(
            f"{r['model']:<11} {r['path']:<11} {r['forward_s'] * 1e3:>8.2f}ms "
            f"{r['median_s'] * 1e3:>8.2f}ms {r['ratio']:>6.2f}x {r['first_s']:>10.3f}s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
