"""The FCN detector of AnomalyAID, split into `features` (input -> embedding) and a linear `head`.

The official code's FCNClassifier: `layers` hidden blocks Linear-ReLU-Dropout, then a Linear to
the embedding, ReLU and Dropout; the classifier is one Linear on that embedding. The embedding is
what DBSCAN and the class centroids work on, so it is `features` here (yw's split convention).
Inputs of any shape are flattened first, as the official forward does.
"""

from __future__ import annotations

from torch import nn

from yw_core.models import SplitClassifier


class FCN(SplitClassifier):
    """Fully connected detector: `features` = [Linear-ReLU-Dropout] x layers -> Linear(embedding)
    -> ReLU -> Dropout, `head` = Linear(embedding, classes). Inputs (N, ...) are flattened."""

    def __init__(
        self,
        in_features: int,
        *,
        hidden: int = 64,
        layers: int = 2,
        embedding: int = 32,
        classes: int = 2,
        dropout: float = 0.5,
    ):
        for name, value, least in (
            ("in_features", in_features, 1),
            ("hidden", hidden, 1),
            ("layers", layers, 0),
            ("embedding", embedding, 1),
            ("classes", classes, 2),
        ):
            if not isinstance(value, int) or value < least:
                raise ValueError(f"FCN: {name} must be an int >= {least}, got {value!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"FCN: dropout must lie in [0, 1), got {dropout!r}")
        blocks: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        blocks += [nn.Linear(width, embedding), nn.ReLU(), nn.Dropout(dropout)]
        super().__init__(nn.Sequential(*blocks), nn.Linear(embedding, classes))
