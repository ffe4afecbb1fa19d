"""The paper's two attention fusers: patents -> IPC code (type 1) and two codes -> pair (type 2).

Type 1 weighs an IPC code's patent embeddings e_p by softmax_p(w . tanh(W e_p + b)) (Linear,
tanh, a bias-free Linear to a scalar, softmax over the code's patents) and sums them. Type 2
projects the two codes' vectors with bias-free U and V, takes the mean of their outer product
(Uu)(Vv)^T, and maps [Uu, Vv, mean] through Linear+ReLU and Linear to the pair's vector; it is
averaged over both orders, so that (x, y) and (y, x) give the same vector.

The paper states no training objective for either fuser [I]: we train both jointly through an
auxiliary link head (one Linear from the pair vector to a logit) with class-weighted binary
cross-entropy on the convergence labels of an earlier window than the ensemble's, so the fused
features the ensemble sees were not fitted to its own labels. The pair vector and the head's
logit become text-block features.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Fuser(nn.Module):
    """Type-1 attention pooling and the type-2 pair fuser, with the auxiliary link head."""

    def __init__(self, dim: int, hidden: int = 16, out: int = 4):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1, False))
        self.u = nn.Linear(dim, hidden, bias=False)
        self.v = nn.Linear(dim, hidden, bias=False)
        self.pair = nn.Sequential(
            nn.Linear(2 * hidden + 1, hidden), nn.ReLU(), nn.Linear(hidden, out)
        )
        self.head = nn.Linear(out, 1)

    def pool(self, patents: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(codes, dim) code vectors from (codes, P, dim) patent embeddings (mask: real ones)."""
        logits = self.score(patents).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(logits, dim=1).nan_to_num(0.0)  # a code with no patent: zeros
        return (weights.unsqueeze(-1) * patents).sum(1)

    def forward(self, patents, mask, pairs) -> tuple[torch.Tensor, torch.Tensor]:
        """(pair vectors (m, out), link logits (m,)) for `pairs` (m, 2) of code indices."""
        codes = self.pool(patents, mask)
        vector = (
            self._one_way(codes, pairs[:, 0], pairs[:, 1])
            + self._one_way(codes, pairs[:, 1], pairs[:, 0])
        ) / 2
        return vector, self.head(vector).squeeze(-1)

    def _one_way(self, codes, x, y) -> torch.Tensor:
        ux, vy = self.u(codes[x]), self.v(codes[y])
        outer = (ux.unsqueeze(2) * vy.unsqueeze(1)).mean(dim=(1, 2))
        return self.pair(torch.cat([ux, vy, outer.unsqueeze(1)], dim=1))


def code_patents(
    embeddings: np.ndarray, members: list[np.ndarray], limit: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes, P, dim) padded patent embeddings per code and its mask; `members[c]` indexes the
    rows of code c, newest last, and at most the `limit` newest are kept."""
    width = max(1, min(limit, max((len(m) for m in members), default=1)))
    patents = torch.zeros(len(members), width, embeddings.shape[1])
    mask = torch.zeros(len(members), width, dtype=torch.bool)
    for c, rows in enumerate(members):
        rows = rows[-width:]
        patents[c, : len(rows)] = torch.as_tensor(embeddings[rows], dtype=torch.float32)
        mask[c, : len(rows)] = True
    return patents, mask


def train_fuser(
    patents: torch.Tensor,
    mask: torch.Tensor,
    pairs: np.ndarray,
    labels: np.ndarray,
    *,
    hidden: int = 16,
    out: int = 4,
    epochs: int = 200,
    lr: float = 1e-2,
    seed: int = 0,
) -> Fuser:
    """A Fuser fitted full-batch with Adam on class-weighted BCE of its link head."""
    labels = torch.as_tensor(labels, dtype=torch.float32)
    positives = float(labels.sum())
    if positives == 0 or positives == len(labels):
        raise ValueError("the fuser needs converging and non-converging pairs to learn from")
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the global seed
        torch.manual_seed(seed)
        fuser = Fuser(patents.shape[-1], hidden, out)
    pairs_t = torch.as_tensor(pairs, dtype=torch.long)
    weight = torch.tensor((len(labels) - positives) / positives)
    optimizer = torch.optim.Adam(fuser.parameters(), lr=lr, weight_decay=1e-3)
    for _ in range(epochs):
        _, logits = fuser(patents, mask, pairs_t)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, labels, pos_weight=weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return fuser.eval()


@torch.no_grad()
def fused_features(fuser: Fuser, patents, mask, pairs: np.ndarray) -> dict[str, np.ndarray]:
    """The pair vector's components (`fused_0`, ...) and the link head's logit (`fused_logit`)."""
    vector, logit = fuser(patents, mask, torch.as_tensor(pairs, dtype=torch.long))
    out = {f"fused_{i}": vector[:, i].double().numpy() for i in range(vector.shape[1])}
    out["fused_logit"] = logit.double().numpy()
    return out
