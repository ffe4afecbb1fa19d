"""What a yw method is: one abstract base class per problem kind, each with one call shape.

Every method class carries, as class attributes, what `yw-core list/info` shows (name, summary,
paper, license, status, capabilities) and a pydantic `Config` whose fields hold the paper's
defaults. A method is built as `Method(config)` or `Method(**overrides)`; a wrong key or value fails
at construction with pydantic's `ValidationError`, naming the field.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yw_core import API_VERSION
from yw_core.groups import GROUPS

if TYPE_CHECKING:
    import torch
    from torch import nn

    from yw_core.runtime import Runtime

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
    """What a method supports, so hosts can pick and skip methods without running them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    devices: tuple[Literal["cpu", "cuda", "mps"], ...] = ("cpu", "cuda", "mps")
    distributed: bool = Field(False, description="runs under torchrun on several processes")
    post_hoc: bool = Field(False, description="wraps a trained model; no training needed")
    training: bool = Field(False, description="trains or fine-tunes model weights")
    deterministic: bool = Field(True, description="same seed gives the same result on CPU")


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
    """What every method class carries; subclass one of the interfaces below, not this."""

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
    if getattr(cls, "__abstractmethods__", None):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        problems.append(f"{cls.__qualname__} leaves abstract methods unimplemented: {missing}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        problems.append(f"name {name!r} must match {NAME_PATTERN.pattern}")
    if not isinstance(getattr(cls, "summary", None), str) or not cls.summary.strip():
        problems.append("summary must be a non-empty string")
    if cls.paper is not None and not isinstance(cls.paper, Paper):
        problems.append("paper must be a yw_core.interfaces.Paper or None")
    if not isinstance(cls.capabilities, Capabilities):
        problems.append("capabilities must be a yw_core.interfaces.Capabilities")
    if cls.status not in ("stable", "experimental", "baseline"):
        problems.append(f"status {cls.status!r} must be stable, experimental or baseline")
    if str(cls.api_version).split(".")[0] != API_VERSION.split(".")[0]:
        problems.append(f"api_version {cls.api_version} does not match yw-core's {API_VERSION}")
    problems += check_config_class(cls.Config)
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


# --------------------------------------------------------------------------- interfaces


class Defense(Method):
    """Protects a classifier, either post-hoc (AAA, UniG) or by training (Sub-AT, DIO, SOME).

    `capabilities.post_hoc` says which. A post-hoc defense returns a wrapper whose forward gives
    defended logits of the same shape as the model's; `data`, when given, is calibration data.
    A training-time defense trains on `data` (required) and returns the robust model.
    """

    interface = "defense"
    group = GROUPS["defense"]

    @abstractmethod
    def protect(self, model: nn.Module, *, data: Any = None, runtime: Runtime) -> nn.Module:
        """Return the protected model (a wrapper for post-hoc methods)."""


class TrainStep(ABC):
    """One optimisation step as a WeightOptimizer defines it; `yw_core.train.fit` drives it.

    The contract, in the order `fit` calls it:

    - `begin(total_updates)` once, before the first batch: methods with schedules (ARWP's sigma
      ramp, SWA's start) read the plan from it.
    - `step(batch, loss_fn)` once per mini-batch: zero the gradients, run the forward/backward
      passes the method needs (`loss_fn(model, batch)` returns a scalar loss), step the
      optimizer and return the detached loss. A method that uses `batches_per_update` > 1
      batches per update (sequential RWP, m-ARWP) updates on every k-th call; `fit` then passes
      over the data k times per epoch so the number of updates matches plain SGD.
    - `on_epoch_end(epoch)` after each epoch of updates: where TWA and SWA collect weights.
    - `finalize(data)` once after training: average or project, recompute BN; returns the model.

    Under torchrun `model` is the DistributedDataParallel wrapper `fit` made; the parameters are
    the same objects as the wrapped module's.
    """

    batches_per_update: int = 1

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, runtime: Runtime):
        self.model = model
        self.optimizer = optimizer
        self.runtime = runtime
        self.total_updates: int | None = None

    def begin(self, total_updates: int) -> None:
        """Called once before training with the number of optimizer updates `fit` will make."""
        self.total_updates = int(total_updates)

    @abstractmethod
    def step(self, batch: Any, loss_fn) -> torch.Tensor:
        """Do one update (or one pass of a multi-batch update) and return the loss it saw."""

    def on_epoch_end(self, epoch: int) -> None:
        """Called after each epoch: where trajectory methods (TWA, SWA) collect checkpoints."""

    def finalize(self, data: Any = None) -> nn.Module:
        """Called once after training: average or project weights, recompute BN; returns model."""
        return self.model


class WeightOptimizer(Method):
    """Changes how weights are updated (RWP, ARWP, SAM) or combined (TWA, SWA) during training."""

    interface = "weight_optimizer"
    group = GROUPS["weight_optimizer"]

    @abstractmethod
    def attach(
        self,
        model: nn.Module,
        base_optimizer: torch.optim.Optimizer,
        *,
        runtime: Runtime,
        **kwargs: Any,
    ) -> TrainStep:
        """Wrap a model and its base optimizer (e.g. SGD) into the method's TrainStep.

        Method-specific inputs come as keyword arguments (TWA's `checkpoints`); `fit` passes
        its `attach_kwargs` through."""


