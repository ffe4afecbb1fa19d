"""`yw-core new-plugin`: write an out-of-tree plugin distribution from templates/plugin.

The method module gets one stub per abstract method of the chosen interface, with the
interface's exact signature, so the skeleton installs and lists at once. Each stub raises
NotImplementedError("<method> is not written yet"); the generated conformance test turns that
into an xfail, so a fresh skeleton's tests are green: the metadata and config checks pass, and
the behaviour checks xfail until the author writes the method.
"""

from __future__ import annotations

import inspect
import keyword
import re
import textwrap
from pathlib import Path
from string import Template

from yw_core import API_VERSION, interfaces
from yw_core.interfaces import INTERFACES, NAME_PATTERN

TEMPLATE_DIR = Path(__file__).with_name("templates") / "plugin"
NOT_WRITTEN = "is not written yet"  # the stubs' NotImplementedError says this; the tests xfail it

# A distribution name as packaging (PEP 508) accepts it.
DISTRIBUTION_PATTERN = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)

# Where the names a signature uses come from, besides yw_core.interfaces.
_IMPORTS = {
    "torch": "import torch",
    "nn": "from torch import nn",
    "Dataset": "from torch.utils.data import Dataset",
    "Runtime": "from yw_core.runtime import Runtime",
}

# Class attributes an interface needs besides the common ones, set to what the conformance
# suite's default data has.
_ATTRIBUTES = {
    "forecaster": (
        '\n    history_columns = ("year", "a", "b")  # the columns fit reads (the suite\'s table)'
        '\n    query_columns = ("year", "a", "b")  # the columns predict reads'
    ),
}


def _signature(func) -> str:
    sig = inspect.signature(func)
    params = []
    star = False
    for p in sig.parameters.values():
        if p.kind is p.KEYWORD_ONLY and not star:
            params.append("*")
        star = star or p.kind in (p.KEYWORD_ONLY, p.VAR_POSITIONAL)
        text = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name
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


def _docstring(func) -> str:
    """The first paragraph of the interface method's docstring, wrapped to 100 columns."""
    first = " ".join((inspect.getdoc(func) or "").split("\n\n")[0].split())
    text = textwrap.fill(f'"""{first}', 96, initial_indent=" " * 8, subsequent_indent=" " * 8)
    return f'{text}"""\n'


def _stubs(interface_cls) -> tuple[str, str]:
    """The stub methods' source, and their signatures alone (what the imports must cover)."""
    blocks, signatures = [], []
    for method_name in sorted(interface_cls.__abstractmethods__):
        func = getattr(interface_cls, method_name)
        signature = _signature(func)
        signatures.append(signature)
        blocks.append(
            f"\n    def {method_name}{signature}:\n{_docstring(func)}"
            f'        raise NotImplementedError("{method_name} {NOT_WRITTEN}")\n'
        )
    return "".join(blocks), "\n".join(signatures)


def _imports(signatures: str, interface_cls) -> str:
    """Import lines for the generated module, grouped and ordered as ruff's isort expects."""
    words = set(re.findall(r"[A-Za-z_]+", signatures))
    typing_names = [name for name in ("Any", "Literal") if name in words]
    core = {"Capabilities", "MethodConfig", interface_cls.__name__}
    core |= words & set(interfaces.__all__)
    lines = [line for word, line in _IMPORTS.items() if word in words]
    lines.append("from pydantic import Field")
    lines.append(f"from yw_core.interfaces import {', '.join(sorted(core))}")
    plain = sorted(line for line in lines if line.startswith("import "))
    froms = sorted((line for line in lines if line.startswith("from ")), key=lambda s: s.split()[1])
    head = f"from typing import {', '.join(typing_names)}\n\n" if typing_names else ""
    return head + "\n".join(plain + froms) + "\n"


def _is_identifier(value: str) -> bool:
    return value.isidentifier() and not keyword.iskeyword(value)


def plugin_names(
    name: str, distribution: str | None = None, package: str | None = None
) -> dict[str, str]:
    """The names a plugin called `name` uses: distribution, package, module and class.

    The distribution defaults to yw-plugin-NAME and the package to the distribution's name with
    '-' and '.' as '_' (yw-plugin-energy-ood -> yw_plugin_energy_ood).
    """
    if not NAME_PATTERN.match(name):
        raise ValueError(f"plugin name {name!r} must match {NAME_PATTERN.pattern}, e.g. my-defense")
    snake = name.replace("-", "_")
    if not _is_identifier(snake):
        raise ValueError(
            f"plugin name {name!r} gives the module name {snake!r}, which is not a Python "
            "identifier: start the name with a letter and avoid Python keywords"
        )
    distribution = distribution or f"yw-plugin-{name}"
    if not DISTRIBUTION_PATTERN.match(distribution):
        raise ValueError(
            f"distribution name {distribution!r} is not valid: use letters, digits, '-', '_' "
            f"and '.', starting and ending with a letter or digit, e.g. yw-plugin-{name}"
        )
    derived = package is None
    package = re.sub(r"[-.]+", "_", distribution).lower() if derived else package
    if not _is_identifier(package):
        where = " (made from the distribution name; choose one with --package)" if derived else ""
        raise ValueError(f"package name {package!r} is not a Python identifier{where}")
    return {
        "name": name,
        "distribution": distribution,
        "package": package,
        "module": snake,
        "class_name": "".join(part.capitalize() for part in snake.split("_") if part),
    }


def scaffold(
    name: str,
    interface: str,
    output: Path | None = None,
    distribution: str | None = None,
    package: str | None = None,
) -> Path:
    """Write the plugin distribution for `name` and return its directory (default: the
    distribution's name)."""
    if interface not in INTERFACES:
        raise ValueError(f"unknown interface {interface!r}; choose from {', '.join(INTERFACES)}")
    names = plugin_names(name, distribution, package)
    interface_cls = INTERFACES[interface]
    output = Path(output or names["distribution"])
    if output.exists():
        raise FileExistsError(f"{output} already exists; choose another --output")
    methods, signatures = _stubs(interface_cls)
    values = {
        **names,
        "interface": interface,
        "interface_class": interface_cls.__name__,
        "group": interface_cls.group,
        "core_requirement": f">={API_VERSION.split('.')[0]},<{int(API_VERSION.split('.')[0]) + 1}",
        "methods": methods.rstrip("\n"),
        "capabilities": f"Capabilities({'post_hoc=True' if interface == 'defense' else ''})",
        "attributes": _ATTRIBUTES.get(interface, ""),
        "imports": _imports(signatures, interface_cls),
        "not_written": NOT_WRITTEN,
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
