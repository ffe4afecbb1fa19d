"""GEMM-level W8A16 timing at UG-Sep's per-token FFN shapes (the paper's Tab. 4 is GEMM-level).

For each shape (M rows, K in, N out) of one token's FFN matrix: the fp32 matmul, and the two
matmuls of `yw_plugin_ugsep.quant`'s W8A16: int8 weights dequantised to the activations' dtype,
then the matmul (what larger batches take), and torch's fused int8 weight-only kernel
`torch._weight_int8pack_mm` with bf16 activations (what a single row takes on the CPU; a
private op, timed where this torch has it). M = 1 is the user side of a request after UG-Sep
(computed once), M = C the item side. Ratios are to fp32 in the same run;
the ops take turns per round so machine noise falls on all alike.

    python benchmarks/w8a16_gemm.py                        # D = 128 (the method's default)
    python benchmarks/w8a16_gemm.py --width 768 --rows 1,1000 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from yw_plugin_ugsep import quantize_int8


def timed(fn, sync, rounds: int) -> list[float]:
    for _ in range(3):
        fn()
    out = []
    for _ in range(rounds):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        out.append(1e6 * (time.perf_counter() - start))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=128, help="D; the FFN is D -> 4D -> D")
    parser.add_argument("--rows", default="1,100,1000", help="M values, comma-separated")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fused = hasattr(torch, "_weight_int8pack_mm")
    d = args.width
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads")
    print(
        f"{'M':>5} {'K':>5} {'N':>5}  {'fp32 us':>9}  {'dequant':>9} {'ratio':>6}  "
        f"{'fused bf16':>10} {'ratio':>6}"
    )
    g = torch.Generator().manual_seed(0)
    for m in map(int, args.rows.split(",")):
        for k, n in ((d, 4 * d), (4 * d, d)):
            x = torch.randn(m, k, generator=g).to(device)
            w = (torch.randn(k, n, generator=g) / k**0.5).to(device)  # x @ w, as PerTokenFFN
            q, scale = quantize_int8(w, reduce_dim=0)
            ops = {
                "fp32": lambda: x @ w,
                "dequant": lambda: x @ (q.to(x.dtype) * scale),
            }
            if fused:
                xb, qt, sb = x.bfloat16(), q.t().contiguous(), scale.flatten().bfloat16()
                ops["fused"] = lambda: torch._weight_int8pack_mm(xb, qt, sb)
            times = {name: [] for name in ops}
            for _ in range(args.rounds // 10):
                for name, fn in ops.items():
                    times[name] += timed(fn, sync, 10)
            med = {name: statistics.median(ts) for name, ts in times.items()}
            fused_cols = (
                f"{med['fused']:10.1f} {med['fused'] / med['fp32']:6.2f}"
                if fused
                else "         -      -"
            )
            print(
                f"{m:5d} {k:5d} {n:5d}  {med['fp32']:9.1f}  {med['dequant']:9.1f} "
                f"{med['dequant'] / med['fp32']:6.2f}  {fused_cols}"
            )


if __name__ == "__main__":
    main()
