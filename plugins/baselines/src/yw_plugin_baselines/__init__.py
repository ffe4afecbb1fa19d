"""yw-plugin-baselines: the baselines the yw method papers compare against (defenses, weight
optimizers and OOD scorers)."""

from yw_plugin_baselines.adversarial_training import PGDAT, FastAT
from yw_plugin_baselines.noise import RND, NoisyModel, OutputNoise
from yw_plugin_baselines.ood import KNN, MSP, ODIN, Energy, GradNorm, Mahalanobis, ReAct
from yw_plugin_baselines.sam import SAM, SAMStep
from yw_plugin_baselines.swa import SWA, SWAStep

__all__ = [
    "Energy",
    "FastAT",
    "GradNorm",
    "KNN",
    "MSP",
    "Mahalanobis",
    "NoisyModel",
    "ODIN",
    "OutputNoise",
    "PGDAT",
    "RND",
    "ReAct",
    "SAM",
    "SAMStep",
    "SWA",
    "SWAStep",
]
