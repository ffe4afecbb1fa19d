"""torchrun worker for test_distributed.py: RWP through `yw_core.train.fit` on two gloo ranks.

Each rank saves rank<N>.pt: the final weights and BN buffers of every run, the losses, and (on
rank 0) plain SGD replayed in this process, without DDP, on rank 0's own batches.
"""

import sys
from pathlib import Path

import torch
from torch import nn

from yw_core.runtime import Runtime
from yw_core.testing import tiny_dataset
from yw_core.train import TrainConfig, classification_loss, fit
from yw_plugin_rwp import RWP

CONFIG = TrainConfig(epochs=2, batch_size=8, lr=0.05, progress=False)


def bn_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(256, 4)
    )


def sgd_on_own_batches(rt: Runtime, data) -> dict:
    """What fit's plain SGD does on this rank's shard alone, in one process (no averaging)."""
    model = bn_net().train()
    opt = torch.optim.SGD(
        model.parameters(), lr=CONFIG.lr, momentum=CONFIG.momentum, weight_decay=CONFIG.weight_decay
    )
    loader = rt.loader(data, CONFIG.batch_size, shuffle=True)
    total, update = CONFIG.epochs * len(loader), 0
    for epoch in range(CONFIG.epochs):
        rt.set_epoch(loader, epoch)
        for batch in loader:
            for group in opt.param_groups:
                group["lr"] = CONFIG.lr * CONFIG.lr_factor(update, total)
            opt.zero_grad(set_to_none=True)
            classification_loss(model, batch).backward()
            opt.step()
            update += 1
    return model.state_dict()


def main(out: Path) -> None:
    with Runtime(device="cpu", seed=0) as rt:
        data = tiny_dataset(64, seed=2)
        report = {"world_size": rt.world_size}
        runs = {
            "rwp": RWP(alpha=0.5, gamma=0.05),
            "alpha0": RWP(alpha=0.0, gamma=0.05),
            "gamma0": RWP(alpha=0.5, gamma=0.0),
            "sgd": None,
        }
        for name, method in runs.items():
            losses = []

            def keep(row, losses=losses):
                losses.append(row["train_loss"])

            result = fit(
                bn_net(), data, runtime=rt, method=method, config=CONFIG, on_epoch_end=keep
            )
            report[name] = result.model.state_dict()
            report[f"{name}_losses"] = losses
        if rt.rank == 0:
            report["local_sgd"] = sgd_on_own_batches(rt, data)
        torch.save(report, out / f"rank{rt.rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
