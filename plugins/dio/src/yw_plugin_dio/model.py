"""The model DIO returns: a shared backbone and orthogonal paths, one random path per call."""

from __future__ import annotations

import torch
from torch import nn

from yw_plugin_dio.heads import OrthoHeads


class DIONet(nn.Module):
    """`features` then one of `heads`' L paths: a random path per forward call by default.

    `mode` is "random" (the paper's inference: one path drawn per call, for the whole batch) or
    a path index. `forward(x, path=...)` overrides the mode for one call, and `paths(x)` gives
    every path's logits. The draws come from `generator` (a CPU generator, so picking a path
    never waits for the device); `last_path` is the path the last call used.
    """

    def __init__(self, features: nn.Module, heads: OrthoHeads, seed: int = 0):
        super().__init__()
        self.features = features
        self.heads = heads
        self.generator = torch.Generator().manual_seed(int(seed))
        self._mode: int | str = "random"
        self.last_path: int | None = None

    @property
    def mode(self) -> int | str:
        """ "random" or a fixed path index in [0, L)."""
        return self._mode

    @mode.setter
    def mode(self, value: int | str) -> None:
        self._mode = self._check_path(value, allow_all=False)

    def _check_path(self, path, *, allow_all: bool):
        names = ("random", "all") if allow_all else ("random",)
        if path in names:
            return path
        L = self.heads.num_paths
        if isinstance(path, bool) or not isinstance(path, int) or not 0 <= path < L:
            choices = " or ".join(repr(n) for n in names)
            raise ValueError(f"path must be {choices} or a path index in [0, {L}), got {path!r}")
        return path

    def forward(self, x: torch.Tensor, path: int | str | None = None) -> torch.Tensor:
        """Logits (N, C) through the mode's path, or through `path` ("random", "all" gives
        (L, N, C), or an index) for this call only."""
        path = self._mode if path is None else self._check_path(path, allow_all=True)
        if path == "random":
            path = int(torch.randint(self.heads.num_paths, (1,), generator=self.generator))
        if path != "all":
            self.last_path = path
        return self.heads(self.features(x), path)

    def paths(self, x: torch.Tensor) -> torch.Tensor:
        """Every path's logits, (L, N, C): `paths(x)[i]` is path i's."""
        return self(x, path="all")