@dataclass
class AttackResult:
    """What an attack returns, per sample: the adversarial input, success, and queries spent.

    `loss_queries` counts the forwards used to compute the attack loss; `total_queries` adds the
    forwards used only to check success. Both are LongTensors of shape (N,).
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    loss_queries: torch.Tensor
    total_queries: torch.Tensor


class Attack(Method):
    """Perturbs inputs in [0, 1] against a model within an eps-ball and a per-sample query budget.

    Score-based attacks use only the model's outputs and stop querying a sample once it is
    misclassified; white-box attacks may use gradients (each forward counts as a query).
    """

    interface = "attack"
    group = GROUPS["attack"]

    @abstractmethod
    def run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        eps: float,
        norm: Literal["linf", "l2"] = "linf",
        budget: int,
        runtime: Runtime,
    ) -> AttackResult:
        """Attack the batch (x, y); never spend more than `budget` queries on one sample."""

    @staticmethod
    def check_inputs(x: torch.Tensor, y: torch.Tensor, eps: float, budget: int, norm: str) -> None:
        """Clear ValueErrors for the mistakes callers make: shapes, range, NaN, eps, budget, norm.

        Attacks call it first thing in `run`; the conformance suite checks that they do.
        """
        import torch

        if x.dim() < 2 or y.dim() != 1 or len(x) != len(y):
            raise ValueError(
                f"x must have shape (N, ...) and y shape (N,), got {tuple(x.shape)} and "
                f"{tuple(y.shape)}"
            )
        if torch.isnan(x).any():
            raise ValueError("x contains NaN")
        if x.min() < 0 or x.max() > 1:
            lo, hi = x.min().item(), x.max().item()
            raise ValueError(f"x must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if int(budget) < 1:
            raise ValueError(f"budget must be a positive number of queries, got {budget}")
        if norm not in ("linf", "l2"):
            raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")


class OODScorer(Method):
    """Fits on in-distribution data, then scores inputs: higher means more in-distribution."""

    interface = "ood_scorer"
    group = GROUPS["ood_scorer"]

    @abstractmethod
    def fit(self, model: nn.Module, id_data: Any, *, runtime: Runtime) -> OODScorer:
        """Learn what the scorer needs from the in-distribution data; returns self."""

    @abstractmethod
    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of shape (N,), higher = more in-distribution."""


class Unlearner(Method):
    """Removes the influence of a forget set (or concept) from a trained model."""

    interface = "unlearner"
    group = GROUPS["unlearner"]

    @abstractmethod
    def unlearn(
        self, model: nn.Module, forget: Any, retain: Any = None, *, runtime: Runtime
    ) -> nn.Module:
        """Return the unlearned model; `retain` is None for remaining-data-free methods."""


class ContinualLearner(Method):
    """Learns online from a non-stationary stream, one mini-batch at a time."""

    interface = "continual_learner"
    group = GROUPS["continual_learner"]

    @abstractmethod
    def setup(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        num_classes: int,
        runtime: Runtime,
    ) -> None:
        """Bind the learner to a model and optimizer before the stream starts."""

    @abstractmethod
    def observe(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Learn from one incoming batch; returns the training loss."""

    @abstractmethod
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, classes) for evaluation."""


class RecModel(Method):
    """A ranking model that scores candidate items for a user.

    `build(schema)` returns an nn.Module with `forward(user, items) -> scores` for training and
    `serve(user, candidates) -> scores` for inference; `schema` describes the feature fields.
    """

    interface = "rec_model"
    group = GROUPS["rec_model"]

    @abstractmethod
    def build(self, schema: Any) -> nn.Module:
        """Return the model for this feature schema."""


class Forecaster(Method):
    """Predicts future events (e.g. technology convergence) from historical records."""

    interface = "forecaster"
    group = GROUPS["forecaster"]

    @abstractmethod
    def fit(self, history: Any) -> Forecaster:
        """Learn from the historical records; returns self."""

    @abstractmethod
    def predict(self, query: Any) -> torch.Tensor:
        """Scores for the queried future events."""


@dataclass
class Explanation:
    """Per-feature attributions of shape like the input, and a per-sample reliability score."""

    attributions: torch.Tensor
    reliability: torch.Tensor | None = None


class Interpreter(Method):
    """Explains a model's decisions, and says how far each explanation can be trusted."""

    interface = "interpreter"
    group = GROUPS["interpreter"]

    @abstractmethod
    def fit(self, model: nn.Module, data: Any, *, runtime: Runtime) -> Interpreter:
        """Prepare the explainer on reference data; returns self."""

    @abstractmethod
    def explain(self, x: torch.Tensor) -> Explanation:
        """Attributions (and reliability) for the inputs x."""


INTERFACES: dict[str, type[Method]] = {
    cls.interface: cls
    for cls in (
        Defense,
        WeightOptimizer,
        OODScorer,
        Unlearner,
        RecModel,
        Forecaster,
        Interpreter,
        ContinualLearner,
        Attack,
    )
}
