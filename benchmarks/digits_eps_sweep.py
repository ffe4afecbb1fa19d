"""Robust accuracy of the undefended digits CNN under Square (L-inf) at 100 and 1,000 queries, for a
range of eps: how bench defense's default digits eps was chosen (the smallest eps on a 0.05 grid
that drives it below 20% at 1,000 queries).

    python benchmarks/digits_eps_sweep.py [--n 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

from yw_core import metrics
from yw_core.data import load_dataset
from yw_core.runtime import Runtime
from yw_core.zoo import reference_model
from yw_plugin_attacks import Square


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    runtime = Runtime(device="cpu", seed=args.seed)
    model = reference_model("digits", "digits-cnn", seed=args.seed, runtime=runtime)
    x, y = (t[: args.n] for t in load_dataset("digits", "test", seed=args.seed).tensors)
    print(f"digits CNN, clean test accuracy {model.zoo_info['test_accuracy']:.3f}, n={len(x)}")
    print("eps    RA@100  RA@1000  seconds")
    for eps in (0.05, 0.1, 0.15, 0.2, 0.25):
        start = time.perf_counter()
        r = Square().run(model, x, y, eps=eps, norm="linf", budget=1000, runtime=runtime)
        ra = [metrics.robust_accuracy(r.success, r.total_queries, q) for q in (100, 1000)]
        print(f"{eps:<5}  {ra[0]:6.3f}  {ra[1]:7.3f}  {time.perf_counter() - start:7.1f}")


if __name__ == "__main__":
    main()
