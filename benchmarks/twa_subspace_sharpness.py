"""Is TWA's lr 2 within momentum SGD's stability bound in its subspace on `bench weight-optimizer`?

For each seed and each digits-cnn embedding (unnormalised, BatchNorm1d): the bench's SGD run
(20% noisy labels), the span of the head's checkpoints (w0 and the first half's epochs, as TWA
uses them), and at TWA's start (their mean, BN statistics recomputed) the sharpest curvature λ of
the training loss inside that span (`yw_core.subspace.subspace_sharpness`, 20 Hessian-vector
products on the first 128 training points, train mode), with the bound 2(1 + momentum)/λ that
TWA's lr must stay under. Issue 18 asked whether the cause of Sub-AT's divergence applies here.

With `--example`: docs/methods/twa.md's usage example instead (a 5-epoch base run on clean
digits, 6 checkpoints, 2 TWA epochs), on digits-cnn plain, with BatchNorm on its convolutions and
with the normalised embedding too; TWA at lr 2, 0.5 and 0.1, and λ at TWA's start.

    python benchmarks/twa_subspace_sharpness.py --epochs 40
    python benchmarks/twa_subspace_sharpness.py --example
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F

from yw_bench.weight_optimizer import (
    WeightBenchConfig,
    base_recipe,
    fresh_model,
    noisy_train_data,
    train_one,
)
from yw_core.data import load_dataset
from yw_core.models import build_model
from yw_core.runtime import Runtime
from yw_core.subspace import (
    gram_schmidt,
    momentum_lr_bound,
    stack_checkpoints,
    subspace_sharpness,
)
from yw_core.train import TrainConfig, fit
from yw_plugin_twa import TWA
from yw_plugin_twa.steps import recompute_bn


def sharpness_at_mean(model, checkpoints: list[dict], train, seed: int) -> float:
    """λ in the span of `checkpoints` at their mean (BN statistics recomputed), as TWA starts;
    leaves `model` at that mean."""
    names = dict(model.named_parameters())
    rows = stack_checkpoints([{k: v for k, v in c.items() if k in names} for c in checkpoints])
    params = list(model.parameters())
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(rows.mean(0), params)
    recompute_bn(model, train)
    model.train()
    x, y = train.tensors[0][:128], train.tensors[1][:128]
    return subspace_sharpness(
        lambda: F.cross_entropy(model(x), y),
        params,
        gram_schmidt(rows),
        generator=torch.Generator().manual_seed(seed),
    )


def sharpness_at_twa_start(config: WeightBenchConfig, seed: int) -> dict:
    """λ in the span of the head's checkpoints at their mean, and the lr bound it gives."""
    runtime = Runtime(device="cpu", seed=seed, distributed=False)
    sgd = train_one(config, "sgd", None, seed, runtime, progress=False)
    train, classes = noisy_train_data(config, seed)
    model = fresh_model(config, train, classes, seed)
    head = max(1, round(TWA().base_run() * config.epochs))
    sharpness = sharpness_at_mean(model, sgd.checkpoints[: head + 1], train, seed)
    return {
        "norm_embedding": config.norm_embedding,
        "seed": seed,
        "checkpoints": head + 1,
        "sharpness": round(sharpness, 3),
        "lr_bound": round(momentum_lr_bound(sharpness, base_recipe(config, False).momentum), 2),
        "twa_lr": TWA().config.lr,
        "sgd_test_acc": round(sgd.final_accuracy, 4),
    }


def usage_example(network: dict, lrs=(2.0, 0.5, 0.1)) -> dict:
    """twa.md's usage example on one digits-cnn variant: test accuracy per TWA lr (None when
    the loss turns NaN) and λ at TWA's start with the bound it gives at momentum 0.9."""
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    runtime = Runtime(device="cpu", seed=0, distributed=False)
    runtime.seed_everything()
    model = build_model("digits-cnn", num_classes=10, **network)
    config = TrainConfig(epochs=5, lr=0.1, schedule="step", keep_checkpoints=True, progress=False)
    base = fit(model, train, runtime=runtime, eval_data=test, config=config)
    sharpness = sharpness_at_mean(model, base.checkpoints, train, seed=0)
    accuracy = {}
    for lr in lrs:
        config = TrainConfig(epochs=2, lr=lr, weight_decay=1e-5, schedule="step", progress=False)
        try:
            twa = fit(
                model,
                train,
                runtime=Runtime(device="cpu", seed=0, distributed=False),
                method=TWA(),
                eval_data=test,
                config=config,
                attach_kwargs={"checkpoints": base.checkpoints, "bn_data": train},
            )
            accuracy[lr] = round(twa.final_accuracy, 4)
        except FloatingPointError:  # fit stops on a NaN loss
            accuracy[lr] = None
    return {
        "network": network,
        "base_test_acc": round(base.final_accuracy, 4),
        "sharpness": round(sharpness, 3),
        "lr_bound": round(momentum_lr_bound(sharpness, 0.9), 2),
        "twa_test_acc": accuracy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40, help="SGD epochs (preset paper: 40)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--example", action="store_true", help="twa.md's usage example instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.example:
        for network in ({}, {"batchnorm": True}, {"batchnorm": True, "norm_embedding": True}):
            print(json.dumps(usage_example(network)), flush=True)
        return
    for norm in (False, True):
        config = WeightBenchConfig(epochs=args.epochs, norm_embedding=norm)
        for seed in args.seeds:
            print(json.dumps(sharpness_at_twa_start(config, seed)), flush=True)


if __name__ == "__main__":
    main()
