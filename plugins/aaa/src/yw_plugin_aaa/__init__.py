"""yw-plugin-aaa: AAA, a post-hoc defense that misleads score-based query attacks."""

from yw_plugin_aaa.defense import AAA, AAAWrapper
from yw_plugin_aaa.postprocessing import enforce_top1, postprocess, postprocess_reference
from yw_plugin_aaa.temperature import TEMPERATURE_GRID, tune_temperature

__all__ = [
    "AAA",
    "AAAWrapper",
    "TEMPERATURE_GRID",
    "enforce_top1",
    "postprocess",
    "postprocess_reference",
    "tune_temperature",
]
