"""The gradient map: g(x) = ∂y(x)/∂θ_S with y(x) = logsumexp_c f_c(x), the negative free energy.

No label and no loss are involved (official code: `Energy_Model`). The model is called through
`torch.func.functional_call` with detached copies of its parameters, so its weights are never
changed and no autograd graph reaches them; the parameters outside the chosen set θ_S are
constants. The caller puts the model in eval mode (BatchNorm on its running statistics), which
also makes every sample independent of the others in its batch.

Vectors in parameter space are flat: a (p,) or (p, b) tensor whose rows are the chosen
parameters in `named_parameters()` order, parameter `name` at rows `slices[name]`. Three maps:

- `per_sample(x)`: {name: (N, *shape)}, every sample's gradient (vmap over grad);
- `jvp(x, T)`: Φ_raw T, (N, b), one forward-mode product per column of T (vmap over jvp);
- `vjp(x, W)`: Φ_rawᵀ W, (p, b), one backward product per column of W (vmap over the pullback),

where Φ_raw is the N x p matrix of the batch's raw gradients. The last two never form a
per-sample gradient: their memory is b x p plus b copies of the activations.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.func import functional_call, grad, jvp, vjp, vmap


class GradientMap:
    """Per-sample gradients of logsumexp(logits) over the parameters `names`, and their
    Jacobian-vector and vector-Jacobian products, for a model in eval mode."""

    def __init__(self, model: nn.Module, names: list[str]):
        named = dict(model.named_parameters())
        self.model = model
        self.names = list(names)
        self.params = {n: named[n].detach() for n in self.names}
        self.constants = {n: p.detach() for n, p in named.items() if n not in self.params}
        self.shapes = {n: p.shape for n, p in self.params.items()}
        self.slices: dict[str, slice] = {}
        start = 0
        for n, p in self.params.items():
            self.slices[n] = slice(start, start + p.numel())
            start += p.numel()
        self.p = start

    @property
    def device(self) -> torch.device:
        return next(iter(self.params.values())).device

    def output(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """y(x) = logsumexp of the logits, shape (N,), with `params` for θ_S."""
        logits = functional_call(self.model, {**self.constants, **params}, (x,))
        if logits.dim() != 2:
            raise ValueError(
                f"lowdim-grad needs a classifier with logits of shape (N, C), got "
                f"{tuple(logits.shape)}"
            )
        return torch.logsumexp(logits, dim=1)

    def per_sample(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """{name: (N, *shape)}: each sample's gradient of y, one vmap over the batch."""

        def single(params, xi):
            return self.output(params, xi.unsqueeze(0)).squeeze(0)

        with torch.enable_grad():
            grads = vmap(grad(single), in_dims=(None, 0))(self.params, x)
        return {n: g.detach() for n, g in grads.items()}

    def jvp(self, x: torch.Tensor, tangents: torch.Tensor) -> torch.Tensor:
        """Φ_raw T for T of shape (p, b): (N, b), the directional derivative of y(x_i) along
        each column of T, without per-sample gradients."""
        b = tangents.shape[1]
        blocks = {n: tangents[s].T.reshape(b, *self.shapes[n]) for n, s in self.slices.items()}

        def along(t):
            return jvp(lambda p: self.output(p, x), (self.params,), (t,))[1]

        with torch.enable_grad(), warnings.catch_warnings():
            # torch loads its forward-mode decompositions through torch.jit.script on the first
            # JVP, which warns that torch.jit.script is deprecated: nothing a caller can act on
            warnings.filterwarnings("ignore", "`torch.jit.script`", DeprecationWarning)
            return vmap(along)(blocks).detach().T

    def vjp(self, x: torch.Tensor, cotangents: torch.Tensor) -> torch.Tensor:
        """Φ_rawᵀ W for W of shape (N, b): (p, b), Σ_i W_ij g(x_i) for each column j, without
        per-sample gradients."""
        with torch.enable_grad():
            _, pullback = vjp(lambda p: self.output(p, x), self.params)
            (grads,) = vmap(pullback)(cotangents.T.contiguous())
        return self.flatten(grads).T

    def flatten(self, grads: dict[str, torch.Tensor]) -> torch.Tensor:
        """{name: (B, *shape)} -> (B, p) in row order (a full copy: for b x p blocks and tests,
        not for a batch of per-sample gradients of a large model)."""
        return torch.cat([grads[n].detach().reshape(grads[n].shape[0], -1) for n in self.names], 1)
