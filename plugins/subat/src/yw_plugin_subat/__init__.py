"""yw-plugin-subat: Sub-AT, adversarial training in the principal subspace of an AT trajectory."""

from yw_plugin_subat.steps import SamplingStep, StepMethod, SubspaceStep, dldr
from yw_plugin_subat.subat import SubAT

__all__ = ["SamplingStep", "StepMethod", "SubAT", "SubspaceStep", "dldr"]
