"""The `yw-core` command: list, info, doctor and new-plugin (plugins may add more).

argparse rather than click keeps `yw-core list` fast: it imports neither torch, pydantic nor
plugin code. Plugin commands (hook `yw_register_commands`) are loaded only for names that are not
built in, so a built-in command never imports a hooks module.
"""

from __future__ import annotations

import argparse
import os
import sys

from yw_core import __version__
from yw_core.groups import GROUPS

INTERFACE_CHOICES = [*GROUPS, "hooks"]
BUILTIN = ("list", "info", "doctor", "new-plugin", "bench")
PROBLEMS = ("broken", "incompatible", "conflict")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def _status_text(entry) -> str:
    if entry.status == "unchecked":
        return "-"
    return entry.status if entry.status == "ok" else f"{entry.status}: {entry.reason}"


def cmd_list(args) -> int:
    from yw_core.registry import Registry

    if args.available:
        return _list_available(args)
    registry = Registry.discover()
    entries = registry.check_all(args.interface) if args.check else registry.entries(args.interface)
    if args.freeze:
        pins = {f"{e.distribution}=={e.version}" for e in entries}
        print("\n".join([f"yw-core=={__version__}", *sorted(pins)]))
        return 0
    if args.json:
        import json

        print(json.dumps([e.as_dict() for e in entries], indent=2))
        return 0
    if not entries:
        filtered = args.interface or any(
            k in os.environ for k in ("YW_LOAD_PLUGINS", "YW_DISABLE_PLUGINS")
        )
        if filtered:
            print("No yw plugins match (--interface, YW_LOAD_PLUGINS or YW_DISABLE_PLUGINS).")
        else:
            print("No yw plugins installed. See what is available: yw-core list --available")
        return 0
    header = ["NAME", "INTERFACE", "DISTRIBUTION", "VERSION", "STATUS", "SOURCE"]
    rows = [
        [e.name, e.interface, e.distribution, e.version, _status_text(e), e.source] for e in entries
    ]
    print(_table(rows, header))
    if not args.check:
        print("\nSTATUS '-' = not imported yet; `yw-core list --check` imports each plugin.")
    return 0


def _installed(distribution: str) -> bool:
    from importlib import metadata

    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def _list_available(args) -> int:
    from yw_core.catalogue import load_catalogue

    rows, data = [], []
    for item in load_catalogue().values():
        if _installed(item["distribution"]):
            continue
        for name, interface in item.get("methods", {}).items():
            if args.interface in (None, interface):
                pip = f"pip install {item['distribution']}"
                rows.append([name, interface, item["distribution"], item["status"], pip])
                data.append(
                    {
                        "name": name,
                        "interface": interface,
                        "distribution": item["distribution"],
                        "status": item["status"],
                        "install": pip,
                        "paper": item.get("paper"),
                    }
                )
    rows.sort(key=lambda row: (row[1], row[0]))
    data.sort(key=lambda row: (row["interface"], row["name"]))
    if args.json:
        import json

        print(json.dumps(data, indent=2))
    elif rows:
        print(_table(rows, ["NAME", "INTERFACE", "DISTRIBUTION", "STATUS", "INSTALL"]))
    else:
        print("Every first-party plugin is installed.")
    return 0


def _format_value(value) -> str:
    return "-" if value is None else repr(value) if isinstance(value, str) else str(value)


def cmd_info(args) -> int:
    from yw_core.registry import PluginError, Registry, UnknownMethodError

    try:
        method = Registry.discover().load(args.name, args.interface)
    except UnknownMethodError as exc:
        print(f"yw-core info: {exc}", file=sys.stderr)
        return 2
    except PluginError as exc:
        print(f"yw-core info: {exc}", file=sys.stderr)
        return 1
    info = method.describe()
    if args.json:
        import json

        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"{info['name']} ({info['interface']}): {info['summary']}")
    print(f"status: {info['status']}   license: {info['license']}   api: {info['api_version']}")
    paper = info["paper"]
    if paper:
        print(f"\npaper: {paper['title']}")
        where = " ".join(str(x) for x in (paper["venue"], paper["year"]) if x)
        print(f"  {', '.join(paper['authors'])}. {where}")
        if paper.get("arxiv_id"):
            print(f"  arXiv: {paper['arxiv_id']}")
        if paper.get("code_url"):
            print(f"  code: {paper['code_url']}")
    caps = info["capabilities"]
    print("\ncapabilities:")
    for key, value in caps.items():
        print(f"  {key}: {', '.join(value) if isinstance(value, (list, tuple)) else value}")
    print("\nconfig:")
    if not info["config"]:
        print("  (no options)")
        return 0
    rows = []
    for f in info["config"]:
        bounds = ", ".join(f"{k} {v}" for k, v in f["bounds"].items())
        rows.append([f["name"], f["type"], _format_value(f["default"]), bounds, f["description"]])
    print(_table(rows, ["FIELD", "TYPE", "DEFAULT", "BOUNDS", "DESCRIPTION"]))
    return 0


