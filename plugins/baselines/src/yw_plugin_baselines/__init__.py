"""yw-plugin-baselines: the baselines the yw method papers compare against."""

from yw_plugin_baselines.adversarial_training import PGDAT, FastAT
from yw_plugin_baselines.noise import RND, NoisyModel, OutputNoise
from yw_plugin_baselines.sam import SAM, SAMStep
from yw_plugin_baselines.swa import SWA, SWAStep

__all__ = [
    "FastAT",
    "PGDAT",
    "NoisyModel",
    "OutputNoise",
    "RND",
    "SAM",
    "SAMStep",
    "SWA",
    "SWAStep",
]
