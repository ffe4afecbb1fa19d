"""yw-plugin-lowdim-grad: OOD detection on low-dimensional parameter gradients."""

from yw_plugin_lowdim_grad.features import project
from yw_plugin_lowdim_grad.gradients import GradientMap
from yw_plugin_lowdim_grad.normalise import Normalisation, fill_infinite
from yw_plugin_lowdim_grad.operator import FitJacobian
from yw_plugin_lowdim_grad.params import AUTO_LIMIT, select_parameters
from yw_plugin_lowdim_grad.probe import Probe, train_probe
from yw_plugin_lowdim_grad.scorer import LowDimGrad
from yw_plugin_lowdim_grad.subspace import avg_grad_basis, explicit_pca_basis, pca_basis

__all__ = [
    "AUTO_LIMIT",
    "FitJacobian",
    "GradientMap",
    "LowDimGrad",
    "Normalisation",
    "Probe",
    "avg_grad_basis",
    "fill_infinite",
    "explicit_pca_basis",
    "pca_basis",
    "project",
    "select_parameters",
    "train_probe",
]
