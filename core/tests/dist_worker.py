"""torchrun worker for test_distributed.py: exercises Runtime under gloo and writes rank<N>.json."""

import json
import sys
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

from yw_core.runtime import Runtime

MARKER = "YW-DIST-PRINT-MARKER"


def main(out_dir: Path) -> None:
    with Runtime(device="cpu", seed=123) as rt:
        rank = rt.rank
        report = {
            "rank": rank,
            "world_size": rt.world_size,
            "is_distributed": rt.is_distributed,
            "is_main": rt.is_main,
            "backend": torch.distributed.get_backend(),
            "describe": rt.describe(),
        }

        value = torch.tensor([rank + 1.0])
        report["sum"] = rt.all_reduce(value, "sum").item()
        report["mean"] = rt.all_reduce(value, "mean").item()
        report["max"] = rt.all_reduce(value, "max").item()
        report["min"] = rt.all_reduce(value, "min").item()

        loader = rt.loader(TensorDataset(torch.arange(10)), batch_size=2)
        report["items"] = [int(i) for (batch,) in loader for i in batch]
        report["items_again"] = [int(i) for (batch,) in loader for i in batch]
        rt.set_epoch(loader, 1)
        report["items_epoch1"] = [int(i) for (batch,) in loader for i in batch]

        rt.print(MARKER, flush=True)

        local = torch.nn.Linear(3, 2)  # plain copy: its gradient is this rank's local one
        model = rt.wrap_ddp(torch.nn.Linear(3, 2))
        model.module.load_state_dict(local.state_dict())
        x = torch.full((4, 3), rank + 1.0)
        local(x).sum().backward()
        model(x).sum().backward()
        report["ddp_type"] = type(model).__name__
        report["local_grad"] = local.weight.grad.tolist()
        report["ddp_grad"] = model.module.weight.grad.tolist()

        rt.barrier()
        (out_dir / f"rank{rank}.json").write_text(json.dumps(report))
    report_closed = not torch.distributed.is_initialized()
    (out_dir / f"rank{rank}.closed").write_text(json.dumps(report_closed))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
