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
from yw_core.groups import GROUPS, KINDS

INTERFACE_CHOICES = [*KINDS, "hooks"]
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


def _list_available(args) -> int:
    from yw_core.catalogue import is_installed, load_catalogue

    rows, data = [], []
    for item in load_catalogue().values():
        if is_installed(item["distribution"]):
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
    if info["interface"] == "bench":
        print(f"api: {info['api_version']}   run: yw-core bench {info['name']} [flags]")
        for preset, values in info["presets"].items():
            shown = " ".join(f"{k}={v}" for k, v in values.items())
            print(f"preset {preset}: {shown}")
        return _print_config(info)
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
    for key, value in {**caps, **info.get("unlearns", {})}.items():
        print(f"  {key}: {', '.join(value) if isinstance(value, (list, tuple)) else value}")
    return _print_config(info)


def _print_config(info) -> int:
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
        print(f"  {e.status:12} {_where(e)}: {e.reason}")
    ok = len(entries) - len(bad)
    print(f"{ok} plugin entr{'y' if ok == 1 else 'ies'} ok, {len(bad)} with problems")
    for e in (e for e in entries if e.source == "third-party" and e.interface != "hooks"):
        warning = _reserved(e.name)
        if warning:
            print(f"yw-core doctor: warning: {_where(e)}: {warning}", file=sys.stderr)
    return 1 if bad else 0


def _where(entry) -> str:
    return f"{entry.interface}/{entry.name} from {entry.distribution} {entry.version}"


def _reserved(name: str) -> str | None:
    """Why a third-party method should not be called `name`: registry.toml reserves it for a
    first-party plugin, and the two clash when both are installed. None when it is free."""
    from yw_core.registry import reserved_by

    owner = reserved_by(name)
    if owner is None:
        return None
    distribution, interface = owner
    return (
        f"the name {name!r} is reserved for the first-party {distribution} ({interface} in "
        f"registry.toml); installed together, the two clash: choose another name"
    )


def cmd_new_plugin(args) -> int:
    import shlex
    from pathlib import Path

    from yw_core.scaffold import scaffold

    try:
        out = scaffold(
            args.name,
            args.interface,
            Path(args.output) if args.output else None,
            distribution=args.distribution,
            package=args.package,
        )
    except (ValueError, FileExistsError) as exc:
        print(f"yw-core new-plugin: {exc}", file=sys.stderr)
        return 2
    warning = _reserved(args.name)
    if warning:
        print(f"yw-core new-plugin: warning: {warning}", file=sys.stderr)
    install, tests = shlex.quote(f"{out}[test]"), shlex.quote(f"{out}/tests")
    print(f"Created {out}")
    print(
        f"Next: python -m venv .venv && .venv/bin/pip install -e {install} "
        f"&& .venv/bin/pytest {tests}"
    )
    print(
        "(if your package index lacks yw-core, add its folder in a clone of yw: "
        f".venv/bin/pip install /path/to/yw/core -e {install})"
    )
    return 0


def _protocols(registry) -> tuple[dict[str, type], list]:
    """The usable protocols by name, and the entries of those that are not usable."""
    entries = registry.check_all("bench")
    usable = {e.name: registry.get(e) for e in entries if e.status == "ok"}
    return usable, [e for e in entries if e.status != "ok"]


NO_PROTOCOLS = (
    "no benchmark protocols installed; the first-party ones are in yw-bench: pip install "
    "yw-bench (from a source checkout: pip install ./plugins/bench)"
)


def cmd_bench(args) -> int:
    """`yw-core bench` without a protocol: the list (--list) or the help."""
    from yw_core.registry import Registry

    registry = Registry.discover()
    usable, problems = _protocols(registry)
    if not usable and not problems:
        print(f"yw-core bench: {NO_PROTOCOLS}", file=sys.stderr)
        return 2
    if not args.list:
        args.parser.print_help()
        return 0
    rows = []
    for entry in registry.entries("bench"):
        cls = usable.get(entry.name)
        summary = cls.summary if cls is not None and entry.status == "ok" else entry.reason
        presets = ",".join(cls.presets) if cls is not None else ""
        status = entry.status if entry.status != "unchecked" else "-"
        rows.append(
            [entry.name, entry.distribution, entry.version, status, presets or "-", summary]
        )
    print(_table(rows, ["PROTOCOL", "DISTRIBUTION", "VERSION", "STATUS", "PRESETS", "SUMMARY"]))
    return 0


