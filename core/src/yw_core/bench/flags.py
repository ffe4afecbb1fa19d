"""`yw-core bench NAME` flags generated from a protocol's Config, so no flag is typed by hand.

Field `batch_size` becomes `--batch-size`; its description is the help, with the default.
Booleans get `--x / --no-x`; Literals list their choices; tuples take comma-separated values;
dicts of per-method overrides take repeated `NAME.FIELD=VALUE`. Everything else is passed to
pydantic as text, which converts it and enforces types and bounds, naming the flag on error.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel


def flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _inner(annotation: Any) -> Any:
    """The annotation without `| None`."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is not Literal and type(None) in get_args(annotation):
        return args[0] if len(args) == 1 else annotation
    return annotation


def _split(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _assignment(text: str) -> tuple[str, str, Any]:
    """'name.field=value' -> (name, field, value); the value is JSON when it parses as JSON."""
    key, sep, raw = text.partition("=")
    name, dot, field = key.strip().partition(".")
    if not sep or not dot or not name or not field:
        raise argparse.ArgumentTypeError(f"expected NAME.FIELD=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return name, field.strip(), value


def add_config_flags(parser: argparse.ArgumentParser, config_cls: type[BaseModel]) -> None:
    """One flag per Config field; unset flags stay None so the Config's default applies."""
    for name, field in config_cls.model_fields.items():
        kind = _inner(field.annotation)
        default = field.get_default(call_default_factory=True)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = f"{field.description or name} (default: {shown})".replace("%", "%%")
        kw: dict[str, Any] = {"dest": name, "default": None, "help": help_text}
        origin = get_origin(kind)
        if kind is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif origin is Literal:
            kw["choices"] = [str(a) for a in get_args(kind)]
        elif origin in (tuple, list):
            kw.update(type=_split, metavar="A,B")
        elif origin is dict or kind is dict:
            kw.update(type=_assignment, action="append", metavar="NAME.FIELD=VALUE")
        else:
            kw["metavar"] = name.upper()
        parser.add_argument(flag(name), **kw)


def given_values(args: argparse.Namespace, config_cls: type[BaseModel]) -> dict[str, Any]:
    """The Config values the user gave on the command line."""
    values: dict[str, Any] = {}
    for name, field in config_cls.model_fields.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        kind = _inner(field.annotation)
        if get_origin(kind) is dict or kind is dict:
            nested: dict[str, dict[str, Any]] = {}
            for method, key, item in value:
                nested.setdefault(method, {})[key] = item
            value = nested
        values[name] = value
    return values


def options_table(config_cls: type[BaseModel]) -> str:
    """The Markdown table of a protocol's flags, as docs/cli.md shows it (a test compares)."""
    rows = ["| option | default | meaning |", "| --- | --- | --- |"]
    for name, field in config_cls.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, tuple):
            default = ",".join(map(str, default)) or "(none)"
        elif isinstance(default, dict):
            default = "(none)" if not default else json.dumps(default)
        shown = "`--" + name.replace("_", "-")
        if _inner(field.annotation) is bool:
            shown += "` / `--no-" + name.replace("_", "-")
        rows.append(f"| {shown}` | {default} | {field.description or ''} |")
    return "\n".join(rows)
