"""What every yw method class carries: metadata, a validated Config, and the class checks.

The interface base classes (one module each in this package) subclass `Method`.
"""

from __future__ import annotations

import re
from abc import ABC
from typing import Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yw_core import API_VERSION

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class Paper(BaseModel):
    """Where a method comes from: shown by `yw-core info` and recorded in benchmark manifests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    authors: tuple[str, ...]
    year: int = Field(ge=1950, le=2100)
    venue: str = ""
    arxiv_id: str | None = None
    code_url: str | None = None


class Capabilities(BaseModel):
    """What a method supports, so hosts can pick and skip methods without running them.

    `deterministic` means: on CPU, the same runtime seed and the same calls in the same order
    give the same result. A randomised method can be deterministic in this sense: a defense
    that adds fresh noise to every query (RND, out-rnd) is, because its noise comes from a
    generator seeded from the runtime. The conformance suites run their same-seed checks only
    when it is True (the attack suite always runs them). `randomized` says something else: that
    two calls with the same input can answer differently (fresh noise per query, a random path,
    a fresh random multiplier), which matters to whoever counts an attack's success by
    re-querying. docs/contracts.md says what each field means and which hosts read it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    devices: tuple[Literal["cpu", "cuda", "mps"], ...] = ("cpu", "cuda", "mps")
    distributed: bool = Field(False, description="runs under torchrun on several processes")
    post_hoc: bool = Field(False, description="wraps a trained model; no training needed")
    training: bool = Field(False, description="trains or fine-tunes model weights")
    deterministic: bool = Field(True, description="same seed gives the same result on CPU")
    certified: bool = Field(
        False, description="trains a classifier for randomized-smoothing certification"
    )
    randomized: bool = Field(
        False, description="the same input can get different outputs from call to call"
    )
    batch_dependence: Literal["none", "scores", "argmax"] = Field(
        "none",
        description="how an input's output depends on the rest of its batch: not at all, "
        "its scores only (never its argmax), or even its argmax",
    )


class Variant(BaseModel):
    """A comparison row a method declares for benchmark protocols: its own Config with some
    values changed, under a label (DIO's single-path model is DIO with one path)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(description="what the row is, shown under the protocol's table")
    overrides: dict[str, Any] = Field(description="Config values that make the variant")


class MethodConfig(BaseModel):
    """Base of every method's Config: unknown keys are rejected and values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def build_config(config_cls: type[BaseModel], config: Any, overrides: dict[str, Any]) -> BaseModel:
    """Make a validated Config from None, a Config, or a mapping, with keyword overrides on top."""
    if config is None:
        values: dict[str, Any] = {}
    elif isinstance(config, config_cls):
        values = config.model_dump(exclude_unset=True)
    elif isinstance(config, dict):
        values = dict(config)
    else:
        raise TypeError(
            f"config must be a {config_cls.__qualname__}, a dict or None, "
            f"not {type(config).__name__}"
        )
    return config_cls(**{**values, **overrides})


