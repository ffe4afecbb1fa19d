"""LowDimGrad: OOD detection on low-dimensional parameter gradients (Wu et al., TPAMI 2024).

`fit` reads the in-distribution data once (a seeded subset of `n_fit` inputs when set), takes
the gradient g(x) of logsumexp(logits) over the chosen parameters, measures the NFK
normalisation (z̄, s) on it, finds the subspace V (top-k principal directions of the
normalised gradients, or one average gradient per class), projects every fitting input to
h(x) = Vᵀφ(x) ∈ R^k and fits the scorer on those features (a KNN bank, or a trained linear
probe). `score` projects the inputs the same way and scores them; `transform` gives h itself.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from yw_core.interfaces import (
    Capabilities,
    MethodConfig,
    OODScorer,
    Paper,
    Variant,
    iter_batches,
)
from yw_core.interfaces.ood_scorer import check_inputs
from yw_core.models import eval_mode, split_parts
from yw_core.runtime import Runtime
from yw_plugin_lowdim_grad.ensemble import (
    NEEDS_SPLIT,
    ForwardScorer,
    Standardiser,
    holdout_split,
)
from yw_plugin_lowdim_grad.features import project
from yw_plugin_lowdim_grad.gradients import GradientMap
from yw_plugin_lowdim_grad.normalise import Normalisation
from yw_plugin_lowdim_grad.operator import FitJacobian
from yw_plugin_lowdim_grad.params import select_parameters
from yw_plugin_lowdim_grad.probe import PROBE_SCORERS, FeatureScorer
from yw_plugin_lowdim_grad.subspace import avg_grad_basis, explicit_pca_basis, pca_basis

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class LowDimGrad(OODScorer):
    """Scores inputs by their parameter gradient projected onto a k-dim subspace of
    in-distribution gradients (higher = more in-distribution)."""

    name = "lowdim-grad"
    summary = (
        "Low-dimensional gradient OOD detection: per-input parameter gradients projected onto "
        "a k-dim subspace of ID gradients, scored by KNN or a linear probe"
    )
    paper = Paper(
        title="Low-Dimensional Gradient Helps Out-of-Distribution Detection",
        authors=("Wu", "Li", "Cheng", "Yang", "Huang"),
        year=2024,
        venue="TPAMI",
        arxiv_id="2310.17163",
        code_url="https://github.com/Wuyingwen/Low-dimensional-Gradient-Helps-OOD-Detection",
    )
    status = "experimental"
    # float64 statistics (z̄, L, Mahalanobis), which MPS does not support
    capabilities = Capabilities(devices=("cpu", "cuda"), post_hoc=True, deterministic=True)
    variants = {
        "lowdim-grad+fwd": Variant(
            label="forward+backward ensemble, a=1 (an inference: the paper's formula is not "
            "published)",
            overrides={"forward_weight": 1.0},
        )
    }

    class Config(MethodConfig):
        params: Literal["auto", "all"] | tuple[str, ...] = Field(
            "auto",
            description="parameters the gradient is taken over: 'all' (the official code), "
            "'auto' (all when the model has <= 5,000,000 values, else the head plus the last "
            "parameterised child of model.features; an inference, the full basis of a large "
            "model does not fit in memory) or a tuple of parameter-name prefixes",
        )
        mode: Literal["nfk", "ntk"] = Field(
            "nfk",
            description="gradient normalisation: 'nfk' s*(g - mean g), s = 1/sqrt(diagonal "
            "variance) (the paper's neural Fisher kernel; the official runs) or 'ntk' raw g",
        )
        basis: Literal["pca", "avg_grad"] = Field(
            "pca",
            description="the subspace: 'pca' top-k principal directions by block power "
            "iteration (the paper's CIFAR-10 setting) or 'avg_grad' one unit-norm mean "
            "normalised gradient per class, k = the number of classes (its ImageNet setting; "
            "needs labels)",
        )
        k: int = Field(
            200,
            ge=1,
            le=100_000,
            description="subspace dimension for basis='pca' (200: the official CIFAR-10 "
            "value); at most the number of fitting inputs",
        )
        block_size: int = Field(
            5,
            ge=1,
            le=10_000,
            description="columns found together per power-iteration block (5: the official "
            "interval_k)",
        )
        solver: Literal["auto", "power", "explicit"] = Field(
            "auto",
            description="how basis='pca' is found: 'power' the paper's block power iteration "
            "with JVPs/VJPs only (Φ never formed; for large models), 'explicit' the exact top-k "
            "from Φ held in memory (n x p float32) and its n x n Gram matrix, 'auto' explicit "
            "when n x p <= explicit_limit, else power (ours: the same span, far fewer passes)",
        )
        explicit_limit: int = Field(
            2**27,
            ge=0,
            le=2**40,
            description="largest n x p that solver='auto' holds in memory (2**27 floats: 512 MiB)",
        )
        power_iterations: int = Field(
            10,
            ge=0,
            le=1_000,
            description="power iterations per block (10: the official value)",
        )
        n_fit: int | None = Field(
            None,
            ge=1,
            le=100_000_000,
            description="fit on a seeded random subset of this many in-distribution inputs "
            "(the official code uses 50,000, CIFAR-10's whole training set); None: all of them",
        )
        chunk_size: int = Field(
            32,
            ge=1,
            le=1_000_000,
            description="inputs whose per-sample gradients are held at once (memory: "
            "chunk_size x parameters); ours, the official code takes a whole batch",
        )
        batch_size: int = Field(
            128,
            ge=1,
            le=1_000_000,
            description="fitting inputs per JVP/VJP call of the power iteration and the mean "
            "gradient (memory: block_size x parameters plus block_size x a batch's "
            "activations; 128: the official loader's default)",
        )
        basis_dtype: Literal["float32", "float16", "bfloat16"] = Field(
            "float32",
            description="storage dtype of V (p x k); float16/bfloat16 halve its memory for "
            "large models on a GPU (products in that dtype, sums in float32)",
        )
        scorer: Literal["knn", "msp", "energy", "odin", "react", "mahalanobis", "gradnorm"] = Field(
            "knn",
            description="the score on h: 'knn' (the paper's headline) or a score of a "
            "linear probe trained on h (needs labels)",
        )
        knn_k: int = Field(
            5,
            ge=1,
            le=1_000_000,
            description="KNN's neighbour (5: the official CIFAR-10 value; 10 on ImageNet)",
        )
        probe_epochs: int = Field(
            10, ge=1, le=100_000, description="probe training epochs (10: the official value)"
        )
        probe_lr: float = Field(
            0.1, gt=0, le=100, description="probe SGD learning rate (0.1: the official default)"
        )
        probe_momentum: float = Field(
            0.9, ge=0, lt=1, description="probe SGD momentum (0.9: the official default)"
        )
        probe_weight_decay: float = Field(
            5e-4, ge=0, le=1, description="probe SGD weight decay (5e-4: the official default)"
        )
        probe_batch_size: int = Field(
            16,
            ge=2,
            le=1_000_000,
            description="probe training batch (16: the official README's CIFAR-10 run)",
        )
        odin_temperature: float = Field(
            100.0, gt=0, le=1e6, description="ODIN temperature (100: the official value)"
        )
        odin_eps: float = Field(
            50.0,
            ge=0,
            le=1e6,
            description="ODIN step on h, in h's units (50: the official CIFAR-10 value; "
            "0.005 on ImageNet)",
        )
        react_percentile: float = Field(
            90.0,
            gt=0,
            le=100,
            description="ReAct clips at this percentile of the fit features' dims >= "
            "react_start_dim (90: official CIFAR-10; the official code takes ID test features)",
        )
        react_start_dim: int = Field(
            10,
            ge=0,
            le=1_000_000,
            description="ReAct clips h's dimensions from this one on (10: official CIFAR-10)",
        )
        forward_weight: float = Field(
            0.0,
            ge=0,
            le=1_000,
            description="a in z(s_grad) + a*z(s_fwd), the forward+backward ensemble; 0: off. "
            "An inference: the paper's formula is not published and the official --a is "
            "never read",
        )
        forward_odin_eps: float = Field(
            0.0014,
            ge=0,
            le=1,
            description="pixel step of the forward side's ODIN when forward_weight > 0 "
            "(0.0014: ODIN's CIFAR value; an inference)",
        )
        holdout_fraction: float = Field(
            0.1,
            gt=0,
            lt=1,
            description="share of the fit data held out to standardise both scores when "
            "forward_weight > 0 (an inference; at least 2 inputs)",
        )

        progress: bool = Field(
            False, description="a tqdm bar over the power iteration's blocks (the long loop)"
        )

        @field_validator("params", mode="before")
        @classmethod
        def _prefixes(cls, value: Any) -> Any:
            if isinstance(value, str) and value not in ("auto", "all"):
                raise ValueError(
                    f"params must be 'auto', 'all' or a tuple of parameter-name prefixes such "
                    f"as ('head',), got {value!r}"
                )
            if isinstance(value, (list, tuple)):
                if not value or not all(isinstance(p, str) and p.strip(".") for p in value):
                    raise ValueError(
                        f"params prefixes must be a non-empty tuple of non-empty names, got "
                        f"{value!r}"
                    )
                return tuple(value)
            return value

    _model: nn.Module | None = None

    # ---- fit ------------------------------------------------------------------------------

    def _needs_labels(self) -> str | None:
        c = self.config
        if c.basis == "avg_grad":
            return "basis='avg_grad'"
        if c.scorer in PROBE_SCORERS:
            return f"scorer={c.scorer!r} (a probe trained on the labels)"
        return None

    def fit(self, model: nn.Module, id_data: Any, *, runtime: Runtime) -> LowDimGrad:
        """Learn z̄, s, V and the scorer from in-distribution data (a Dataset of (x, y), a
        DataLoader or a tensor of inputs; labels needed by basis='avg_grad' and the probe
        scorers); returns self."""
        self._model = None  # a failed refit leaves the scorer unfitted, not half-fitted
        c = self.config
        x, y = self._read(id_data)
        generator = runtime.generator(device="cpu")
        if c.n_fit is not None and c.n_fit < len(x):
            keep = torch.randperm(len(x), generator=generator)[: c.n_fit].sort().values
            x, y = x[keep], None if y is None else y[keep]
        held_x = None
        if c.forward_weight > 0:
            if c.scorer in NEEDS_SPLIT:
                split_parts(model, "lowdim-grad's forward ensemble")
            fit_idx, held_idx = holdout_split(len(x), c.holdout_fraction, generator)
            held_x = x[held_idx]
            x, y = x[fit_idx], None if y is None else y[fit_idx]
        names = select_parameters(model, c.params)
        with eval_mode(model):
            gmap = GradientMap(model, names)
            norm = Normalisation.fit(
                gmap, x, mode=c.mode, chunk_size=c.chunk_size, batch_size=c.batch_size
            )
            phi = FitJacobian(gmap, norm, x, c.batch_size)
            if c.basis == "pca":
                explicit = c.solver == "explicit" or (
                    c.solver == "auto" and len(x) * gmap.p <= c.explicit_limit
                )
                self.solver = "explicit" if explicit else "power"
                if explicit:
                    basis, self.singular_values = explicit_pca_basis(
                        gmap, norm, x, c.k, c.chunk_size
                    )
                else:
                    basis, self.singular_values = pca_basis(
                        phi,
                        c.k,
                        block_size=c.block_size,
                        iterations=c.power_iterations,
                        generator=generator,
                        progress=c.progress,
                    )
                self.classes = None
            else:
                basis, self.classes = avg_grad_basis(phi, y)
                self.solver = None
                self.singular_values = None
            basis = basis.to(DTYPES[c.basis_dtype])
            device_y = None if y is None else y.to(gmap.device)
            features = project(gmap, norm, basis, x, c.chunk_size)
            head = FeatureScorer(c.scorer, c).fit(features, device_y, generator)
            forward = standardise = None
            if c.forward_weight > 0:
                forward = ForwardScorer(c.scorer, c).fit(
                    model, runtime.to(x), device_y, c.batch_size
                )
                held = runtime.to(held_x)
                grad_scores = head.score(project(gmap, norm, basis, held, c.chunk_size))
                standardise = (
                    Standardiser(grad_scores),
                    Standardiser(forward.score(model, held)),
                )
        self.param_names, self.normalisation, self.basis = names, norm, basis
        self._gmap, self._head, self._forward, self._standardise = gmap, head, forward, standardise
        self._model, self._runtime = model, runtime
        return self

    def _read(self, id_data: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """All inputs (and labels, None when the data has none and none are needed)."""
        needs = self._needs_labels()
        xs, ys = [], []
        for x, y in iter_batches(id_data):
            if needs and y is None:
                raise ValueError(
                    f"lowdim-grad with {needs} needs labels: pass a Dataset or DataLoader of "
                    "(x, y), not a bare tensor of inputs"
                )
            xs.append(x)
            ys.append(y)
        if not needs:
            return torch.cat(xs), None
        y = torch.cat([torch.as_tensor(v).reshape(-1) for v in ys]).cpu()
        if y.is_floating_point() and not torch.equal(y, y.round()):
            raise ValueError("lowdim-grad: labels must be integer class indices")
        y = y.long()
        if (y < 0).any():
            raise ValueError(f"lowdim-grad: labels must be >= 0, got {int(y.min())}")
        return torch.cat(xs), y

    # ---- score ----------------------------------------------------------------------------

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        if self._model is None:
            raise RuntimeError(f"{self.name}: call fit() before score() or transform()")
        check_inputs(self.name, x)
        return self._runtime.to(x)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """h(x) = Vᵀφ(x), shape (N, k), float32 on x's device."""
        inputs = self._inputs(x)
        with eval_mode(self._model):
            h = project(self._gmap, self.normalisation, self.basis, inputs, self.config.chunk_size)
        return h.to(x.device)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of shape (N,) on x's device, higher = more in-distribution."""
        inputs = self._inputs(x)
        if len(inputs) == 0:
            return torch.empty(0, device=x.device)
        c = self.config
        with eval_mode(self._model):
            h = project(self._gmap, self.normalisation, self.basis, inputs, c.chunk_size)
            scores = self._head.score(h)
            if self._forward is not None:
                z_grad, z_fwd = self._standardise
                forward = self._forward.score(self._model, inputs)
                scores = z_grad(scores) + c.forward_weight * z_fwd(forward)
        return scores.detach().float().to(x.device)
