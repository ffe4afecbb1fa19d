"""UniG's extra cost per defended forward, as a ratio to the model's own forward (target <= 0.2x).

For each model and batch size, the median time (under torch.no_grad(), as `yw-core bench defense`
calls them, with `Runtime.timer()`, interleaved) of `model(x)`, of the UniG-defended forward
(defaults: 1 iteration, combine 5), and of UniG alone: the same defense on the precomputed
features (features = identity), i.e. everything UniG adds to the forward. Reported per gradient
path (closed-form `fast`, double-backward `reference`): extra = UniG alone / model forward, and
as a cross-check (defended - model) / model, which is noisier since it subtracts two timings.
Weights are random (timing does not depend on them): the digits CNN on 1x8x8 at batch 128 and 500
everywhere, and on CUDA also WRN-28-10 and PreActResNet-18 on 3x32x32 at batch 128.

    python benchmarks/unig_overhead.py [--device auto] [--repeats 20] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

import torch
from torch import nn

from yw_core.models import SplitClassifier, build_model
from yw_core.runtime import Runtime
from yw_plugin_unig import UniG


def cases(device_type: str) -> list[tuple[str, tuple[int, ...], int]]:
    """(architecture, input shape, batch size) to time on this kind of device."""
    found = [("digits-cnn", (1, 8, 8), 128), ("digits-cnn", (1, 8, 8), 500)]
    if device_type == "cuda":
        found += [("wrn-28-10", (3, 32, 32), 128), ("preact-resnet18", (3, 32, 32), 128)]
    return found


def median_seconds(fn, x, runtime: Runtime, repeats: int) -> float:
    """Median wall time of fn(x) under no_grad over `repeats` timed calls."""
    times = []
    for _ in range(repeats):
        with torch.no_grad(), runtime.timer() as t:
            fn(x)
        times.append(t.seconds)
    return statistics.median(times)


def measure(arch, shape, batch, runtime: Runtime, repeats: int) -> list[dict]:
    """One row per gradient path: model, defended and UniG-alone medians, and the ratios."""
    model = runtime.to(build_model(arch, 10, in_channels=shape[0])).eval()
    gen = torch.Generator().manual_seed(0)
    x = runtime.to(torch.rand(batch, *shape, generator=gen))
    calibration = runtime.to(torch.rand(100, *shape, generator=gen))
    with torch.no_grad():
        f, f_calibration = model.features(x), model.features(calibration)
    head_only = SplitClassifier(nn.Identity(), model.head).eval()
    timed = {"model": (model, x)}
    for path in ("fast", "reference"):
        unig = UniG(path=path)
        timed[path] = (unig.protect(model, data=calibration, runtime=runtime), x)
        timed[path + "-alone"] = (unig.protect(head_only, data=f_calibration, runtime=runtime), f)
    for fn, inputs in timed.values():  # warm-up: allocator, cuDNN autotuning, lazy init
        median_seconds(fn, inputs, runtime, 3)
    rounds = {name: [] for name in timed}
    for _ in range(repeats):  # interleave so drifts in machine load hit all of them alike
        for name, (fn, inputs) in timed.items():
            rounds[name].append(median_seconds(fn, inputs, runtime, 1))
    ms = {name: statistics.median(times) * 1e3 for name, times in rounds.items()}
    return [
        {
            "model": arch,
            "batch": batch,
            "path": path,
            "forward_ms": ms["model"],
            "defended_ms": ms[path],
            "unig_alone_ms": ms[path + "-alone"],
            "extra_ratio": ms[path + "-alone"] / ms["model"],
            "difference_ratio": (ms[path] - ms["model"]) / ms["model"],
        }
        for path in ("fast", "reference")
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls of each forward")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op CPU threads")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runtime = Runtime(device=args.device, seed=0, distributed=False)
    rows = []
    for arch, shape, batch in cases(runtime.device.type):
        rows += measure(arch, shape, batch, runtime, args.repeats)
    result = {
        "runtime": runtime.describe(),
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "target_extra_ratio": 0.2,
        "rows": rows,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    info = result["runtime"]
    print(f"device {info['device']} ({info['device_name']}), {result['threads']} CPU threads")
    print(
        f"{'model':<16} {'batch':>5} {'path':<9} {'forward ms':>10} {'defended ms':>11} "
        f"{'UniG ms':>8} {'extra':>6} {'diff':>6}"
    )
    for r in rows:
        print(
            f"{r['model']:<16} {r['batch']:>5} {r['path']:<9} {r['forward_ms']:>10.3f} "
            f"{r['defended_ms']:>11.3f} {r['unig_alone_ms']:>8.3f} {r['extra_ratio']:>5.3f}x "
            f"{r['difference_ratio']:>5.2f}x"
        )
    print("extra = UniG alone / model forward (target <= 0.2x); diff = (defended - model) / model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
