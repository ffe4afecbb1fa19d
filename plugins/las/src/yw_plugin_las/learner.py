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

from yw_core.continual import ReplayLearner, mir_retrieve
from yw_core.interfaces import Capabilities, MethodConfig, Paper
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


class _LASBase(ReplayLearner):
    """The shared step: replay, window prior, adjusted cross-entropy, one optimizer step (the
    loop is `yw_core.continual.ReplayLearner`'s)."""

    paper = PAPER
    status = "experimental"
    capabilities = Capabilities(training=True, deterministic=True)
    bench_fields = {"buffer_size": "buffer_size", "minibatch_size": "minibatch_size"}
    Config = LASConfig

    def setup(self, model, optimizer, *, num_classes: int, runtime: Runtime) -> None:
        """Bind to the host's model and optimizer; a fresh buffer (seeded by the runtime) and
        an empty prior window."""
        super().setup(model, optimizer, num_classes=num_classes, runtime=runtime)
        c = self.config
        self.adjuster = LogitAdjuster(num_classes, tau=c.tau, window=c.window, eps=c.eps)

    def loss(self, x, y, replay) -> torch.Tensor:
        """CE(f(cat) + τ·log(N_t + eps), y) on cat = the stream batch ∪ the replay batch, the
        window of label counts updated with cat's labels first."""
        if replay is not None:
            x, y = torch.cat((x, replay[0])), torch.cat((y, replay[1]))
        self.adjuster.update(y)
        return F.cross_entropy(self.adjuster.adjust(self.model(x)), y)


class ERLAS(_LASBase):
    """ER-LAS: experience replay (uniform draws from a reservoir) with logit adjusted softmax."""

    name = "las"
    summary = (
        "ER-LAS: experience replay whose training logits are shifted by tau*log of the label "
        "counts of the last steps (stream and replay), countering recency bias"
    )


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

    def retrieve(self, x, y):
        c = self.config
        lr = c.lr if c.lr is not None else float(self.optimizer.param_groups[0]["lr"])
        # the virtual step's loss is plain cross-entropy, as in the official mir_las.py
        return mir_retrieve(
            self.model, x, y, self.buffer, lr=lr, candidates=c.mir_candidates, k=c.minibatch_size
        )

    def before_step(self, batch):
        if self.config.buffer_update != "task":
            return
        task = batch.task
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

    def remember(self, x, y, batch):
        if self.config.buffer_update == "task":
            self._pending.append((x.detach(), y.detach()))
        else:
            self.buffer.add(x, y)
