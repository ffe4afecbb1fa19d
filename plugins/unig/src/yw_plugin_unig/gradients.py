"""UniG's objective and its gradient with respect to the feature multiplier p.

Notation, for N rows (query rows, then any combine rows): features f (N, d), multiplier p (N, d),
a linear head z = (f * p) W^T + b with W (C, d), pseudo-labels y, s = softmax(z), and the batch
mean cross-entropy CE = mean_i -log s_i[y_i] (the reference uses nn.CrossEntropyLoss's mean).

- feature gradient:  g = dCE/df = ((s - onehot(y)) / N) W * p      (chain rule through f * p)
- normalisation:     g_hat = (g - lo) / (hi - lo), lo and hi the scalar min and max of g over the
                     whole batch, taken at a call's first iteration and then held fixed
- objective:         L = sum_j ||g_hat_j - g_hat_{j+1}||_2 over consecutive rows

`pair_loss_grad` returns dL/dp either in closed form (`reference=False`: four (N, d) x (d, C)
products, no autograd) or by double backward through the head with `create_graph=True`
(`reference=True`, the reference implementation's way); the tests check that they agree.

Closed form of dL/dp. With A = (s - onehot(y)) W / N, g = A * p; let G = dL/dg, which is
(u_j - u_{j-1}) / (hi - lo) for row j, u_j the unit vector of g_hat_j - g_hat_{j+1} (0 where
that difference is 0, and u_0 = u_N = 0). Then
    dL/dp = G * A + (dZ W) * f,   dZ = s * (Q - rowsum(s * Q)) / N,   Q = (G * p) W^T,
the first term through the explicit p in g, the second through the softmax in A.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def feature_gradient(f, p, weight, bias, target) -> torch.Tensor:
    """g = dCE(head(f * p), target)/df in closed form: ((softmax - onehot) / N) W * p."""
    s = F.linear(f * p, weight, bias).softmax(1)
    e = s.scatter_add(1, target[:, None], -torch.ones_like(s[:, :1])) / len(f)
    return (e @ weight) * p


def bounds_of(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The scalar (min, max) of g over the whole batch, detached: the normalisation's constants."""
    lo, hi = torch.aminmax(g.detach())
    return lo, hi


def _scale(bounds) -> torch.Tensor:
    lo, hi = bounds
    # A constant g (hi == lo) carries no direction; the reference divides 0 by 0 there (NaN).
    # Clamping keeps g_hat at 0, so L and its gradient are 0 and only weight decay moves p.
    return (hi - lo).clamp_min(torch.finfo(hi.dtype).tiny)


def pair_loss(g: torch.Tensor, bounds) -> torch.Tensor:
    """L = sum_j ||g_hat_j - g_hat_{j+1}||_2, g_hat = (g - lo) / (hi - lo) with fixed bounds."""
    g_hat = (g - bounds[0]) / _scale(bounds)
    return (g_hat[:-1] - g_hat[1:]).norm(dim=1).sum()


def pair_loss_grad(f, p, weight, bias, target, bounds=None, reference: bool = False):
    """(dL/dp, bounds): the objective's gradient at p; `bounds=None` takes them from this g.

    All inputs are treated as constants except p; nothing here touches the model.
    """
    if reference:
        return _autograd(f, p, weight, bias, target, bounds)
    n = len(f)
    s = F.linear(f * p, weight, bias).softmax(1)
    e = s.scatter_add(1, target[:, None], -torch.ones_like(s[:, :1])) / n
    a = e @ weight  # dCE/d(f * p)
    g = a * p  # dCE/df
    if bounds is None:
        bounds = bounds_of(g)
    scale = _scale(bounds)
    diff = ((g - bounds[0]) / scale).diff(dim=0)  # g_hat_{j+1} - g_hat_j
    # unit vectors of the differences; a zero difference (norm 0) stays 0, as in autograd's norm
    u = diff / diff.norm(dim=1, keepdim=True).clamp_min(torch.finfo(diff.dtype).tiny)
    # L = sum_j ||diff_j||: row j gets -u_j (as the left end of pair j) and +u_{j-1} (right end)
    grad_g = (F.pad(u, (0, 0, 1, 0)) - F.pad(u, (0, 0, 0, 1))) / scale
    q = (grad_g * p) @ weight.T  # dL/de
    dz = s * (q - (s * q).sum(1, keepdim=True)) / n
    return grad_g * a + (dz @ weight) * f, bounds


def _autograd(f, p, weight, bias, target, bounds):
    """dL/dp by double backward: g built with create_graph=True, then L differentiated in p."""
    with torch.enable_grad():
        f = f.detach().requires_grad_(True)
        p = p.detach().requires_grad_(True)
        b = None if bias is None else bias.detach()
        ce = F.cross_entropy(F.linear(f * p, weight.detach(), b), target)
        (g,) = torch.autograd.grad(ce, f, create_graph=True)
        if bounds is None:
            bounds = bounds_of(g)
        (grad,) = torch.autograd.grad(pair_loss(g, bounds), p)
    return grad, bounds


def sgd_step(p, grad, buf, lr: float, momentum: float, weight_decay: float):
    """One torch.optim.SGD step (no dampening, no Nesterov) on p, in place; returns the buffer.

    d = grad + weight_decay * p;  buf = momentum * buf + d (buf = d when None);  p -= lr * buf.
    """
    d = grad + weight_decay * p if weight_decay else grad
    buf = d.clone() if buf is None else buf.mul_(momentum).add_(d)
    p.sub_(lr * buf)
    return buf
