"""The run skeleton every protocol shares: discover, runtime, hooks, manifest, atomic write."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from yw_core.bench.protocol import Protocol, ProtocolConfig


def versions(registry, used: dict[str, set[str]]) -> dict[str, str]:
    """yw-core's version and that of every distribution providing the protocol or a method of
    the run (`used`: interface -> names)."""
    import yw_core

    found = {"yw-core": yw_core.__version__}
    for interface, names in used.items():
        for name in sorted(names):
            for entry in registry.find(name, interface):
                found[entry.distribution] = entry.version
    return found


def run_protocol(
    protocol: Protocol | type[Protocol],
    config: ProtocolConfig,
    out: Path | str,
    *,
    registry=None,
    progress: bool = True,
    preset: str | None = None,
) -> dict[str, Any]:
    """Run `protocol` with `config`; write results.json, results.txt and its figures into `out`.

    Returns the report as written to results.json: manifest (protocol, preset, versions of
    yw-core, of the protocol's distribution and of every distribution whose methods ran,
    runtime, wall seconds, the files written, and the protocol's own facts), config, results
    and the protocol's other sections.
    Nothing is written when the run fails."""
    from yw_core import hooks
    from yw_core.bench.report import write_report
    from yw_core.runtime import Runtime

    if isinstance(protocol, type):
        protocol = protocol(registry)
    if not isinstance(config, protocol.Config):
        raise TypeError(f"config must be a {protocol.Config.__qualname__}, not {type(config)}")
    out = Path(out)
    pm = hooks.get_plugin_manager()
    run_info = {
        "protocol": protocol.name,
        "config": config.model_dump(mode="json"),
        "out": str(out),
    }
    protocol.on_result = lambda name, entry: pm.hook.yw_bench_result(
        run=run_info, method_name=name, metrics=entry
    )
    runtime = Runtime(device=config.device, seed=protocol.runtime_seed(config), distributed=False)
    pm.hook.yw_bench_start(run=run_info)
    started = time.perf_counter()
    result = protocol.run(config, runtime=runtime, progress=progress)
    report = {
        "manifest": {
            "protocol": protocol.name,
            "preset": preset,
            "versions": versions(protocol.registry, {"bench": {protocol.name}, **protocol.used}),
            "runtime": runtime.describe(),
            "wall_seconds": time.perf_counter() - started,
            **result.manifest,
        },
        "config": config.model_dump(mode="json"),
        "results": result.results,
        **result.sections,
    }
    figures = protocol.figures(report)
    report["manifest"]["files"] = ["results.json", "results.txt", *figures]
    write_report(report, out, protocol.format_table(report), figures)
    pm.hook.yw_bench_end(run=run_info, results=report)
    return report
