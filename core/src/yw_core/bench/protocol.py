"""What a benchmark protocol is: a named, configured run over installed methods.

A protocol ships in any distribution and registers under the entry-point group `yw.benches`
(first-party ones are in yw-bench). `yw-core bench NAME` builds its flags from `Config`, runs it
through `yw_core.bench.run_protocol` (registry, runtime, hooks, manifest, atomic writes) and
prints `format_table` of the report; `figures` gives the plots to save beside results.json.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yw_core import API_VERSION
from yw_core.groups import BENCH, BENCH_GROUP

if TYPE_CHECKING:
    from yw_core.registry import Registry
    from yw_core.runtime import Runtime

RESERVED_FLAGS = ("out", "preset", "no_progress", "list", "help")  # the CLI's own options


class ProtocolConfig(BaseModel):
    """Base of every protocol's Config: the rules of a method's Config, plus where it runs.

    `device` and `seed` are what `run_protocol` builds the Runtime from; a protocol with several
    seeds overrides `Protocol.runtime_seed`."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    device: str = Field("auto", description="cpu, cuda, cuda:N, mps or auto")
    seed: int = Field(0, ge=0, description="seed of the models, the data order and the methods")


@dataclass
class Report:
    """What `Protocol.run` returns: per-method results, the protocol's facts for the manifest
    (eps, arch, points), and any other top-level sections of results.json (e.g. timing)."""

    results: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)


class Protocol(ABC):
    """Base class of a benchmark protocol; subclass it, set the class attributes, write `run`.

    `registry` is the method registry the run selects from; `select` and `configure` in
    `yw_core.bench.methods` load and configure methods from it and record them for the
    manifest. `result(name, entry)` tells the `yw_bench_result` hook that a row is ready."""

    interface: ClassVar[str] = BENCH
    group: ClassVar[str] = BENCH_GROUP
    name: ClassVar[str]
    summary: ClassVar[str]
    api_version: ClassVar[str] = API_VERSION
    Config: ClassVar[type[ProtocolConfig]] = ProtocolConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    """Named sets of Config values (`--preset NAME`), e.g. `paper` for the paper-scale run."""

    def __init__(self, registry: Registry | None = None):
        from yw_core.registry import Registry

        self.registry = registry if registry is not None else Registry.discover()
        self.used: dict[str, set[str]] = {}  # interface -> method names, for the manifest
        self.on_result: Callable[[str, dict], None] = lambda name, entry: None

    @abstractmethod
    def run(self, config: ProtocolConfig, *, runtime: Runtime, progress: bool) -> Report:
        """Run every method of the protocol and return the report (write no files)."""

    def format_table(self, report: dict[str, Any]) -> str:
        """results.txt and what the CLI prints, from the report as saved in results.json."""
        import json

        return json.dumps(report["results"], indent=2, default=str) + "\n"

    def figures(self, report: dict[str, Any]) -> dict[str, Any]:
        """Matplotlib figures to save beside results.json, by file name (default: none)."""
        return {}

    def runtime_seed(self, config: ProtocolConfig) -> int:
        """The seed of the run's Runtime."""
        return config.seed

    def result(self, name: str, entry: dict[str, Any]) -> None:
        """Call when one method's row is complete (fires the `yw_bench_result` hook)."""
        self.on_result(name, entry)

    def config(self, preset: str | None = None, **values: Any) -> ProtocolConfig:
        """A validated Config: the preset's values (if any) with `values` on top."""
        if preset is not None and preset not in self.presets:
            known = ", ".join(self.presets) or "none"
            raise ValueError(f"{self.name} has no preset {preset!r}; presets: {known}")
        return self.Config(**{**self.presets.get(preset, {}), **values})

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Everything `yw-core info` and `bench --list` show, as plain data."""
        from yw_core.interfaces import config_schema

        return {
            "name": cls.name,
            "interface": "bench",
            "summary": cls.summary,
            "api_version": cls.api_version,
            "presets": {name: dict(values) for name, values in cls.presets.items()},
            "config": config_schema(cls.Config),
        }


def check_protocol_class(cls: Any) -> list[str]:
    """Problems that make `cls` unusable as a protocol (empty when it is fine); the registry
    marks a `yw.benches` entry broken with them."""
    from yw_core.interfaces.method import check_config_class, check_plugin_identity

    if not isinstance(cls, type) or not issubclass(cls, Protocol):
        return [f"{cls!r} is not a subclass of yw_core.bench.Protocol"]
    problems = check_plugin_identity(cls)
    config = getattr(cls, "Config", None)
    if not isinstance(config, type) or not issubclass(config, ProtocolConfig):
        return [*problems, "Config must subclass yw_core.bench.ProtocolConfig"]
    problems += check_config_class(config)
    clash = sorted(set(config.model_fields) & set(RESERVED_FLAGS))
    if clash:
        problems.append(f"Config fields {clash} clash with the CLI's own options")
    for preset, values in cls.presets.items():
        try:
            config(**values)
        except ValidationError as exc:
            problems.append(f"preset {preset!r} does not validate: {exc.errors()[0]['msg']}")
    return problems
