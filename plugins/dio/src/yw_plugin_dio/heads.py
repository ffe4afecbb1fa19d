"""DIO's L bias-free linear paths on one embedding, with the orthogonality and margin losses."""

from __future__ import annotations

import math

import torch
from torch import nn


class OrthoHeads(nn.Module):
    """L bias-free linear heads W_i (C x d) on a shared embedding: DIO's "paths".

    The weights are one (L, C, d) parameter, so all paths run as one einsum. Each path is
    initialised like `nn.Linear(d, C, bias=False)` (the reference's heads), from `generator`.
    """

    def __init__(self, d: int, C: int, L: int, generator: torch.Generator | None = None):
        super().__init__()
        if L < 1 or d < 1 or C < 2:
            raise ValueError(f"OrthoHeads needs d >= 1, C >= 2 and L >= 1, got {d}, {C}, {L}")
        weight = torch.empty(L, C, d)
        for w in weight:
            nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=generator)
        self.weight = nn.Parameter(weight)

    @property
    def num_paths(self) -> int:
        """L, the number of paths."""
        return self.weight.shape[0]

    def forward(self, e: torch.Tensor, path: int | str = "all") -> torch.Tensor:
        """Logits of every path, (L, N, C), for path="all"; of path i, (N, C), for an int."""
        if path == "all":
            return torch.einsum("lcd,nd->lnc", self.weight, e)
        return e @ self.weight[path].T

    def ortho_loss(self) -> torch.Tensor:
        """L_o = sum_{i<j} <W_i, W_j>_F^2, unnormalised as in the reference code."""
        flat = self.weight.flatten(1)
        gram = flat @ flat.T
        return gram.triu(diagonal=1).square().sum()

    def margin_loss(self, logits: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
        """L_d = sum over paths of the mean, over the samples that path classifies correctly,
        of max(0, tau - min_{k != y} |z_y - z_k| / ||w_k||) (the reference's ||w_k||)."""
        return margin_loss(logits, y, self.weight, tau)

    @torch.no_grad()
    def pairwise_cosine(self) -> torch.Tensor:
        """|cos(W_i, W_j)| of the flattened paths as an (L, L) matrix: the diversity DIO seeks."""
        flat = nn.functional.normalize(self.weight.flatten(1), dim=1)
        return (flat @ flat.T).abs()


def margin_loss(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, tau: float):
    """DIO's margin loss for (L, N, C) logits of paths with (L, C, d) weights; see
    `OrthoHeads.margin_loss`. A path with no correctly classified sample adds 0."""
    norms = weight.norm(dim=2).unsqueeze(1)  # (L, 1, C)
    true = logits.gather(2, y.view(1, -1, 1).expand(logits.shape[0], -1, 1))  # (L, N, 1)
    distance = (true - logits).abs() / norms
    is_label = torch.zeros_like(logits, dtype=torch.bool)
    is_label[:, torch.arange(len(y), device=y.device), y] = True
    nearest = distance.masked_fill(is_label, math.inf).amin(dim=2)  # (L, N)
    correct = (logits.argmax(dim=2) == y).to(logits.dtype)
    hinge = torch.relu(tau - nearest) * correct
    return (hinge.sum(dim=1) / correct.sum(dim=1).clamp(min=1)).sum()