def cmd_doctor(args) -> int:
    import platform

    from yw_core.registry import Registry

    entries = Registry.discover().check_all()
    try:
        import torch

        torch_line = f"torch {torch.__version__} (cuda: {torch.cuda.is_available()})"
    except Exception as exc:  # torch is a dependency, but say so if it is broken
        torch_line = f"torch cannot be imported: {exc}"
    print(f"yw-core {__version__}, Python {platform.python_version()}, {torch_line}")
    bad = [e for e in entries if e.status in PROBLEMS]
    for e in bad:
        where = f"{e.interface}/{e.name} from {e.distribution} {e.version}"
        print(f"  {e.status:12} {where}: {e.reason}")
    ok = len(entries) - len(bad)
    print(f"{ok} plugin entr{'y' if ok == 1 else 'ies'} ok, {len(bad)} with problems")
    return 1 if bad else 0


def cmd_new_plugin(args) -> int:
    from pathlib import Path

    from yw_core.scaffold import scaffold

    try:
        out = scaffold(args.name, args.interface, Path(args.output) if args.output else None)
    except (ValueError, FileExistsError) as exc:
        print(f"yw-core new-plugin: {exc}", file=sys.stderr)
        return 2
    print(f"Created {out}")
    print(f"Next: pip install -e {out} && yw-core list && pytest {out}/tests")
    return 0


