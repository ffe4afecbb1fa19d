"""yw-plugin-rwp: Random Weight Perturbation, a weight optimizer at about SGD's cost."""

from yw_plugin_rwp.batchnorm import frozen_bn_stats
from yw_plugin_rwp.method import RWP
from yw_plugin_rwp.noise import FilterLayout, FilterNoise, trained_parameters
from yw_plugin_rwp.steps import ParityStep, TwoPassStep, check_mix, mix_gradients, rwp_step

__all__ = [
    "RWP",
    "FilterLayout",
    "FilterNoise",
    "ParityStep",
    "TwoPassStep",
    "check_mix",
    "frozen_bn_stats",
    "mix_gradients",
    "rwp_step",
    "trained_parameters",
]
