"""What a yw method is: one abstract base class per problem kind, each with one call shape.

Every method class carries, as class attributes, what `yw-core list/info` shows (name, summary,
paper, license, status, capabilities) and a pydantic `Config` whose fields hold the paper's
defaults. A method is built as `Method(config)` or `Method(**overrides)`; a wrong key or value fails
at construction with pydantic's `ValidationError`, naming the field.

`method` holds what all methods share; each interface, with the typed objects it takes and
returns, has a module of its own. Everything public is importable from here.
"""

from yw_core.interfaces.attack import Attack, AttackResult
from yw_core.interfaces.continual_learner import ContinualLearner, Stream, StreamBatch
from yw_core.interfaces.defense import Defense
from yw_core.interfaces.forecaster import Forecaster, Records
from yw_core.interfaces.inputs import iter_batches
from yw_core.interfaces.interpreter import Explanation, Interpreter
from yw_core.interfaces.method import (
    NAME_PATTERN,
    Capabilities,
    Method,
    MethodConfig,
    Paper,
    Variant,
    build_config,
    check_config_class,
    check_method_class,
    config_schema,
)
from yw_core.interfaces.ood_scorer import OODScorer
from yw_core.interfaces.rec_model import FeatureField, RecModel, RecSchema
from yw_core.interfaces.unlearner import Unlearner, UnlearningRequest
from yw_core.interfaces.weight_optimizer import TrainStep, WeightOptimizer

__all__ = [
    "INTERFACES",
    "NAME_PATTERN",
    "Attack",
    "AttackResult",
    "Capabilities",
    "ContinualLearner",
    "Defense",
    "Explanation",
    "FeatureField",
    "Forecaster",
    "Interpreter",
    "Method",
    "MethodConfig",
    "OODScorer",
    "Paper",
    "RecModel",
    "RecSchema",
    "Records",
    "Stream",
    "StreamBatch",
    "TrainStep",
    "Unlearner",
    "UnlearningRequest",
    "Variant",
    "WeightOptimizer",
    "build_config",
    "check_config_class",
    "check_method_class",
    "config_schema",
    "iter_batches",
]

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
