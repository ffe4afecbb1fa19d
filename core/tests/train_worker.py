"""torchrun worker for test_train_distributed.py: plain SGD through `fit` under DDP (gloo)."""

import json
import sys
from pathlib import Path

import torch
from torch import nn

from yw_core.runtime import Runtime
from yw_core.testing import tiny_dataset
from yw_core.train import TrainConfig, fit


def main(out_dir: Path) -> None:
    with Runtime(device="cpu", seed=5) as rt:
        config = TrainConfig(epochs=2, batch_size=8, lr=0.05, progress=False)
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(144, 4)
        )
        result = fit(model, tiny_dataset(64), runtime=rt, config=config)
        report = {
            "rank": rt.rank,
            "wrapped": type(result.model).__name__,
            "updates": result.updates,
            "losses": [row["train_loss"] for row in result.history],
            "weights": [p.detach().flatten().tolist() for p in result.model.parameters()],
            "buffers": [b.flatten().tolist() for b in result.model.buffers()],
        }
        (out_dir / f"rank{rt.rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
