"""Conformance suites any plugin runs against its own classes, in one line:

    from yw_core.testing import conformance_suite
    TestConformance = conformance_suite(MyDefense)

Each suite checks the metadata and Config rules every method must follow (`method`), then
exercises the interface's call shape on a tiny model and checks the promises the interface makes
(output shapes, query budgets, eps-balls, untouched inputs). There is one module per interface,
named as in `yw_core.interfaces` (`ood_scorer`, `rec_model`, ...); `protocol` holds the suite of
benchmark protocols, `fixtures` the tiny models and data with known answers, and `plugin` the
pytest plugin (fixtures `yw_runtime`, `yw_seed`, `yw_registry`). Subclass a suite to adapt it:
set `config_overrides` to make the method cheap, or override its `make_*` hooks (`make_model`,
`make_data`, `make_stream`, `make_schema`, `make_history`, ...) for methods that need other
inputs.

Importing this package does not import torch: the fixtures and suites import it when they run.
"""

from __future__ import annotations

from typing import Any

from yw_core.testing.attack import AttackConformance
from yw_core.testing.continual_learner import ContinualLearnerConformance
from yw_core.testing.defense import DefenseConformance
from yw_core.testing.fixtures import (
    linear_model,
    linear_problem,
    prototype_problem,
    random_features,
    tiny_classifier,
    tiny_dataset,
    tiny_ddpm,
    uniform_inputs,
)
from yw_core.testing.forecaster import ForecasterConformance
from yw_core.testing.interpreter import InterpreterConformance
from yw_core.testing.method import MethodConformance
from yw_core.testing.ood_scorer import OODScorerConformance
from yw_core.testing.protocol import ProtocolConformance, protocol_suite
from yw_core.testing.rec_model import RecModelConformance
from yw_core.testing.torchrun import run_torchrun
from yw_core.testing.unlearner import UnlearnerConformance
from yw_core.testing.weight_optimizer import WeightOptimizerConformance

__all__ = [
    "SUITES",
    "AttackConformance",
    "ContinualLearnerConformance",
    "DefenseConformance",
    "ForecasterConformance",
    "InterpreterConformance",
    "MethodConformance",
    "OODScorerConformance",
    "ProtocolConformance",
    "RecModelConformance",
    "UnlearnerConformance",
    "WeightOptimizerConformance",
    "conformance_suite",
    "linear_model",
    "linear_problem",
    "protocol_suite",
    "prototype_problem",
    "random_features",
    "run_torchrun",
    "tiny_classifier",
    "tiny_dataset",
    "tiny_ddpm",
    "uniform_inputs",
]

SUITES: dict[str, type[MethodConformance]] = {
    "defense": DefenseConformance,
    "weight_optimizer": WeightOptimizerConformance,
    "attack": AttackConformance,
    "ood_scorer": OODScorerConformance,
    "unlearner": UnlearnerConformance,
    "continual_learner": ContinualLearnerConformance,
    "interpreter": InterpreterConformance,
    "rec_model": RecModelConformance,
    "forecaster": ForecasterConformance,
}
"""The suite of each interface, by `Method.interface`."""


def conformance_suite(method: type, **attributes: Any) -> type[MethodConformance]:
    """The conformance test class for `method`, picked by its interface; name it Test*.

    `attributes` become class attributes of the suite (`config_overrides`, `norms`, ...). A
    class of no known interface gets the rules every method follows (`MethodConformance`),
    whose class check then reports what is wrong with it.
    """
    from yw_core.interfaces import INTERFACES

    suite = SUITES.get(getattr(method, "interface", ""), MethodConformance)
    interface = INTERFACES.get(getattr(method, "interface", ""))
    name = f"Test{getattr(method, '__name__', 'Method')}Conformance"
    return type(name, (suite,), {"method": method, "interface": interface, **attributes})
