"""ER-LAS and MIR-LAS: replay with a logit adjusted softmax (Huang et al., TMLR 2024, arXiv
2311.06460; official code github.com/K1nght/online_CL_logit_adjusted_softmax).

Each step trains on cat = stream batch ∪ replay batch (no replay while the buffer is empty).
The label counts of cat are pushed to a sliding window of `window` steps; the loss is
CE(f(cat) + τ·log(N_t + eps), y), one step of the host's optimizer. ER-LAS draws the replay
batch uniformly from a reservoir buffer and reservoir-adds the stream batch after the step;
MIR-LAS retrieves it by MIR (the `minibatch_size` of `mir_candidates` random buffer samples
whose plain cross-entropy rises most under a virtual SGD step on the stream batch). Inference
uses the raw logits.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from yw_core.continual import ReservoirBuffer, mir_retrieve
from yw_core.interfaces import Capabilities, ContinualLearner, MethodConfig, Paper, StreamBatch
from yw_core.runtime import Runtime
from yw_plugin_las.prior import LogitAdjuster

PAPER = Paper(
    title="Online Continual Learning via Logit Adjusted Softmax",
    authors=("Huang", "Li", "Yuan", "Wu", "Huang"),
    year=2024,
    venue="TMLR",
    arxiv_id="2311.06460",
    code_url="https://github.com/K1nght/online_CL_logit_adjusted_softmax",
)


class LASConfig(MethodConfig):
    """What ER-LAS and MIR-LAS share; defaults from the official main.sh and utils/args.py."""

    minibatch_size: int = Field(
        32,
        ge=1,
        le=1_000_000,
        description="replay samples per step (official --minibatch_size 32; the stream batch "
        "size, 32 in the paper, is the host's)",
    )
    buffer_size: int = Field(
        500,
        ge=1,
        le=100_000_000,
        description="reservoir buffer capacity (0.5k: the paper's CIFAR-10 setting; 2k on "
        "CIFAR-100 / TinyImageNet, 20k on ImageNet; benchmarks set it per row)",
    )
    tau: float = Field(
        1.0,
        ge=0,
        le=100,
        description="τ, the weight of the log prior (official --tau 1; 0: plain replay)",
    )
    window: int = Field(
        1,
        ge=1,
        le=1_000_000,
        description="steps of label counts in the prior (official --window_length 1; the "
        "paper uses 10 on ImageNet)",
    )
    eps: float = Field(
        1e-50,
        ge=0,
        le=1,
        description="added to the counts before the log (official 1e-50, which underflows to "
        "0 in float32: classes absent from the window get -inf, an exact mask)",
    )


class _LASBase(ContinualLearner):
    """The shared step: replay, window prior, adjusted cross-entropy, one optimizer step."""

    paper = PAPER
    status = "experimental"
    capabilities = Capabilities(training=True, deterministic=True)
    bench_fields = {"buffer_size": "buffer_size", "minibatch_size": "minibatch_size"}
    Config = LASConfig

    def __init__(self, config=None, /, **overrides):
        super().__init__(config, **overrides)
        self.model: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.runtime: Runtime | None = None
        self.num_classes: int | None = None
        self.buffer: ReservoirBuffer | None = None
        self.adjuster: LogitAdjuster | None = None

    def setup(self, model, optimizer, *, num_classes: int, runtime: Runtime) -> None:
        """Bind to the host's model and optimizer; a fresh buffer (seeded by the runtime) and
        an empty prior window."""
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"{self.name}: num_classes must be a positive int, got {num_classes!r}"
            )
        c = self.config
        self.model, self.optimizer, self.runtime = model, optimizer, runtime
        self.num_classes = num_classes
        self.buffer = ReservoirBuffer(c.buffer_size, generator=runtime.generator(device="cpu"))
        self.adjuster = LogitAdjuster(num_classes, tau=c.tau, window=c.window, eps=c.eps)

    def _check(self, batch: StreamBatch) -> tuple[torch.Tensor, torch.Tensor]:
        if self.model is None:
            raise RuntimeError(
                f"{self.name}: observe() before setup(); call setup(model, optimizer, "
                "num_classes=..., runtime=...) first"
            )
        if not isinstance(batch, StreamBatch):
            raise TypeError(
                f"{self.name}: observe() takes a StreamBatch, not {type(batch).__name__}"
            )
        y = batch.y
        if int(y.max()) >= self.num_classes:
            bad = sorted({int(c) for c in y if int(c) >= self.num_classes})
            raise ValueError(
                f"{self.name}: labels {', '.join(map(str, bad))} are outside the "
                f"{self.num_classes} classes (0..{self.num_classes - 1}) given to setup()"
            )
        return self.runtime.to((batch.x, y.long()))

    def _replay(self, x: torch.Tensor, y: torch.Tensor):
        """The replay batch (x, y), or None while the buffer is empty."""
        raise NotImplementedError

    def _after_step(self, x: torch.Tensor, y: torch.Tensor, task: int | None) -> None:
        self.buffer.add(x, y)

    def _before_step(self, task: int | None) -> None:
        """Hook run before replay (MIR-LAS's task-end buffering)."""

    def observe(self, batch: StreamBatch) -> float:
        """One LAS step on the stream batch and a replay batch; returns the adjusted loss."""
        x, y = self._check(batch)
        self._before_step(batch.task)
        replay = self._replay(x, y) if len(self.buffer) else None
        cat_x, cat_y = (
            (x, y) if replay is None else (torch.cat((x, replay[0])), torch.cat((y, replay[1])))
        )
        self.adjuster.update(cat_y)
        logits = self.model(cat_x)
        loss = F.cross_entropy(self.adjuster.adjust(logits), cat_y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self._after_step(x, y, batch.task)
        return float(loss.detach())

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Raw (unadjusted) logits in eval mode, on x's device; the training mode is restored."""
        if self.model is None:
            raise RuntimeError(f"{self.name}: predict() before setup(); call setup(...) first")
        training = self.model.training
        self.model.eval()
        try:
            logits = self.model(self.runtime.to(x))
        finally:
            self.model.train(training)
        return logits.detach().to(x.device)


class ERLAS(_LASBase):
    """ER-LAS: experience replay (uniform draws from a reservoir) with logit adjusted softmax."""

    name = "las"
    summary = (
        "ER-LAS: experience replay whose training logits are shifted by tau*log of the label "
        "counts of the last steps (stream and replay), countering recency bias"
    )

    def _replay(self, x, y):
        return self.buffer.sample(self.config.minibatch_size)


class MIRLASConfig(LASConfig):
    """MIR-LAS adds the retrieval's settings (official models/mir_las.py)."""

    mir_candidates: int = Field(
        160,
        ge=1,
        le=100_000_000,
        description="random buffer samples scored by MIR per step (official --subsample 160)",
    )
    lr: float | None = Field(
        None,
        gt=0,
        le=100,
        description="learning rate of MIR's virtual step; None: the host optimizer's current lr "
        "(param_groups[0]), as the official code uses its one --lr 0.03 for both",
    )
    buffer_update: Literal["step", "task"] = Field(
        "step",
        description="step: reservoir-add each stream batch after its step, as ER-LAS (works "
        "task-free; our default, a deviation); task: the official end_task, hold a task's "
        "batches and add them when the first batch of the next task id arrives (needs task ids)",
    )


class MIRLAS(_LASBase):
    """MIR-LAS: maximally interfered retrieval from a reservoir, with logit adjusted softmax."""

    name = "mir-las"
    summary = (
        "MIR-LAS: replays the buffer samples most interfered by a virtual step, with training "
        "logits shifted by tau*log of the label counts of the last steps"
    )
    Config = MIRLASConfig

    def setup(self, model, optimizer, *, num_classes: int, runtime: Runtime) -> None:
        super().setup(model, optimizer, num_classes=num_classes, runtime=runtime)
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._task: int | None = None

    def _replay(self, x, y):
        c = self.config
        lr = c.lr if c.lr is not None else float(self.optimizer.param_groups[0]["lr"])
        # the virtual step's loss is plain cross-entropy, as in the official mir_las.py
        return mir_retrieve(
            self.model, x, y, self.buffer, lr=lr, candidates=c.mir_candidates, k=c.minibatch_size
        )

    def _before_step(self, task):
        if self.config.buffer_update != "task":
            return
        if task is None:
            raise ValueError(
                f"{self.name}: buffer_update='task' needs batches with task ids (batch.task is "
                "None); use buffer_update='step' on task-free streams"
            )
        if self._task is not None and task != self._task:
            for px, py in self._pending:
                self.buffer.add(px, py)
            self._pending = []
        self._task = task

    def _after_step(self, x, y, task):
        if self.config.buffer_update == "task":
            self._pending.append((x.detach(), y.detach()))
        else:
            self.buffer.add(x, y)
