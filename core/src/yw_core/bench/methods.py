"""Choosing and configuring the methods of a protocol run, from what the methods declare.

A protocol never names a method: it selects by interface and capability (`select`), passes its
settings (eps, epochs, sigma) through each method's declared `bench_fields` mapping
(`configure`), applies the user's per-method overrides, and adds the comparison rows a method
declares as `variants`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from yw_core.catalogue import canonical, is_installed, load_catalogue
from yw_core.registry import PluginError, Registry


def install_hint(interface: str, names: Iterable[str], environ=None) -> str:
    """What to install for these names of `interface`, from the first-party catalogue
    (registry.toml), per distribution: 'attack square is provided by yw-plugin-attacks, which is
    not installed: pip install yw-plugin-attacks (from a source checkout: pip install
    ./plugins/attacks)', or, when it is installed, that YW_LOAD_PLUGINS / YW_DISABLE_PLUGINS (as
    set in `environ`) hide it; '' for names the catalogue does not list."""
    providers = _providers(interface)
    by_dist: dict[str, list[str]] = {}
    for name in names:
        if name in providers:
            by_dist.setdefault(providers[name]["distribution"], []).append(name)
    parts = []
    for dist, provided in sorted(by_dist.items()):
        verb = "is" if len(provided) == 1 else "are"
        head = f"{_noun(interface, len(provided))} {', '.join(provided)} {verb} provided by {dist}"
        if not is_installed(dist):
            parts.append(f"{head}, which is not installed: {install_line(dist)}")
            continue
        switches = [
            f"{key}={environ[key]}"
            for key in ("YW_LOAD_PLUGINS", "YW_DISABLE_PLUGINS")
            if environ is not None and key in environ
        ]
        it = "it" if len(provided) == 1 else "them"
        why = f"hidden by {' '.join(switches)}" if switches else f"does not register {it}"
        parts.append(f"{head}, which is installed but {why}")
    return "; ".join(parts)


def install_line(*distributions: str) -> str:
    """'pip install A B (from a source checkout: pip install ./plugins/a ./plugins/b)': how to
    install first-party distributions, with their folders from registry.toml."""
    catalogue = load_catalogue()
    paths = [catalogue[canonical(d)]["path"] for d in distributions if canonical(d) in catalogue]
    line = f"pip install {' '.join(distributions)}"
    if len(paths) == len(distributions):
        line += f" (from a source checkout: pip install {' '.join(f'./{p}' for p in paths)})"
    return line


def _providers(interface: str) -> dict[str, dict]:
    """{name: catalogue entry} for the names of `interface` in registry.toml."""
    return {
        name: entry
        for entry in load_catalogue().values()
        for name, kind in entry.get("methods", {}).items()
        if kind == interface
    }


def _noun(interface: str, count: int) -> str:
    noun = "attack" if interface == "attack" else "method"
    return noun if count == 1 else f"{noun}s"


def _unknown_message(interface: str, unknown: list[str], known: list[str], environ) -> str:
    """Names the catalogue lists get an install hint; the others are unknown, with the known."""
    providers = _providers(interface)
    parts = []
    strays = [n for n in unknown if n not in providers]
    if strays:
        listed = ", ".join(known) if known else "none installed"
        parts.append(
            f"unknown {_noun(interface, 1)} {', '.join(strays)}; "
            f"known {_noun(interface, 2)}: {listed}"
        )
    hint = install_hint(interface, unknown, environ)
    return "; ".join([*parts, hint] if hint else parts)


def select(
    protocol,
    interface: str,
    names: Iterable[str] | None = None,
    *,
    where: Callable[[type], bool] | None = None,
    why: str = "",
    builtin: Iterable[str] = (),
) -> dict[str, type]:
    """The named methods of `interface` (all installed ones passing `where` when `names` is
    None), loaded, checked against `where`, and recorded in the run's manifest.

    `builtin` are row names the protocol provides itself (e.g. "none"): accepted, not loaded.
    An unknown, unusable or unsuitable method is a ValueError naming it and what is known."""
    registry: Registry = protocol.registry
    builtin = tuple(builtin)
    if names is None:
        found = registry.load_all(interface)
        chosen = {n: cls for n, cls in found.items() if where is None or where(cls)}
    else:
        wanted = [n for n in names if n not in builtin]
        known = [*builtin, *registry.names(interface)]
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise ValueError(_unknown_message(interface, unknown, known, registry.environ))
        chosen = {}
        for name in wanted:
            try:
                chosen[name] = registry.load(name, interface)
            except PluginError as exc:
                raise ValueError(str(exc)) from exc
        unfit = [n for n, cls in chosen.items() if where is not None and not where(cls)]
        if unfit:
            raise ValueError(f"{', '.join(unfit)}: {why or 'not suitable for this protocol'}")
    protocol.used.setdefault(interface, set()).update(chosen)
    return chosen


def configure(
    cls: type,
    settings: Mapping[str, Any],
    *,
    optional: Iterable[str] = ("progress",),
    overrides: Mapping[str, Any] | None = None,
):
    """Build `cls` with the protocol's `settings` mapped onto its Config, then `overrides`.

    Each setting goes to the Config field the method's `bench_fields` names for it (the field
    of the same name when it names none; None: the method ignores that setting). A setting
    whose field the Config lacks is a ValueError, unless the setting is in `optional`."""
    fields = cls.Config.model_fields
    mapping = getattr(cls, "bench_fields", {})
    values: dict[str, Any] = {}
    for setting, value in settings.items():
        target = mapping.get(setting, setting)
        if target is None:
            continue
        if target not in fields:
            if setting in optional and setting not in mapping:
                continue
            raise ValueError(
                f"{cls.name}: the protocol sets {setting!r}, but {cls.__qualname__}.Config has "
                f"no field {target!r}; add the field, or map the setting in "
                f"{cls.__qualname__}.bench_fields ({{{setting!r}: 'field' or None}})"
            )
        values[target] = value
    return cls(**values, **dict(overrides or {}))


def variants(cls: type) -> dict[str, Any]:
    """The comparison rows a method declares: {row name: Variant(label, overrides)}."""
    return dict(getattr(cls, "variants", {}) or {})


def check_overrides(
    overrides: Mapping[str, Mapping[str, Any]], methods: Mapping[str, type | None]
) -> None:
    """Per-method Config overrides must name methods of the run (a typo would be ignored) and
    validate against their Config, before anything runs; `methods` maps row names to classes
    (None for a row the protocol provides itself, which takes no overrides)."""
    from pydantic import ValidationError

    stray = sorted(set(overrides) - set(methods))
    if stray:
        raise ValueError(
            f"overrides name {', '.join(stray)}, not in this run: {', '.join(methods) or 'none'}"
        )
    for name, values in overrides.items():
        cls = methods[name]
        if cls is None:
            raise ValueError(f"overrides name {name}, which has no Config to override")
        try:
            cls.Config(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(map(str, err["loc"]))
            message = err["msg"].removeprefix("Value error, ")
            raise ValueError(f"--overrides {name}.{field}: {message}") from None
