"""What certification costs: noise samples per second through a single network, SOME's H heads
on one trunk, and an ensemble of H networks, in one run.

Randomized smoothing spends nearly all its time in forwards of noisy copies, so the cost of a
smoothed classifier is its forward time at the certification batch. The models take turns round
by round (machine noise hits them alike); each reports the median over rounds. Target (issue 6):
SOME's heads cost <= 1.3x the single network with the same trunk; H networks cost about Hx.
Weights are untrained: the time of a forward does not depend on them.

    python benchmarks/certify_cost.py --threads 1
    python benchmarks/certify_cost.py --model resnet18 --batch 400 --device cuda
"""

from __future__ import annotations

import argparse
import statistics

import torch

from yw_bench.certify import ensemble
from yw_core.models import build_model
from yw_core.runtime import Runtime
from yw_plugin_some import build_multihead

INPUT = {"digits-cnn": (1, 8, 8), "resnet18": (3, 32, 32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="digits-cnn", choices=sorted(INPUT))
    parser.add_argument("--batch", type=int, default=1000, help="noise samples per forward")
    parser.add_argument("--heads", type=int, default=5)
    parser.add_argument("--private-layers", type=int, default=2, help="SOME heads' private tail")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runtime = Runtime(device=args.device, seed=0, distributed=False)
    kw = {"batchnorm": True} if args.model == "digits-cnn" else {}

    def net(seed):
        torch.manual_seed(seed)
        return build_model(args.model, 10, **kw)

    private = args.private_layers if args.model == "digits-cnn" else 0
    models = {
        "single": net(0),
        f"some (H={args.heads})": build_multihead(net(0), args.heads, private_layers=private),
        f"ensemble (H={args.heads})": ensemble([net(h) for h in range(args.heads)]),
    }
    models = {k: runtime.to(m).eval() for k, m in models.items()}
    x = runtime.to(torch.rand(args.batch, *INPUT[args.model]))
    times = {name: [] for name in models}
    with torch.no_grad():
        for m in models.values():
            m(x)  # warm-up
        for _ in range(args.rounds):
            for name, m in models.items():
                with runtime.timer() as t:
                    m(x)
                times[name].append(t.seconds)
    base = statistics.median(times["single"])
    print(f"{args.model}, batch {args.batch}, {runtime.device}, threads {torch.get_num_threads()}")
    for name, ts in times.items():
        median = statistics.median(ts)
        print(
            f"  {name:16s} {1000 * median:8.2f} ms/forward  {args.batch / median:10.0f} samples/s"
            f"  {median / base:.2f}x single"
        )


if __name__ == "__main__":
    main()
