"""yw-plugin-marwp: m-RWP, ARWP and m-ARWP from "Revisiting Random Weight Perturbation"."""

from yw_plugin_marwp.adaptive import FisherScale, ramped_sigma
from yw_plugin_marwp.methods import ARWP, MARWP, MRWP
from yw_plugin_marwp.steps import ARWPStep

__all__ = ["ARWP", "ARWPStep", "FisherScale", "MARWP", "MRWP", "ramped_sigma"]
