"""`yw-core new-plugin`: write an out-of-tree plugin distribution from templates/plugin.

The method module gets one stub per abstract method of the chosen interface, with the
interface's exact signature, so the skeleton installs and lists at once. Its conformance tests
pass the metadata and config checks and fail the behaviour checks (for every interface whose
suite calls the method) until the author writes it.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from string import Template

from yw_core import API_VERSION
from yw_core.interfaces import INTERFACES, NAME_PATTERN

TEMPLATE_DIR = Path(__file__).with_name("templates") / "plugin"

_INTERFACE_EXTRAS = ("AttackResult", "TrainStep", "Explanation")


def _signature(func) -> str:
    sig = inspect.signature(func)
    params = []
    seen_kw_only = False
    for p in sig.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not seen_kw_only:
            params.append("*")
            seen_kw_only = True
        text = p.name
        if p.annotation is not p.empty:
            text += f": {p.annotation}".replace("'", '"')
        if p.default is not p.empty:
            text += f" = {p.default!r}".replace("'", '"')
        params.append(text)
    ret = f" -> {sig.return_annotation}" if sig.return_annotation is not sig.empty else ""
    one_line = f"({', '.join(params)}){ret}"
    if len(one_line) + len(func.__name__) + 9 <= 100:
        return one_line
    return "(\n" + "".join(f"        {p},\n" for p in params) + f"    ){ret}"


def _stubs(interface_cls) -> str:
    blocks = []
    for method_name in sorted(interface_cls.__abstractmethods__):
        func = getattr(interface_cls, method_name)
        doc = (inspect.getdoc(func) or "").splitlines()[0]
        blocks.append(
            f"\n    def {method_name}{_signature(func)}:\n"
            f'        """{doc}"""\n'
            f'        raise NotImplementedError("{method_name}: write the method here")\n'
        )
    return "".join(blocks)


def _imports(code: str, interface_cls) -> str:
    """Import lines for the generated module, grouped and ordered as ruff's isort expects."""
    words = set(re.findall(r"[A-Za-z_]+", code))
    typing_names = [name for name in ("Any", "Literal") if name in words]
    core = ["Capabilities", "MethodConfig", interface_cls.__name__]
    core += [name for name in _INTERFACE_EXTRAS if name in words]
    third = ["import torch"] if "torch" in words else []
    third.append("from pydantic import Field")
    if "nn" in words:
        third.append("from torch import nn")
    third.append(f"from yw_core.interfaces import {', '.join(sorted(core))}")
    if "Runtime" in words:
        third.append("from yw_core.runtime import Runtime")
    head = f"from typing import {', '.join(typing_names)}\n\n" if typing_names else ""
    return head + "\n".join(third) + "\n"


def plugin_names(name: str) -> dict[str, str]:
    """The names a plugin called `name` uses: distribution, package, module and class."""
    if not NAME_PATTERN.match(name):
        raise ValueError(f"plugin name {name!r} must match {NAME_PATTERN.pattern}, e.g. my-defense")
    snake = name.replace("-", "_")
    return {
        "name": name,
        "distribution": f"yw-plugin-{name}",
        "package": f"yw_plugin_{snake}",
        "module": snake,
        "class_name": "".join(part.capitalize() for part in snake.split("_") if part),
    }


def scaffold(name: str, interface: str, output: Path | None = None) -> Path:
    """Write the plugin distribution for `name` and return its directory."""
    if interface not in INTERFACES:
        raise ValueError(f"unknown interface {interface!r}; choose from {', '.join(INTERFACES)}")
    names = plugin_names(name)
    interface_cls = INTERFACES[interface]
    output = Path(output or names["distribution"])
    if output.exists():
        raise FileExistsError(f"{output} already exists; choose another --output")
    methods = _stubs(interface_cls)
    values = {
        **names,
        "interface": interface,
        "interface_class": interface_cls.__name__,
        "group": interface_cls.group,
        "core_requirement": f">={API_VERSION.split('.')[0]},<{int(API_VERSION.split('.')[0]) + 1}",
        "methods": methods.rstrip("\n"),
        "capabilities": f"Capabilities({'post_hoc=True' if interface == 'defense' else ''})",
        "imports": _imports(methods, interface_cls),
    }
    for template in sorted(TEMPLATE_DIR.rglob("*.tmpl")):
        relative = template.relative_to(TEMPLATE_DIR).with_suffix("")
        parts = [
            values["package"] if p == "PACKAGE" else p.replace("MODULE", values["module"])
            for p in relative.parts
        ]
        target = output.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Template(template.read_text()).substitute(values))
    return output
