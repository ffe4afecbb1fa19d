"""yw-plugin-anomalyaid: AnomalyAID, reliable interpretation for semi-supervised network anomaly
detection (KAM explanations and ToS training)."""

from yw_plugin_anomalyaid.interpret import (
    class_centroids,
    embed,
    global_importance,
    kam_overlap,
    local_attributions,
    nearest_centroid,
    permutation_importance,
)
from yw_plugin_anomalyaid.methods import AnomalyAID, AnomalyAIDConfig
from yw_plugin_anomalyaid.model import FCN
from yw_plugin_anomalyaid.tos import (
    ClassStore,
    agreement,
    cluster_labels,
    holdout_split,
    train_epochs,
    two_stage,
)

__all__ = [
    "FCN",
    "AnomalyAID",
    "AnomalyAIDConfig",
    "ClassStore",
    "agreement",
    "class_centroids",
    "cluster_labels",
    "embed",
    "global_importance",
    "holdout_split",
    "kam_overlap",
    "local_attributions",
    "nearest_centroid",
    "permutation_importance",
    "train_epochs",
    "two_stage",
]
