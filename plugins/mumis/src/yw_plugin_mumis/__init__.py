"""yw-plugin-mumis: remaining-data-free unlearning by suppressing input sensitivity."""

from yw_plugin_mumis.sensitivity import class_input_gradients, mumis_loss, sensitivities
from yw_plugin_mumis.stopping import StoppingRule
from yw_plugin_mumis.unlearner import MUMis

__all__ = ["MUMis", "StoppingRule", "class_input_gradients", "mumis_loss", "sensitivities"]
