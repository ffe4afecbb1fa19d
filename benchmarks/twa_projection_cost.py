"""What TWA adds to a training step, against a ResNet-18 forward/backward.

Times, for a ResNet-18-sized parameter vector (11.2M values, 62 tensors) and n checkpoints:
the ICLR step's gradient projection (flatten .grad, Pᵀ P g, copy back), the journal step's
coefficient gradient plus weight rebuild (1-bit directions), and the one-off Gram-Schmidt; and a
ResNet-18 forward/backward (CIFAR shape, batch 32) on the same device.

    python benchmarks/twa_projection_cost.py --threads 1 --checkpoints 10 50
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from yw_core.models import build_model
from yw_core.subspace import ProjectedOptimizer, Projector, gram_schmidt
from yw_plugin_twa import CoefficientSpace


def timed(fn, repeats: int, device: torch.device) -> float:
    """Median seconds of fn() over `repeats` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gram-schmidt", action="store_true", help="also time the one-off GS")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = build_model("resnet18", 10, in_channels=3).to(device).train()
    params = list(model.parameters())
    dim = sum(p.numel() for p in params)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()

    base = timed(forward_backward, args.repeats, device)
    print(f"device {device}, threads {args.threads}, D = {dim:,}, {len(params)} tensors")
    print(f"ResNet-18 forward/backward, batch {args.batch}: {base * 1e3:.1f} ms")
    g = torch.Generator(device).manual_seed(0)
    for n in args.checkpoints:
        rows = torch.randn(n, dim, device=device, generator=g)
        if args.gram_schmidt:
            t0 = time.perf_counter()
            gram_schmidt(rows)
            print(f"  n={n}: Gram-Schmidt (once) {time.perf_counter() - t0:.2f} s")
        iclr = time_iclr(params, rows, args.repeats, device)
        journal = time_journal(params, rows, args.repeats, device)
        print(
            f"  n={n}: iclr projection {iclr * 1e3:.1f} ms ({iclr / base:.2f}x fwd/bwd); "
            f"journal coefficient grad + rebuild {journal * 1e3:.1f} ms ({journal / base:.2f}x)"
        )


def time_iclr(params, rows, repeats, device) -> float:
    """The ICLR step's extra work: flatten .grad, project, copy back."""
    basis = rows / rows.norm(dim=1, keepdim=True)  # timing only: orthonormality is moot
    projected = ProjectedOptimizer(torch.optim.SGD(params, lr=0.1), Projector(basis), params)
    return timed(projected.project_gradients, repeats, device)


def time_journal(params, rows, repeats, device) -> float:
    """The journal step's extra work: dL/dX from the gradient, then w = mean + X d."""
    sizes = [p.numel() for p in params]
    checkpoints = [
        {str(i): r.view_as(p) for i, (r, p) in enumerate(zip(row.split(sizes), params))}
        for row in rows
    ]
    space = CoefficientSpace(checkpoints, bits=1, device=device)
    grad = torch.randn(rows.shape[1], device=device)

    def work():
        space.coefficient_grad(grad)
        space.weights()

    return timed(work, repeats, device)


if __name__ == "__main__":
    main()
