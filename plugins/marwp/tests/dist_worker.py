"""torchrun worker for test_distributed.py: m-RWP, ARWP and m-ARWP through `fit` on two gloo ranks;
each rank saves rank<N>.pt with the final weights and the epoch losses of every run."""

import sys
from pathlib import Path

import torch
from torch import nn

from yw_core.runtime import Runtime
from yw_core.testing import tiny_dataset
from yw_core.train import TrainConfig, fit
from yw_plugin_marwp import ARWP, MARWP, MRWP


def bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(256, 4)
    )


def main(out: Path) -> None:
    config = TrainConfig(epochs=2, batch_size=8, lr=0.05, progress=False)
    with Runtime(device="cpu", seed=0) as rt:
        data = tiny_dataset(64, seed=2)
        report = {}
        for method in (MRWP(), ARWP(sigma=0.01), MARWP()):
            losses = []
            result = fit(
                bn_net(),
                data,
                runtime=rt,
                method=method,
                config=config,
                on_epoch_end=lambda row, losses=losses: losses.append(row["train_loss"]),
            )
            weights = {n: p.detach() for n, p in result.model.named_parameters()}
            report[method.name] = {"weights": weights, "losses": losses}
        torch.save(report, out / f"rank{rt.rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
