"""yw-plugin-some: SOME, a multi-head ensemble of smoothed classifiers for certified robustness."""

from yw_plugin_some.heads import HeadEnsemble, MultiHeadClassifier, build_multihead
from yw_plugin_some.loss import (
    circular_ce,
    consistency_term,
    cosine_penalty,
    self_paced_weights,
    smoothed_losses,
    threshold,
)
from yw_plugin_some.method import SOME
from yw_plugin_some.smoothmix import smoothmix_pair, smoothmix_term

__all__ = [
    "SOME",
    "HeadEnsemble",
    "MultiHeadClassifier",
    "build_multihead",
    "circular_ce",
    "consistency_term",
    "cosine_penalty",
    "self_paced_weights",
    "smoothed_losses",
    "smoothmix_pair",
    "smoothmix_term",
    "threshold",
]
