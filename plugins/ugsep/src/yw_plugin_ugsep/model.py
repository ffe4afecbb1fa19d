"""The RankMixer network, optionally UG-separated: tokens, mixer layers, mean pool, head.

With `user_tokens = c_u > 0` (UG-Sep), the user fields are tokenised on their own into c_u
tokens and the item fields (crosses included) into T - c_u, so no chunk straddles the two
sides; every layer masks item information out of the user tokens. The user tokens of every
layer then depend on the user alone, and `serve` computes them once per request and
broadcasts them to the candidates (UG-Sep Alg. 1). With c_u = 0 it is plain RankMixer: all
fields concatenated (user first) and cut into T tokens; `serve` embeds the user once and runs
every (user, candidate) pair through the layers.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from yw_core.interfaces import RecSchema
from yw_plugin_ugsep.mixer import MixerLayer
from yw_plugin_ugsep.tokenizer import ChunkProjection, FieldEmbedding

Features = Mapping[str, torch.Tensor]


class RankMixerNet(nn.Module):
    """Click logits from user and item features; `forward` for pairs, `serve` for one request."""

    def __init__(
        self,
        schema: RecSchema,
        *,
        tokens: int,
        width: int,
        layers: int,
        ffn_ratio: int,
        embedding_dim: int,
        head_hidden: int,
        user_tokens: int = 0,
        compensation: bool = False,
    ):
        super().__init__()
        if not 0 <= user_tokens < tokens:
            raise ValueError(f"user_tokens must be in [0, {tokens}), got {user_tokens}")
        self.schema, self.tokens, self.user_tokens = schema, tokens, user_tokens
        self.user_embedding = FieldEmbedding(schema.user_fields, embedding_dim)
        self.item_embedding = FieldEmbedding(schema.item_fields, embedding_dim)
        if user_tokens:
            self._check_chunks("user", self.user_embedding.width, user_tokens)
            self._check_chunks("item", self.item_embedding.width, tokens - user_tokens)
            self.user_projection = ChunkProjection(self.user_embedding.width, user_tokens, width)
            self.item_projection = ChunkProjection(
                self.item_embedding.width, tokens - user_tokens, width
            )
        else:
            joint = self.user_embedding.width + self.item_embedding.width
            self._check_chunks("all", joint, tokens)
            self.projection = ChunkProjection(joint, tokens, width)
        self.layers = nn.ModuleList(
            MixerLayer(tokens, width, ffn_ratio, user_tokens, compensation) for _ in range(layers)
        )
        self.head = nn.Sequential(
            nn.Linear(width, head_hidden), nn.GELU(), nn.Linear(head_hidden, 1)
        )

    @staticmethod
    def _check_chunks(side: str, width: int, tokens: int) -> None:
        if width < tokens:
            raise ValueError(
                f"the {side} fields embed to {width} values, fewer than their {tokens} tokens; "
                "use fewer tokens or a larger embedding_dim"
            )

    def _check(self, user: Features, items: Features) -> int:
        n = self.schema.check_features("user", user)
        m = self.schema.check_features("item", items)
        if n != m:
            raise ValueError(f"user features have {n} rows but item features {m}; pair them 1:1")
        return n

    def tokenize(self, user: Features, items: Features) -> torch.Tensor:
        """(N, T, D) input tokens of N (user, item) pairs; user tokens first under UG-Sep."""
        eu, ei = self.user_embedding(user), self.item_embedding(items)
        if self.user_tokens:
            return torch.cat([self.user_projection(eu), self.item_projection(ei)], 1)
        return self.projection(torch.cat([eu, ei], 1))

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output tokens (N, T, D) of every layer, from the input tokens x."""
        states = []
        for layer in self.layers:
            x = layer(x)
            states.append(x)
        return states

    def score(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.head(pooled).squeeze(-1)

    def layer_states(self, user: Features, items: Features) -> list[torch.Tensor]:
        """Every layer's tokens for N pairs, computed jointly (what the invariance tests read)."""
        self._check(user, items)
        return self.encode(self.tokenize(user, items))

    def forward(self, user: Features, items: Features) -> torch.Tensor:
        """Logits (N,) of N pairs, row i pairing user i with item i."""
        return self.score(self.layer_states(user, items)[-1].mean(1))

    def serve(self, user: Features, candidates: Features) -> torch.Tensor:
        """Logits (C,) of one user's C candidates; the user side is computed once."""
        n = self.schema.check_features("user", user)
        if n != 1:
            raise ValueError(f"serve() scores one request: user features need 1 row, got {n}")
        if any(len(v) == 0 for v in candidates.values()) and len(candidates):
            raise ValueError("serve() got an empty candidate list: pass at least one candidate")
        c = self.schema.check_features("item", candidates)
        eu, ei = self.user_embedding(user), self.item_embedding(candidates)
        if not self.user_tokens:
            x = self.projection(torch.cat([eu.expand(c, -1), ei], 1))
            return self.score(self.encode(x)[-1].mean(1))
        xu, xg = self.user_projection(eu), self.item_projection(ei)
        for layer in self.layers:
            xu, xg = layer.split(xu, xg)
        return self.score((xu.sum(1) + xg.sum(1)) / self.tokens)

    def w8a16(self) -> RankMixerNet:
        """A copy for serving whose per-token FFN weights are int8 (see yw_plugin_ugsep.quant)."""
        import copy

        from yw_plugin_ugsep.quant import quantize_model

        return quantize_model(copy.deepcopy(self)).eval()
