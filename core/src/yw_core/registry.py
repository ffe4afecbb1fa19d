"""Finds yw methods through entry points and loads them; one bad plugin never breaks the host.

Listing reads `importlib.metadata` only (no plugin code, no torch). Loading goes through stevedore,
one named entry point at a time, after the plugin's declared yw-core requirement has been checked
against the running version. Every method ends up with a status:

- ``unchecked``: listed from metadata, not imported yet;
- ``ok``: imported and a valid method class;
- ``broken``: importing it failed, or what it points at is not a valid method (one-line reason);
- ``incompatible``: its yw-core requirement excludes this version (never imported);
- ``conflict``: two distributions claim the same name in one group (neither is loaded).

Environment switches: ``YW_LOAD_PLUGINS=dist-or-name,...`` keeps only those (empty = none),
``YW_DISABLE_PLUGINS=dist-or-name,...`` drops those, ``YW_STRICT_PLUGINS=1`` re-raises load errors.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from importlib import metadata
from typing import NamedTuple

from yw_core import __version__
from yw_core.catalogue import canonical, is_first_party
from yw_core.groups import BENCH, HOOKS_GROUP, INTERFACE_OF_GROUP, KINDS

CORE_DISTRIBUTION = "yw-core"
_reported: set[tuple[str, str]] = set()


class Entry(NamedTuple):
    """One method (or hooks module) as its entry point declares it.

    A NamedTuple rather than a dataclass: `yw-core list` must start fast, and dataclasses
    imports inspect.
    """

    name: str
    interface: str
    group: str
    value: str
    distribution: str
    version: str
    requires_core: str | None = None
    source: str = "third-party"
    status: str = "unchecked"
    reason: str = ""

    def as_dict(self) -> dict:
        return self._asdict()

    @property
    def label(self) -> str:
        return f"{self.name!r} ({self.distribution} {self.version})"


class PluginError(Exception):
    """A method the caller asked for cannot be used; the message says why."""


class UnknownMethodError(PluginError, LookupError):
    """No installed method has the requested name."""

    def __init__(self, name: str, known: list[str]):
        import difflib

        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f"; did you mean: {', '.join(close)}?" if close else ""
        available = _available().get(name)
        if available:
            hint = f" installed; it is in {available}: pip install {available}"
        super().__init__(f"no method named {name}{hint}")
        self.name = name
        self.close_matches = close


def _switch(environ, key: str) -> set[str] | None:
    value = environ.get(key)
    if value is None:
        return None
    return {canonical(item) for item in value.split(",") if item.strip()}


# "yw-core >=1,<2 ; marker": name, optional [extras], specifier, optional marker. Parsed by hand
# because importing packaging.requirements would cost `yw-core list` about 14 ms.
_CORE_REQUIREMENT = re.compile(
    r"^\s*yw[-_.]core(?![\w.-])\s*(?:\[[^\]]*\])?\s*\(?(?P<spec>[^;()]*)\)?\s*(?:;(?P<marker>.*))?$",
    re.IGNORECASE,
)


def core_requirement(dist: metadata.Distribution) -> str | None:
    """The version specifier a distribution puts on yw-core ('' = any), or None if it names none."""
    for line in dist.requires or ():
        match = _CORE_REQUIREMENT.match(line)
        if match is None:
            continue
        marker = (match["marker"] or "").strip()
        if marker:
            from packaging.markers import Marker

            if not Marker(marker).evaluate({"extra": ""}):
                continue
        spec = match["spec"].replace(" ", "")
        return "" if spec.startswith("@") else spec  # a direct URL reference pins no version
    return None


def core_admits(specifier: str | None, version: str = __version__) -> bool:
    """Whether the running yw-core version satisfies a plugin's requirement.

    Raises packaging's InvalidSpecifier for a specifier that is not PEP 440.
    """
    if not specifier:
        return True
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(specifier).contains(version, prereleases=True)


def _compatibility(entry: Entry) -> Entry:
    """The entry, marked incompatible (or broken: unreadable requirement) if it must not load."""
    if not entry.requires_core:
        return entry
    from packaging.specifiers import InvalidSpecifier

    try:
        admitted = core_admits(entry.requires_core)
    except InvalidSpecifier:
        return entry._replace(
            status="broken", reason=f"invalid yw-core requirement {entry.requires_core!r}"
        )
    if admitted:
        return entry
    return entry._replace(
        status="incompatible", reason=f"needs yw-core{entry.requires_core}, running {__version__}"
    )


def _read_entry_points(environ) -> list[Entry]:
    load_only = _switch(environ, "YW_LOAD_PLUGINS")
    disabled = _switch(environ, "YW_DISABLE_PLUGINS") or set()
    wanted = set(KINDS.values()) | {HOOKS_GROUP}
    entries = []
    found = metadata.entry_points()  # one scan of all distributions; select() works on 3.10-3.13
    for ep in (ep for group in sorted(wanted) for ep in found.select(group=group)):
        dist = ep.dist
        dist_name = dist.name if dist is not None else "unknown"
        keys = {canonical(dist_name), canonical(ep.name)}
        if load_only is not None and not keys & load_only:
            continue
        if keys & disabled:
            continue
        requires = core_requirement(dist) if dist is not None else None
        entries.append(
            Entry(
                name=ep.name,
                interface=INTERFACE_OF_GROUP.get(ep.group, "hooks"),
                group=ep.group,
                value=ep.value,
                distribution=dist_name,
                version=dist.version if dist is not None else "",
                requires_core=requires,
                source="first-party" if is_first_party(dist_name) else "third-party",
            )
        )
    return entries


def _classify(entries: list[Entry]) -> list[Entry]:
    """Mark entries incompatible or in conflict from metadata alone; drop exact duplicates."""
    unique = list({(e.group, e.name, e.distribution): e for e in entries}.values())
    claims = Counter((e.group, e.name) for e in unique)
    result = []
    for e in unique:
        if claims[(e.group, e.name)] > 1:
            others = sorted(
                o.distribution
                for o in unique
                if (o.group, o.name) == (e.group, e.name) and o is not e
            )
            e = e._replace(status="conflict", reason=f"name also claimed by {', '.join(others)}")
        else:
            e = _compatibility(e)
        result.append(e)
    return sorted(result, key=lambda e: (e.interface, e.name, e.distribution))


def _missing_module_hint(exc: ModuleNotFoundError, entry: Entry) -> str:
    missing = (exc.name or "").split(".")[0]
    if not missing:
        return ""
    if canonical(missing) == canonical(entry.value.split(":")[0].split(".")[0]):
        return f' (reinstall: pip install --force-reinstall "{entry.distribution}")'
    try:
        requires = metadata.distribution(entry.distribution).requires or []
    except metadata.PackageNotFoundError:
        requires = []
    for line in requires:
        if canonical(line).startswith(canonical(missing)):
            return f' (try: pip install "{line.split(";")[0].strip()}")'
    return f' (try: pip install "{missing}")'


def describe_error(exc: BaseException, entry: Entry) -> str:
    """A one-line reason for a load failure, with a pip hint when a module is missing."""
    first_line = (str(exc).strip().splitlines() or [""])[0]
    reason = f"{type(exc).__name__}: {first_line}"
    if isinstance(exc, ModuleNotFoundError):
        reason += _missing_module_hint(exc, entry)
    return reason


def env_flag(environ, key: str) -> bool:
    """Whether an on/off environment switch is on ('', 0, false, no and off mean off)."""
    return environ.get(key, "").strip().lower() not in ("", "0", "false", "no", "off")


def _import_with_stevedore(entry: Entry):
    """Import one entry point through stevedore; returns the object or raises the load error."""
    from stevedore import NamedExtensionManager

    errors: list[BaseException] = []
    manager = NamedExtensionManager(
        namespace=entry.group,
        names=[entry.name],
        invoke_on_load=False,
        on_load_failure_callback=lambda _mgr, _ep, exc: errors.append(exc),
        on_missing_entrypoints_callback=lambda names: None,
    )
    if errors:
        raise errors[0]
    for ext in manager.extensions:
        if ext.entry_point.value == entry.value:
            return ext.plugin
    raise PluginError(f"entry point {entry.name!r} in {entry.group} could not be found")


class Registry:
    """The methods this process sees: discovered from entry points, or given in memory (tests)."""

    def __init__(self, entries: list[Entry], objects: dict[tuple[str, str], object] | None = None):
        self._entries = {(e.group, e.name, e.distribution): e for e in entries}
        self._objects = dict(objects or {})
        self.environ = os.environ

    @classmethod
    def discover(cls, environ=None) -> Registry:
        """Read every yw entry point from installed distributions (imports no plugin code)."""
        environ = os.environ if environ is None else environ
        registry = cls(_classify(_read_entry_points(environ)))
        registry.environ = environ
        return registry

    @classmethod
    def from_classes(cls, classes, distribution: str = "in-memory", version: str = "0") -> Registry:
        """A registry of given method classes, with no entry points involved (for tests)."""
        entries, objects = [], {}
        for method in classes:
            entry = Entry(
                name=method.name,
                interface=method.interface,
                group=method.group,
                value=f"{method.__module__}:{method.__qualname__}",
                distribution=distribution,
                version=version,
            )
            entries.append(entry)
            objects[(entry.group, entry.name, distribution)] = method
        return cls(_classify(entries), objects)

    # ------------------------------------------------------------------ listing (no imports)

    def entries(self, interface: str | None = None) -> list[Entry]:
        """All entries, or those of one interface ('hooks' for pluggy modules)."""
        return [e for e in self._entries.values() if interface in (None, e.interface)]

    def names(self, interface: str | None = None) -> list[str]:
        return sorted({e.name for e in self.entries(interface) if e.interface != "hooks"})

    def find(self, name: str, interface: str | None = None) -> list[Entry]:
        return [e for e in self.entries(interface) if e.name == name and e.interface != "hooks"]

    # ------------------------------------------------------------------ loading

    def check(self, entry: Entry) -> Entry:
        """Import an entry (unless incompatible or in conflict) and record its status."""
        key = (entry.group, entry.name, entry.distribution)
        entry = self._entries.get(key, entry)
        if entry.status != "unchecked":
            return entry
        try:
            obj = self._objects[key] if key in self._objects else _import_with_stevedore(entry)
            problems = self._validate(entry, obj)
            if problems and env_flag(self.environ, "YW_STRICT_PLUGINS"):
                raise PluginError(f"{entry.label} is not a valid method: {'; '.join(problems)}")
        except Exception as exc:
            if env_flag(self.environ, "YW_STRICT_PLUGINS"):
                raise
            entry = entry._replace(status="broken", reason=describe_error(exc, entry))
        else:
            if problems:
                entry = entry._replace(status="broken", reason="; ".join(problems))
            else:
                entry = entry._replace(status="ok")
                self._objects[key] = obj
        self._entries[key] = entry
        return entry

    @staticmethod
    def _validate(entry: Entry, obj) -> list[str]:
        if entry.interface == "hooks":
            return []
        if entry.interface == BENCH:
            from yw_core.bench.protocol import check_protocol_class

            problems = check_protocol_class(obj)
            if not problems and obj.name != entry.name:
                problems.append(f"entry point name {entry.name!r} differs from {obj.name!r}")
            return problems
        from yw_core.interfaces import INTERFACES, check_method_class

        problems = check_method_class(obj, INTERFACES[entry.interface])
        if not problems and obj.name != entry.name:
            problems.append(f"entry point name {entry.name!r} differs from class name {obj.name!r}")
        return problems

    def check_all(self, interface: str | None = None) -> list[Entry]:
        return [self.check(e) for e in self.entries(interface)]

    def get(self, entry: Entry):
        """The loaded object of an entry that checked ok."""
        return self._objects[(entry.group, entry.name, entry.distribution)]

    def load(self, name: str, interface: str | None = None):
        """The method class called `name`; raises PluginError saying why it cannot be used."""
        found = self.find(name, interface)
        if not found:
            raise UnknownMethodError(name, self.names(interface) + list(_available()))
        kinds = sorted({e.interface for e in found})
        if len(kinds) > 1:
            raise PluginError(
                f"{name!r} names methods of several interfaces ({', '.join(kinds)}); "
                "choose one with --interface"
            )
        entry = self.check(found[0])
        if entry.status != "ok":
            raise PluginError(f"method {entry.label} is {entry.status}: {entry.reason}")
        return self.get(entry)

    def load_all(self, interface: str) -> dict[str, type]:
        """Every usable method of one interface; each unusable one is reported once on stderr."""
        loaded = {}
        for entry in self.check_all(interface):
            if entry.status == "ok":
                loaded[entry.name] = self.get(entry)
            else:
                report(entry)
        return loaded

    def load_hooks(self) -> list[object]:
        """The yw.hooks modules that import cleanly; failures are reported, never raised."""
        return [self.get(e) for e in self.check_all("hooks") if e.status == "ok" or report(e)]


def report(entry: Entry) -> None:
    """Say once per process, on stderr through logging, that a plugin is being skipped."""
    key = (entry.group, entry.name)
    if key not in _reported:
        _reported.add(key)
        import logging

        logging.getLogger("yw_core.registry").warning(
            "yw-core: skipping %s: %s: %s", entry.label, entry.status, entry.reason
        )


def _available() -> dict[str, str]:
    """First-party method names from registry.toml, each with its distribution."""
    from yw_core.catalogue import load_catalogue

    return {
        name: entry["distribution"]
        for entry in load_catalogue().values()
        for name in entry.get("methods", {})
    }


def reserved_by(name: str) -> tuple[str, str] | None:
    """(distribution, interface) of the first-party method registry.toml reserves `name` for, so
    a third-party plugin can be warned off the name before the two clash; None if it is free."""
    from yw_core.catalogue import load_catalogue

    for entry in load_catalogue().values():
        interface = entry.get("methods", {}).get(name)
        if interface is not None:
            return entry["distribution"], interface
    return None
