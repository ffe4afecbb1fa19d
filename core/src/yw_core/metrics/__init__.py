"""Evaluation metrics: accuracy, robustness under a query budget, calibration, OOD detection and
randomized-smoothing certification.

Functions take torch tensors (any device) or numpy arrays and return Python floats, ints, dicts and
lists, ready for JSON. Importing this package loads numpy only; SciPy, matplotlib and torch are
imported by the functions that need them.
"""

from .calibration import expected_calibration_error, plot_reliability, reliability_bins
from .classification import accuracy, argmax_agreement, logit_distortion
from .ood import aupr_in, aupr_out, auroc, fpr_at_95, ood_metrics
from .robustness import query_stats, robust_accuracy, robust_accuracy_curve, success_rate
from .smoothing import (
    ABSTAIN,
    average_certified_radius,
    certified_accuracy,
    certify,
    lower_confidence_bound,
    predict,
)

__all__ = [
    "ABSTAIN",
    "accuracy",
    "argmax_agreement",
    "aupr_in",
    "aupr_out",
    "auroc",
    "average_certified_radius",
    "certified_accuracy",
    "certify",
    "expected_calibration_error",
    "fpr_at_95",
    "logit_distortion",
    "lower_confidence_bound",
    "ood_metrics",
    "plot_reliability",
    "predict",
    "query_stats",
    "reliability_bins",
    "robust_accuracy",
    "robust_accuracy_curve",
    "success_rate",
]