def _names(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _budgets(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(item) for item in _names(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"queries must be integers, e.g. 100,1000: {text!r}")


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(item) for item in _names(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers, e.g. 0,1,2: {text!r}")


BENCH_PROTOCOLS = {  # protocol: (module, config class, run function, files it writes)
    "defense": (
        "yw_core.bench",
        "DefenseBenchConfig",
        "run_defense_bench",
        "results.json, results.txt, robust_accuracy.png, reliability_*.png",
    ),
    "weight-optimizer": (
        "yw_core.bench_weights",
        "WeightBenchConfig",
        "run_weight_bench",
        "results.json, results.txt, accuracy_vs_epoch.png, accuracy_vs_time.png",
    ),
    "robust-training": (
        "yw_core.bench_robust",
        "RobustBenchConfig",
        "run_robust_bench",
        "results.json, results.txt, val_pgd_accuracy.png",
    ),
    "certify": (
        "yw_core.bench_certify",
        "CertifyBenchConfig",
        "run_certify_bench",
        "results.json, results.txt, certified_accuracy.png",
    ),
}


def cmd_bench(args) -> int:
    import importlib

    from pydantic import ValidationError

    module_name, config_name, run_name, files = BENCH_PROTOCOLS[args.protocol]
    module = importlib.import_module(module_name)
    Config, run, format_table = (
        getattr(module, config_name),
        getattr(module, run_name),
        module.format_table,
    )
    given = {k: v for k, v in vars(args).items() if k in Config.model_fields and v is not None}
    out = args.out or f"yw-bench-{args.protocol}"
    try:
        config = Config(**given)
        report = run(config, out, progress=not args.no_progress)
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            where = f"--{field.replace('_', '-')}: " if field else ""
            print(f"yw-core bench: {where}{message}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"yw-core bench: {exc}", file=sys.stderr)
        return 2
    print(format_table(report), end="")
    print(f"\nwrote {out}/{files}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="yw-core", description="Find, inspect and check yw method plugins."
    )
    parser.add_argument("--version", action="version", version=f"yw-core {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list installed methods (or those available to install)")
    p.add_argument("--interface", choices=INTERFACE_CHOICES, help="only this interface")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.add_argument("--available", action="store_true", help="first-party plugins not installed")
    p.add_argument("--check", action="store_true", help="import each plugin and fill STATUS")
    p.add_argument(
        "--freeze", action="store_true", help="print distribution==version of installed plugins"
    )
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="paper, capabilities and config schema of one method")
    p.add_argument("name")
    p.add_argument("--interface", choices=list(GROUPS), help="when the name exists in several")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "doctor", help="import every plugin; exit 1 if any is broken, incompatible or in conflict"
    )
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("bench", help="compare installed methods on one protocol")
    protocols = p.add_subparsers(dest="protocol", metavar="PROTOCOL", required=True)
    p = protocols.add_parser("defense", help="post-hoc defenses against score-based attacks")
    p.add_argument("--methods", type=_names, help="comma-separated (default: all post-hoc)")
    p.add_argument("--attacks", type=_names, help="default: square,simba,nes,bandits,signhunter")
    p.add_argument("--queries", type=_budgets, help="query budgets, default: 100,1000,2500")
    p.add_argument("--dataset", help="default: digits (embedded, no download)")
    p.add_argument("--eps", type=float, help="attack radius (default: the dataset's, see docs)")
    p.add_argument("--norm", choices=["linf", "l2"], help="default: linf")
    p.add_argument("--n", type=int, help="test points attacked (default 500)")
    p.add_argument(
        "--calibration", type=int, help="held-out test points for defenses' calibration (150)"
    )
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--batch-size", type=int, help="samples per attack batch (default 500)")
    p.add_argument("--out", help="output directory (default: yw-bench-defense)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_bench)

    p = protocols.add_parser(
        "weight-optimizer", help="weight optimizers against SGD on one training protocol"
    )
    p.add_argument("--methods", type=_names, help="comma-separated (default: all installed)")
    p.add_argument("--dataset", help="default: digits (embedded, no download)")
    p.add_argument("--arch", help="default: digits-cnn (with BatchNorm)")
    p.add_argument("--label-noise", type=float, help="fraction of noisy train labels (0.2)")
    p.add_argument("--epochs", type=int, help="SGD epochs (default 40)")
    p.add_argument("--batch-size", type=int, help="mini-batch per process (default 64)")
    p.add_argument("--lr", type=float, help="peak SGD lr, cosine schedule (default 0.1)")
    p.add_argument("--weight-decay", type=float, help="default 5e-4")
    p.add_argument("--seeds", type=_seeds, help="comma-separated (default 0,1,2)")
    p.add_argument(
        "--no-ddp", dest="ddp", action="store_false", default=None, help="skip 2-process runs"
    )
    p.add_argument("--twa-head", type=float, help="fraction of SGD epochs TWA uses (0.5)")
    p.add_argument("--twa-epochs", type=int, help="TWA's own epochs (default epochs/20)")
    p.add_argument("--twa-lr", type=float, help="TWA's projected-SGD lr (default 2, the paper's)")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--threads", type=int, help="torch threads per process (default: torch's)")
    p.add_argument("--out", help="output directory (default: yw-bench-weight-optimizer)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_bench)

    p = protocols.add_parser(
        "robust-training", help="adversarially trained models under white- and black-box attack"
    )
    p.add_argument("--methods", type=_names, help="default: fast-at,pgd-at,subat,dio")
    p.add_argument("--dataset", help="default: digits (embedded, no download)")
    p.add_argument("--arch", help="default: digits-cnn (with BatchNorm)")
    p.add_argument("--eps", type=float, help="L-inf radius of training and evaluation (0.2)")
    p.add_argument("--epochs", type=int, help="epochs of every method (default 30)")
    p.add_argument(
        "--no-collapse",
        dest="collapse",
        action="store_false",
        default=None,
        help="skip Fast-AT at twice eps",
    )
    p.add_argument("--n", type=int, help="test points evaluated (default 450)")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--out", help="output directory (default: yw-bench-robust-training)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_bench)

    p = protocols.add_parser("certify", help="certified accuracy and ACR of smoothed classifiers")
    p.add_argument("--methods", type=_names, help="certified-training defenses (default: some)")
    p.add_argument("--dataset", help="default: digits (embedded, no download)")
    p.add_argument("--arch", help="trunk architecture (default: digits-cnn with BatchNorm)")
    p.add_argument("--sigma", type=float, help="noise std, training and certification (0.25)")
    p.add_argument("--epochs", type=int, help="training epochs of every model (default 30)")
    p.add_argument("--heads", type=int, help="SOME's heads and the ensemble's networks (5)")
    p.add_argument("--n0", type=int, help="CERTIFY selection samples (100)")
    p.add_argument("--n", type=int, help="CERTIFY estimation samples (100000)")
    p.add_argument("--alpha", type=float, help="CERTIFY failure probability (0.001)")
    p.add_argument("--every", type=int, help="certify every k-th test point (10)")
    p.add_argument("--batch-size", type=int, help="noise samples per forward (1000)")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    p.add_argument("--out", help="output directory (default: yw-bench-certify)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("new-plugin", help="scaffold an out-of-tree plugin distribution")
    p.add_argument("name", help="method name, e.g. my-defense")
    p.add_argument("--interface", choices=list(GROUPS), required=True)
    p.add_argument("--output", help="directory to create (default: ./yw-plugin-NAME)")
    p.set_defaults(func=cmd_new_plugin)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and first not in BUILTIN:
        from yw_core.hooks import get_plugin_manager

        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        get_plugin_manager().hook.yw_register_commands(subparsers=subparsers)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except BrokenPipeError:  # e.g. `yw-core info x | head`: stop quietly, as other CLIs do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
