"""How many subspace epochs Sub-AT needs on digits: PGD-20 after each length, against Fast-AT.

The setting of `yw-core bench robust-training` at its defaults (digits, digits-cnn with BatchNorm
and the normalised embedding, eps 0.2, Sub-AT at training radius 1 x eps, 200 test points,
PGD-20 as the bench runs it) with the subspace stage's length varied. Per seed and length: clean
and PGD-20 test accuracy, the selected epoch, the validation PGD-20 curve and λ at w0. Issue 18:
the paper's 40 subspace epochs per 65 sampling epochs leave too few updates per subspace
dimension on small data (docs/methods/subat.md).

    python benchmarks/subat_subspace_length.py --subspace-epochs 6 10 20 40
    python benchmarks/subat_subspace_length.py --sample-epochs 30 --subspace-epochs 18 60
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from yw_bench.robust_training import RobustBenchConfig, evaluate
from yw_core.data import load_dataset
from yw_core.models import seeded_model
from yw_core.runtime import Runtime
from yw_plugin_attacks.whitebox import PGD
from yw_plugin_baselines.adversarial_training import FastAT
from yw_plugin_subat import SubAT


def run(method, seed: int, config: RobustBenchConfig) -> dict:
    """Train `method` on the seed's digits split and score it as the bench does (PGD-20 only)."""
    runtime = Runtime(device="cpu", seed=seed, distributed=False)
    train = load_dataset(config.dataset, "train", seed=seed)
    test = load_dataset(config.dataset, "test", seed=seed)
    x, y = test.tensors[0][: config.n], test.tensors[1][: config.n]
    runtime.seed_everything()
    model = seeded_model(config.arch, 10, 1, seed, norm_embedding=config.norm_embedding)
    started = time.perf_counter()
    trained = method.protect(model, data=train, runtime=runtime)
    seconds = time.perf_counter() - started
    scores = evaluate(trained, x, y, {"pgd-20": PGD}, config, runtime)
    rows = [h for h in method.history if h.get("stage", "subspace") == "subspace"]
    curve = [h["val_pgd_acc"] for h in rows]  # Fast-AT's whole run, Sub-AT's second stage
    return {
        "seed": seed,
        "clean": scores["clean"],
        "pgd-20": scores["pgd-20"],
        "seconds": round(seconds, 1),
        "selected_epoch": getattr(method, "selected_epoch", None),
        "val_pgd_curve": [round(v, 3) for v in curve],
        "sharpness": getattr(method, "sharpness", None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample-epochs", type=int, default=10, help="Sub-AT's and Fast-AT's")
    parser.add_argument("--subspace-epochs", type=int, nargs="+", default=[6, 10, 20, 40])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = RobustBenchConfig()
    common = {"eps": config.eps, "progress": False}
    jobs = [("fast-at", lambda: FastAT(epochs=args.sample_epochs, **common))]
    for length in args.subspace_epochs:
        jobs.append(
            (
                f"subat, {length} subspace epochs",
                lambda length=length: SubAT(
                    sample_epochs=args.sample_epochs,
                    subspace_epochs=length,
                    train_eps_ratio=config.train_eps_ratio,
                    **common,
                ),
            )
        )
    for name, build in jobs:
        for seed in args.seeds:
            print(json.dumps({"method": name, **run(build(), seed, config)}), flush=True)


if __name__ == "__main__":
    main()
