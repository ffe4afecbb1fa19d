"""Evaluation metrics: accuracy, robustness under a query budget, calibration, OOD detection,
randomized-smoothing certification, continual learning (accuracy matrices), machine unlearning
(membership-inference attacks on the forget set, Avg.Gap against a retrained model) and binary
forecasts (KS, AUC-PR, ROC AUC, Cost = FPR + theta * FNR and its best threshold) and generation
(the Fréchet distance between feature sets).

Functions take torch tensors (any device) or numpy arrays and return Python floats, ints, dicts and
lists, ready for JSON. Importing this package loads numpy only; SciPy, scikit-learn, matplotlib and
torch are imported by the functions that need them.
"""

from .calibration import expected_calibration_error, plot_reliability, reliability_bins
from .classification import accuracy, argmax_agreement, logit_distortion
from .continual import average_accuracy, backward_transfer, forgetting
from .forecast import (
    average_precision,
    best_threshold,
    cost,
    ks_statistic,
    precision_recall_f1,
    roc_auc,
)
from .generation import frechet_distance
from .ood import aupr_in, aupr_out, auroc, fpr_at_95, ood_metrics
from .robustness import (
    query_stats,
    recheck_accuracy,
    recheck_rates,
    robust_accuracy,
    robust_accuracy_curve,
    success_rate,
)
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
    "average_precision",
    "backward_transfer",
    "avg_gap",
    "best_threshold",
    "certified_accuracy",
    "certify",
    "cost",
    "entropy_mia",
    "expected_calibration_error",
    "forgetting",
    "frechet_distance",
    "fpr_at_95",
    "gaps",
    "ks_statistic",
    "logit_distortion",
    "lower_confidence_bound",
    "mia_efficacies",
    "mia_efficacy",
    "mia_efficacy_from_features",
    "mia_features",
    "ood_metrics",
    "plot_reliability",
    "precision_recall_f1",
    "predict",
    "query_stats",
    "recheck_accuracy",
    "recheck_rates",
    "reliability_bins",
    "robust_accuracy",
    "robust_accuracy_curve",
    "roc_auc",
    "success_rate",
]