def cmd_run_protocol(args) -> int:
    """`yw-core bench NAME [flags]`: validate the Config, run, print the table."""
    from pydantic import ValidationError

    from yw_core.bench import run_protocol
    from yw_core.bench.flags import flag, given_values

    protocol = args.protocol_cls()
    out = args.out or f"yw-bench-{protocol.name}"
    try:
        config = protocol.config(args.preset, **given_values(args, protocol.Config))
    except ValidationError as exc:
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            message = err["msg"].removeprefix("Value error, ")
            where = f"{flag(field)}: " if field else ""
            print(f"yw-core bench {protocol.name}: {where}{message}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"yw-core bench {protocol.name}: {exc}", file=sys.stderr)
        return 2
    try:
        report = run_protocol(
            protocol, config, out, progress=not args.no_progress, preset=args.preset
        )
    except ValueError as exc:  # bad methods, data or combinations, found before writing
        print(f"yw-core bench {protocol.name}: {exc}", file=sys.stderr)
        return 2
    print(protocol.format_table(report), end="")
    print(f"\nwrote {out}/: {', '.join(report['manifest']['files'])}")
    return 0


def add_bench_parsers(bench: argparse.ArgumentParser, registry=None) -> None:
    """One sub-command of `bench` per usable installed protocol, flags from its Config."""
    from yw_core.bench.flags import add_config_flags
    from yw_core.registry import Registry

    usable, _ = _protocols(registry or Registry.discover())
    protocols = bench.add_subparsers(dest="protocol", metavar="PROTOCOL")
    for name, cls in sorted(usable.items()):
        p = protocols.add_parser(name, help=cls.summary, description=cls.summary)
        add_config_flags(p, cls.Config)
        if cls.presets:
            p.add_argument("--preset", choices=list(cls.presets), help="a named set of settings")
        p.add_argument("--out", help=f"output directory (default: yw-bench-{name})")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        p.set_defaults(func=cmd_run_protocol, protocol_cls=cls, preset=None)


def build_parser(protocols: bool = False) -> argparse.ArgumentParser:
    """The parser; with `protocols`, `bench` gets one sub-command per installed protocol."""
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
    p.add_argument("--interface", choices=list(KINDS), help="when the name exists in several")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "doctor", help="import every plugin; exit 1 if any is broken, incompatible or in conflict"
    )
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("bench", help="compare installed methods on one benchmark protocol")
    p.add_argument("--list", action="store_true", help="list installed protocols")
    p.set_defaults(func=cmd_bench, parser=p)
    if protocols:
        add_bench_parsers(p)

    p = sub.add_parser("new-plugin", help="scaffold an out-of-tree plugin distribution")
    p.add_argument("name", help="method name, e.g. my-defense")
    p.add_argument("--interface", choices=list(GROUPS), required=True)
    p.add_argument("--output", metavar="DIR", help="directory to create (default: ./DIST)")
    p.add_argument("--distribution", metavar="DIST", help="distribution (default: yw-plugin-NAME)")
    p.add_argument(
        "--package", metavar="PKG", help="import package (default: DIST with _ for - and .)"
    )
    p.set_defaults(func=cmd_new_plugin)
    return parser


def _unknown_protocol(rest: list[str]) -> str | None:
    """Why `yw-core bench NAME` cannot run NAME (not installed, or broken), or None."""
    name = next((a for a in rest if not a.startswith("-")), None)
    if name is None:
        return None
    from yw_core.registry import Registry

    usable, problems = _protocols(Registry.discover())
    if name in usable:
        return None
    for entry in problems:
        if entry.name == name:
            return f"protocol {entry.label} is {entry.status}: {entry.reason}"
    if not usable and not problems:
        return NO_PROTOCOLS
    return f"no protocol named {name}; installed: {', '.join(sorted(usable)) or 'none'}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    if first == "bench":
        problem = _unknown_protocol(argv[argv.index("bench") + 1 :])
        if problem:
            print(f"yw-core bench: {problem}", file=sys.stderr)
            return 2
    parser = build_parser(protocols=first == "bench")
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
