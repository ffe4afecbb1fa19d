"""Evaluation metrics: accuracy, robustness under a query budget, calibration, OOD detection,
randomized-smoothing certification, continual learning (accuracy matrices) and machine
unlearning (membership-inference attacks on the forget set, Avg.Gap against a retrained model).

Functions take torch tensors (any device) or numpy arrays and return Python floats, ints, dicts and
lists, ready for JSON. Importing this package loads numpy only; SciPy, scikit-learn, matplotlib and
torch are imported by the functions that need them.
"""

from .calibration import expected_calibration_error, plot_reliability, reliability_bins
from .classification import accuracy, argmax_agreement, logit_distortion
from .continual import average_accuracy, backward_transfer, forgetting
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
from .unlearning import (
    MIA_FEATURES,
    avg_gap,
    entropy_mia,
    gaps,
    mia_efficacies,
    mia_efficacy,
    mia_efficacy_from_features,
    mia_features,
)

__all__ = [
    "ABSTAIN",
    "MIA_FEATURES",
    "accuracy",
    "argmax_agreement",
    "aupr_in",
    "aupr_out",
    "auroc",
    "average_accuracy",
    "average_certified_radius",
    "backward_transfer",
    "avg_gap",
    "certified_accuracy",
    "certify",
    "entropy_mia",
    "expected_calibration_error",
    "forgetting",
    "fpr_at_95",
    "gaps",
    "logit_distortion",
    "lower_confidence_bound",
    "mia_efficacies",
    "mia_efficacy",
    "mia_efficacy_from_features",
    "mia_features",
    "ood_metrics",
    "plot_reliability",
    "predict",
    "query_stats",
    "reliability_bins",
    "robust_accuracy",
    "robust_accuracy_curve",
    "success_rate",
]
