"""One RankMixer layer with UG-Sep's mask: parameter-free token mixing, per-token FFNs, post-LN.

Token mixing (RankMixer Eqs 3-5, H = T heads): token t is split into T heads of D/T; output
token h concatenates head h of every input token. UG-Sep's mask (Fig. 1): output tokens
h < c_u (the user tokens) keep only the heads of user tokens and zeros for the rest, so no item
information reaches the user side in any layer; item tokens are not masked and still absorb
the user side. The mask is a `torch.where`, not a product, so NaN item values cannot leak
(0·NaN is NaN). Information Compensation (Fig. 3, in the spec's corrected form): the masked
user mix, flattened, goes through a zero-initialised linear map and is added, gated, to the
item tokens: `G += σ(g(G)) ⊙ W_c·flatten(U)`. Nothing flows from G back to U.

`forward(x)` runs the layer on all T tokens jointly (training, and the reference for serving);
`split(xu, xg)` runs it with the user tokens of one request (1, c_u, D) and the item tokens of
its C candidates (C, c_g, D), computing the user side once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PerTokenFFN(nn.Module):
    """Token t's own two-layer MLP, D -> kD -> D with GELU (RankMixer Eqs 6-7)."""

    def __init__(self, tokens: int, dim: int, ratio: int):
        super().__init__()
        hidden = ratio * dim
        self.w1 = nn.Parameter(torch.empty(tokens, dim, hidden))
        self.b1 = nn.Parameter(torch.zeros(tokens, hidden))
        self.w2 = nn.Parameter(torch.empty(tokens, hidden, dim))
        self.b2 = nn.Parameter(torch.zeros(tokens, dim))
        nn.init.uniform_(self.w1, -(dim**-0.5), dim**-0.5)
        nn.init.uniform_(self.w2, -(hidden**-0.5), hidden**-0.5)

    def weights(self, tokens: slice, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(W1, W2) of the tokens `tokens`, as the matmuls take them."""
        return self.w1[tokens], self.w2[tokens]

    def forward(self, x: torch.Tensor, tokens: slice = slice(None)) -> torch.Tensor:
        """x (N, t, D) holds the tokens `tokens` of the layer; each goes through its own MLP."""
        w1, w2 = self.weights(tokens, x.dtype)
        h = F.gelu(torch.einsum("ntd,tdh->nth", x, w1) + self.b1[tokens])
        return torch.einsum("nth,thd->ntd", h, w2) + self.b2[tokens]


def token_mix(x: torch.Tensor) -> torch.Tensor:
    """(N, T, D) -> (N, T, D): output token h is head h of every input token, concatenated."""
    n, t, d = x.shape
    return x.view(n, t, t, d // t).transpose(1, 2).reshape(n, t, d)


class MixerLayer(nn.Module):
    """`S = LN(mix(X) + X)`, `X' = LN(PFFN(S) + S)`, with the UG mask when `user_tokens` > 0."""

    def __init__(self, tokens: int, dim: int, ratio: int, user_tokens: int, compensation: bool):
        super().__init__()
        if dim % tokens:
            raise ValueError(f"width {dim} must be a multiple of tokens {tokens} (H = T heads)")
        self.tokens, self.dim, self.user_tokens = tokens, dim, user_tokens
        self.norm_mix = nn.LayerNorm(dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.ffn = PerTokenFFN(tokens, dim, ratio)
        self.compensate = None
        if compensation:
            if not user_tokens:
                raise ValueError("information compensation needs user tokens (user_tokens > 0)")
            item_tokens = tokens - user_tokens
            self.compensate = nn.Linear(user_tokens * dim, item_tokens * dim)
            nn.init.zeros_(self.compensate.weight)
            nn.init.zeros_(self.compensate.bias)
            self.gate = nn.Linear(dim, dim)
        head = dim // tokens
        keep = torch.ones(tokens, tokens, dtype=torch.bool)  # [output token h, input token t]
        keep[:user_tokens, user_tokens:] = False
        self.register_buffer("keep", keep.repeat_interleave(head, dim=1), persistent=False)

    def _compensated(self, mixed_user: torch.Tensor, mixed_item: torch.Tensor) -> torch.Tensor:
        if self.compensate is None:
            return mixed_item
        carried = self.compensate(mixed_user.flatten(1)).view(len(mixed_user), -1, self.dim)
        return mixed_item + torch.sigmoid(self.gate(mixed_item)) * carried

    def _finish(self, mixed: torch.Tensor, x: torch.Tensor, tokens: slice) -> torch.Tensor:
        s = self.norm_mix(mixed + x)
        return self.norm_ffn(self.ffn(s, tokens) + s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = token_mix(x)
        u = self.user_tokens
        if u:
            mixed = torch.where(self.keep, mixed, torch.zeros((), dtype=mixed.dtype))
            mixed = torch.cat([mixed[:, :u], self._compensated(mixed[:, :u], mixed[:, u:])], 1)
        return self._finish(mixed, x, slice(None))

    def split(self, xu: torch.Tensor, xg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer on one request: xu (1, c_u, D) once, xg (C, c_g, D); returns both outputs."""
        u, t, head = self.user_tokens, self.tokens, self.dim // self.tokens
        hu = xu.view(1, u, t, head)  # [., input token, head, .]
        hg = xg.view(len(xg), t - u, t, head)
        own = hu[:, :, :u].transpose(1, 2).reshape(1, u, u * head)
        mixed_u = torch.cat([own, xu.new_zeros(1, u, (t - u) * head)], 2)
        mixed_g = torch.cat([hu[:, :, u:].expand(len(xg), -1, -1, -1), hg[:, :, u:]], 1)
        mixed_g = mixed_g.transpose(1, 2).reshape(len(xg), t - u, self.dim)
        mixed_g = self._compensated(mixed_u, mixed_g)  # W_c·U once, broadcast to C
        return self._finish(mixed_u, xu, slice(0, u)), self._finish(mixed_g, xg, slice(u, t))
