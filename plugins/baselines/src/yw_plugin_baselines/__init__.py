"""yw-plugin-baselines: the baselines the yw method papers compare against (defenses, weight
optimizers, OOD scorers, unlearners, online continual learners and explainers)."""

from yw_plugin_baselines.adversarial_training import PGDAT, FastAT
from yw_plugin_baselines.continual import ER, ERACE, MIR, FineTune
from yw_plugin_baselines.erasure import ESD, ConceptAblation
from yw_plugin_baselines.explainers import (
    DeepLift,
    InputXGradient,
    IntegratedGradients,
    KernelShap,
    Lime,
)
from yw_plugin_baselines.noise import RND, NoisyModel, OutputNoise
from yw_plugin_baselines.ood import KNN, MSP, ODIN, Energy, GradNorm, Mahalanobis, ReAct
from yw_plugin_baselines.sam import SAM, SAMStep
from yw_plugin_baselines.swa import SWA, SWAStep
from yw_plugin_baselines.unlearning import FT, GA, RL, L1Sparse, Retrain, SalUn

__all__ = [
    "ConceptAblation",
    "ESD",
    "DeepLift",
    "ER",
    "ERACE",
    "Energy",
    "FT",
    "FastAT",
    "FineTune",
    "GA",
    "GradNorm",
    "InputXGradient",
    "IntegratedGradients",
    "KNN",
    "KernelShap",
    "L1Sparse",
    "Lime",
    "MIR",
    "MSP",
    "Mahalanobis",
    "NoisyModel",
    "ODIN",
    "OutputNoise",
    "PGDAT",
    "RL",
    "RND",
    "ReAct",
    "Retrain",
    "SAM",
    "SAMStep",
    "SWA",
    "SWAStep",
    "SalUn",
]
