"""The cost of the low-dimensional gradient feature h = Vᵀφ(x): ours (chunked) against a plain
forward and against the official way, with peak memory and the relative difference of h.

Three measurements, each in a fresh process so that one's memory does not hide another's:

- `forward`: model(x) under no_grad, the batch at once;
- `ours`: `yw_plugin_lowdim_grad.project`: per-sample gradients `--chunk-size` inputs at a time,
  normalised in place and multiplied by V one parameter tensor at a time (V in `--basis-dtype`);
- `official`: the official code's way (`cal_fisher_vector` then `grad_feature @ p`): vmap
  per-sample gradients over the whole batch, torch.cat into one (batch, p) matrix, normalise
  into new tensors, one matmul with a float32 V.

Timing needs no fitted basis: V is random (i.i.d. N(0, 1/p) entries, so its columns have unit
norm and are orthogonal to within ~1/sqrt(p)), z̄ and s are random too; both measurements use
the same V (ours cast to `--basis-dtype`), z̄, s and inputs. Weights are random. Reported per
measurement: median seconds per batch over `--repeats` timed calls after one warm-up, images per
second, the ratio to the forward, and peak memory: on CUDA `torch.cuda.max_memory_allocated`
over the calls (everything allocated, V and the model included); on CPU the growth of the
process's peak resident set (`resource` ru_maxrss) during the calls, above what was resident
before them (V, model and inputs excluded; tracemalloc cannot see torch's allocations).
`rel diff` = ‖h_ours − h_official‖ / ‖h_official‖.

The issue's GPU target: ResNet-18 on 3x32x32, k = 200, batch 128, all parameters: at least
2,908 img/s at most 8 GiB with rel diff <= 1e-3 (the official way: 2,908 img/s, 19.1 GiB on an
H200). A float32 V of ResNet-18 alone is 8.3 GiB, so the target needs `--basis-dtype float16`.

    python benchmarks/lowdim_grad_features.py                       # CPU, digits-cnn
    python benchmarks/lowdim_grad_features.py --device cuda --basis-dtype float16 --json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import time

import torch

INPUT = {"digits-cnn": (1, 8, 8), "resnet18": (3, 32, 32), "preact-resnet18": (3, 32, 32)}
DTYPES = ("float32", "float16", "bfloat16")


def setup(args, kind: str):
    """(model, gmap, normalisation, V, x) on the device, all from fixed seeds."""
    from yw_core.models import build_model
    from yw_plugin_lowdim_grad import GradientMap, Normalisation, select_parameters

    device = torch.device(args.device)
    torch.manual_seed(0)
    shape = INPUT[args.arch]
    model = build_model(args.arch, 10, in_channels=shape[0]).to(device).eval()
    gen = torch.Generator(device).manual_seed(1)
    x = torch.rand(args.batch, *shape, generator=gen, device=device)
    if kind == "forward":
        return model, None, None, None, x
    gmap = GradientMap(model, select_parameters(model, args.params))
    mean = 1e-3 * torch.randn(gmap.p, generator=gen, device=device)
    scale = 0.5 + torch.rand(gmap.p, generator=gen, device=device)
    dtype = getattr(torch, args.basis_dtype if kind == "ours" else "float32")
    basis = torch.empty(gmap.p, args.k, dtype=dtype, device=device)
    for rows in torch.arange(gmap.p, device=device).split(
        1 << 14
    ):  # small blocks: no float32 copy of V
        block = torch.randn(len(rows), args.k, generator=gen, device=device)
        basis[rows[0] : rows[-1] + 1] = (block / gmap.p**0.5).to(dtype)
    return model, gmap, Normalisation(mean, scale), basis, x


def official(gmap, norm, basis, x):
    """The official way: whole-batch per-sample gradients, concatenated, normalised, one matmul."""
    grads = gmap.per_sample(x)
    flat = torch.cat([grads[n].reshape(len(x), -1) for n in gmap.names], 1)
    del grads
    phi = (flat - norm.mean) * norm.scale
    del flat
    return phi @ basis


def measure(args, kind: str, queue) -> None:
    """Child process: time `kind` and put (seconds, peak bytes, h or None) on the queue."""
    import resource

    from yw_plugin_lowdim_grad import project

    torch.set_num_threads(args.threads)
    model, gmap, norm, basis, x = setup(args, kind)
    device = x.device

    def call():
        if kind == "forward":
            with torch.no_grad():
                return model(x)
        if kind == "ours":
            return project(gmap, norm, basis, x, args.chunk_size)
        return official(gmap, norm, basis, x)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = call()  # warm-up (allocator, lazy init); its memory counts in the peak
    sync()
    times = []
    for _ in range(args.repeats):
        sync()
        t0 = time.perf_counter()
        out = call()
        sync()
        times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak = int(torch.cuda.max_memory_allocated(device))
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
    p = 0 if gmap is None else gmap.p
    h = None if kind == "forward" else out.detach().double().cpu().numpy()  # numpy: no fd sharing
    queue.put((statistics.median(times), peak, h, p))


def run(args, kind: str):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=measure, args=(args, kind, queue))
    child.start()
    result = queue.get()
    child.join()
    if child.exitcode:
        raise RuntimeError(f"the {kind} measurement failed (exit code {child.exitcode})")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument(
        "--arch", default=None, choices=tuple(INPUT), help="default: digits-cnn on cpu, resnet18"
    )
    parser.add_argument("--k", type=int, default=200, help="columns of V (the feature size)")
    parser.add_argument("--batch", type=int, default=128, help="inputs per timed call")
    parser.add_argument("--chunk-size", type=int, default=32, help="ours: inputs per vmap")
    parser.add_argument("--basis-dtype", default="float32", choices=DTYPES, help="ours: V's dtype")
    parser.add_argument("--params", default="all", choices=("all", "auto"), help="parameter set")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls after a warm-up")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op CPU threads")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.arch is None:
        args.arch = "digits-cnn" if args.device == "cpu" else "resnet18"

    rows, features = {}, {}
    for kind in ("forward", "ours", "official"):
        seconds, peak, features[kind], params = run(args, kind)
        rows[kind] = {"seconds": seconds, "images_per_s": args.batch / seconds, "peak_bytes": peak}
    for kind in rows:
        rows[kind]["ratio_to_forward"] = rows[kind]["seconds"] / rows["forward"]["seconds"]
    ours, reference = torch.from_numpy(features["ours"]), torch.from_numpy(features["official"])
    rel_diff = float((ours - reference).norm() / reference.norm())
    result = {
        "device": args.device,
        "arch": args.arch,
        "parameters": params,
        "k": args.k,
        "batch": args.batch,
        "chunk_size": args.chunk_size,
        "basis_dtype": args.basis_dtype,
        "threads": args.threads,
        "repeats": args.repeats,
        "peak_memory": (
            "torch.cuda.max_memory_allocated over the calls (V and model included)"
            if args.device == "cuda"
            else "growth of peak RSS (ru_maxrss) during the calls, above the resident V/model"
        ),
        "rel_diff_ours_vs_official": rel_diff,
        "rows": rows,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    v_mib = params * args.k * {"float32": 4, "float16": 2, "bfloat16": 2}[args.basis_dtype] / 2**20
    print(
        f"{args.arch} on {args.device} ({args.threads} threads), {params:,} parameters, k = "
        f"{args.k}, batch {args.batch}, chunk {args.chunk_size}, V in {args.basis_dtype} "
        f"({v_mib:,.0f} MiB), median of {args.repeats}"
    )
    memory = "peak MiB (all)" if args.device == "cuda" else "peak MiB (+RSS)"
    print(f"{'':<10} {'ms/batch':>9} {'img/s':>9} {'x forward':>9} {memory:>16}")
    for kind, r in rows.items():
        print(
            f"{kind:<10} {r['seconds'] * 1e3:>9.2f} {r['images_per_s']:>9.0f} "
            f"{r['ratio_to_forward']:>9.1f} {r['peak_bytes'] / 2**20:>16.1f}"
        )
    print(f"rel diff |h_ours - h_official| / |h_official| = {rel_diff:.2e}")
    print(f"peak memory: {result['peak_memory']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
