"""The kit benchmark protocols are built from (the protocols themselves are plugins).

- `Protocol`, `ProtocolConfig`, `Report`: what a protocol is (`yw_core.bench.protocol`);
- `run_protocol`: the run skeleton: registry, runtime, hooks, manifest, atomic writes;
- `select`, `configure`, `variants`, `check_overrides`: methods chosen by interface and
  capability, configured through their declared `bench_fields` (`yw_core.bench.methods`);
- `columns`, `pct`, `write_report`: tables and files (`yw_core.bench.report`);
- `seeded_model`: the fresh model every training protocol starts from (`yw_core.models`).

First-party protocols live in the yw-bench distribution (`yw_bench`), registered under the
entry-point group `yw.benches` exactly as a third party registers one.
"""

from yw_core.bench.methods import check_overrides, configure, install_line, select, variants
from yw_core.bench.protocol import Protocol, ProtocolConfig, Report, check_protocol_class
from yw_core.bench.report import columns, pct, write_report
from yw_core.bench.run import run_protocol
from yw_core.models import seeded_model

__all__ = [
    "Protocol",
    "ProtocolConfig",
    "Report",
    "check_overrides",
    "check_protocol_class",
    "columns",
    "configure",
    "install_line",
    "pct",
    "run_protocol",
    "seeded_model",
    "select",
    "variants",
    "write_report",
]
