"""Small models with known answers for tests (imports torch: kept out of the pytest plugin)."""

import torch
from torch import nn


class LinearClassifier(nn.Module):
    """z = W flatten(x) + b with W and b as buffers: exact gradients and margins are known."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight.T + self.bias
