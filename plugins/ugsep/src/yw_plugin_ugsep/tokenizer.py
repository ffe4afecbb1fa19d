"""RankMixer's tokenisation: embed each feature field, concatenate, cut into T chunks, project.

Every categorical field gets an embedding table and every dense field a linear map, both to
`embedding_dim`. The concatenation `e` (N, F·embedding_dim) is zero-padded to T·d with
d = ceil(width / T) and cut into T consecutive chunks; chunk t gets its own projection to D
(RankMixer Eq. 2; a separate Linear per chunk is our choice, the paper's readings leave it open).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from yw_core.interfaces import FeatureField


class FieldEmbedding(nn.Module):
    """The fields of one or both sides embedded and concatenated: (N, len(fields)·dim)."""

    def __init__(self, fields: Sequence[FeatureField], dim: int):
        super().__init__()
        self.names = [f.name for f in fields]
        self.tables = nn.ModuleDict(
            {
                f.name: nn.Embedding(f.cardinality, dim)
                if f.kind == "categorical"
                else nn.Linear(f.dim, dim)
                for f in fields
            }
        )
        self.width = len(fields) * dim

    def forward(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([self.tables[n](features[n]) for n in self.names], dim=-1)


class ChunkProjection(nn.Module):
    """(N, width) -> (N, T, D): zero-pad to T·d, cut into T chunks of d, project chunk t by W_t."""

    def __init__(self, width: int, tokens: int, dim: int):
        super().__init__()
        self.tokens, self.chunk = tokens, math.ceil(width / tokens)
        self.pad = tokens * self.chunk - width
        self.weight = nn.Parameter(torch.empty(tokens, self.chunk, dim))
        self.bias = nn.Parameter(torch.zeros(tokens, dim))
        nn.init.uniform_(self.weight, -(self.chunk**-0.5), self.chunk**-0.5)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        if self.pad:
            e = nn.functional.pad(e, (0, self.pad))
        chunks = e.view(len(e), self.tokens, self.chunk)
        return torch.einsum("ntc,tcd->ntd", chunks, self.weight) + self.bias