class Method(ABC):
    """What every method class carries; subclass one of the interfaces, not this."""

    interface: ClassVar[str] = ""
    group: ClassVar[str] = ""
    name: ClassVar[str]
    summary: ClassVar[str]
    paper: ClassVar[Paper | None] = None
    license: ClassVar[str] = "MIT"
    status: ClassVar[Literal["stable", "experimental", "baseline"]] = "experimental"
    capabilities: ClassVar[Capabilities] = Capabilities()
    api_version: ClassVar[str] = API_VERSION
    Config: ClassVar[type[BaseModel]] = MethodConfig
    bench_fields: ClassVar[dict[str, str | None]] = {}
    """How benchmark protocols' settings map onto Config fields: {setting: field, or None to
    ignore it}; a setting not named goes to the field of its own name (see yw_core.bench)."""
    variants: ClassVar[dict[str, Variant]] = {}
    """Comparison rows for benchmark protocols, by row name (see Variant)."""

    def __init__(self, config: BaseModel | dict[str, Any] | None = None, /, **overrides: Any):
        self.config = build_config(self.Config, config, overrides)

    def __repr__(self) -> str:
        changed = self.config.model_dump(exclude_defaults=True)
        args = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"{type(self).__name__}({args})"

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Everything `yw-core info` shows, as plain data."""
        return {
            "name": cls.name,
            "interface": cls.interface,
            "summary": cls.summary,
            "paper": cls.paper.model_dump() if cls.paper else None,
            "license": cls.license,
            "status": cls.status,
            "api_version": cls.api_version,
            "capabilities": cls.capabilities.model_dump(),
            "config": config_schema(cls.Config),
        }


_NUMERIC = (int, float)
_BOUND_KEYS = ("ge", "gt", "le", "lt")


def _bounds(field) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for meta in field.metadata:
        for key in _BOUND_KEYS:
            value = getattr(meta, key, None)
            if value is not None:
                found[key] = value
    return found


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return " | ".join(repr(a) for a in get_args(annotation))
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def config_schema(config_cls: type[BaseModel]) -> list[dict[str, Any]]:
    """One row per Config field: name, type, default, bounds and description."""
    rows = []
    for fname, field in config_cls.model_fields.items():
        rows.append(
            {
                "name": fname,
                "type": _type_name(field.annotation),
                "default": field.get_default(call_default_factory=True),
                "bounds": _bounds(field),
                "description": field.description or "",
            }
        )
    return rows


def _is_numeric(annotation: Any) -> bool:
    return annotation in _NUMERIC or (
        get_origin(annotation) is not Literal
        and any(a in _NUMERIC for a in get_args(annotation))
        and type(None) in get_args(annotation)
    )


def check_method_class(cls: type, interface_cls: type[Method] | None = None) -> list[str]:
    """Problems that make `cls` unusable as a yw method (empty list when it is fine).

    Used when a plugin is loaded and by the conformance suites in `yw_core.testing`.
    """
    if not isinstance(cls, type) or not issubclass(cls, Method):
        return [f"{cls!r} is not a subclass of yw_core.interfaces.Method"]
    problems = []
    if interface_cls is not None and not issubclass(cls, interface_cls):
        problems.append(f"{cls.__qualname__} does not subclass {interface_cls.__name__}")
    problems += check_plugin_identity(cls)
    if cls.paper is not None and not isinstance(cls.paper, Paper):
        problems.append("paper must be a yw_core.interfaces.Paper or None")
    if not isinstance(cls.capabilities, Capabilities):
        problems.append("capabilities must be a yw_core.interfaces.Capabilities")
    if cls.status not in ("stable", "experimental", "baseline"):
        problems.append(f"status {cls.status!r} must be stable, experimental or baseline")
    problems += check_config_class(cls.Config)
    problems += _check_bench_declarations(cls)
    return problems


def check_plugin_identity(cls: type) -> list[str]:
    """What every plugin class needs, method or protocol: no abstract methods left, a valid
    name, a summary, and an api_version whose major part matches yw-core's."""
    problems = []
    if getattr(cls, "__abstractmethods__", None):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        problems.append(f"{cls.__qualname__} leaves abstract methods unimplemented: {missing}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        problems.append(f"name {name!r} must match {NAME_PATTERN.pattern}")
    if not isinstance(getattr(cls, "summary", None), str) or not cls.summary.strip():
        problems.append("summary must be a non-empty string")
    if str(getattr(cls, "api_version", "")).split(".")[0] != API_VERSION.split(".")[0]:
        problems.append(f"api_version {cls.api_version} does not match yw-core's {API_VERSION}")
    return problems


def _check_bench_declarations(cls) -> list[str]:
    """`bench_fields` must name Config fields; each variant's overrides must validate."""
    problems = []
    fields = getattr(cls.Config, "model_fields", {})
    for setting, target in dict(cls.bench_fields).items():
        if target is not None and target not in fields:
            problems.append(f"bench_fields maps {setting!r} to {target!r}, not a Config field")
    for row, variant in dict(cls.variants).items():
        if not isinstance(variant, Variant):
            problems.append(f"variant {row!r} must be a yw_core.interfaces.Variant")
            continue
        try:
            cls.Config(**variant.overrides)
        except (ValidationError, TypeError) as exc:
            problems.append(f"variant {row!r} does not validate: {exc}".splitlines()[0])
    return problems


def check_config_class(config_cls: Any) -> list[str]:
    """A Config must forbid extra keys, be frozen, and give every field a default,
    a description, and bounds when it is a number."""
    if not isinstance(config_cls, type) or not issubclass(config_cls, BaseModel):
        return ["Config must be a pydantic BaseModel subclass"]
    problems = []
    if config_cls.model_config.get("extra") != "forbid":
        problems.append("Config must set extra='forbid' (subclass yw_core.interfaces.MethodConfig)")
    if not config_cls.model_config.get("frozen"):
        problems.append("Config must set frozen=True (subclass yw_core.interfaces.MethodConfig)")
    for fname, field in config_cls.model_fields.items():
        if field.is_required():
            problems.append(f"Config field {fname!r} has no default")
        if not field.description:
            problems.append(f"Config field {fname!r} has no description")
        if _is_numeric(field.annotation) and not _bounds(field):
            problems.append(f"Config field {fname!r} is a number without bounds (ge/gt/le/lt)")
    try:
        config_cls()
    except ValidationError as exc:
        problems.append(f"Config defaults do not validate: {exc.errors()[0]['msg']}")
    return problems
