"""yw-plugin-twa: TWA, trainable weight averaging over the checkpoints of a base run."""

from yw_plugin_twa.coefficients import CoefficientSpace
from yw_plugin_twa.steps import CoefficientStep, SpanStep, recompute_bn
from yw_plugin_twa.twa import TWA

__all__ = ["TWA", "CoefficientSpace", "CoefficientStep", "SpanStep", "recompute_bn"]
