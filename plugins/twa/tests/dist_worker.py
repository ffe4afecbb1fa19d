"""torchrun worker for test_distributed.py: TWA on 2 gloo ranks; writes rank<N>.json."""

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from yw_core.runtime import Runtime
from yw_core.subspace import flatten, stack_checkpoints
from yw_core.testing import tiny_classifier, tiny_dataset
from yw_core.train import TrainConfig, fit
from yw_plugin_twa import TWA

STEPS = 5


def checkpoints(n: int = 3) -> list[dict]:
    """The same noisy copies of the tiny model on every rank."""
    g = torch.Generator().manual_seed(0)
    model = tiny_classifier()
    return [
        {
            k: p.detach() + 0.05 * torch.randn(p.shape, generator=g)
            for k, p in model.named_parameters()
        }
        for _ in range(n)
    ]


def loss_fn(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


def train(model, runtime, method, batches) -> torch.Tensor:
    """STEPS manual TWA steps on the given batches; returns the final flat weights."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-5)
    step = method.attach(model, opt, runtime=runtime, checkpoints=checkpoints())
    step.begin(STEPS)
    for batch in batches:
        step.step(batch, loss_fn)
    return flatten(model.parameters()), step


def main(out_dir: Path) -> None:
    with Runtime(device="cpu", seed=0) as rt:
        local = Runtime(device="cpu", seed=0, distributed=False)  # same process, no sharding
        rank = rt.rank
        x, y = tiny_dataset(16, seed=1).tensors
        report = {"rank": rank}
        for variant in ("iclr", "journal"):
            mine = [(x[rank * 8 : rank * 8 + 8], y[rank * 8 : rank * 8 + 8])] * STEPS
            sharded, step = train(rt.wrap_ddp(tiny_classifier()), rt, TWA(variant=variant), mine)
            whole, _ = train(tiny_classifier(), local, TWA(variant=variant), [(x, y)] * STEPS)
            rows = step.projected.projector.rows if variant == "iclr" else step.space.rows
            report[variant] = {
                "rows": [rows.start, rows.stop],
                "reduce": (step.projected.projector if variant == "iclr" else step.space).reduce,
                "max_diff_to_one_process": float((sharded - whole).abs().max()),
                "moved": float((whole - stack_checkpoints(checkpoints()).mean(0)).norm()),
            }

        config = TrainConfig(epochs=2, batch_size=8, lr=0.1, weight_decay=1e-5, progress=False)
        result = fit(
            tiny_classifier(),
            tiny_dataset(64),
            runtime=rt,
            method=TWA(),
            config=config,
            attach_kwargs={"checkpoints": checkpoints()},
        )
        w = flatten(result.model.parameters()).double()
        a = stack_checkpoints(checkpoints()).double().T
        outside = w - a @ torch.linalg.lstsq(a, w).solution
        report["fit_weights"] = w.tolist()
        report["fit_outside_span"] = float(outside.norm() / w.norm())
        report["fit_updates"] = result.updates
        (out_dir / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
