"""The online continual-learning baselines of LAS and Mammoth: FineTune, ER, MIR and ER-ACE.

Each is a `ContinualLearner` that makes exactly one optimizer step per incoming batch (the
online, single-pass setting of LAS, Huang et al., TMLR 2024) with the optimizer the host passes
to `setup` (LAS's runs: SGD, lr 0.03, momentum 0, weight decay 0):

- FineTune: cross-entropy on the incoming batch, no memory (the lower bound).
- ER (Chaudhry et al. 2019): cross-entropy on the incoming batch concatenated with a replay
  batch drawn uniformly from a reservoir buffer (none at the first step); then the incoming
  batch is offered to the reservoir.
- MIR (Aljundi et al. 2019): ER whose replay batch is the `minibatch_size` of `candidates`
  random buffer samples whose loss would rise most after a virtual SGD step on the incoming
  batch (`yw_core.continual.mir_retrieve`), at the optimizer's current lr.
- ER-ACE (Caccia et al. 2022): the incoming batch's cross-entropy with the logits of classes
  seen before but absent from the batch masked out (asymmetric cross-entropy), plus the plain
  cross-entropy of a separately forwarded replay batch.

The defaults are those of LAS's official code (K1nght/online_CL_logit_adjusted_softmax, built on
Mammoth: `--batch_size 32 --minibatch_size 32`, buffer 0.5k on CIFAR-10, MIR's 160 candidates)
and of Mammoth's `models/er_ace.py` for the ACE mask (aimagelab/mammoth @0d727a7), read, not
copied. One shared loop (`yw_core.continual.ReplayLearner.observe`, which LAS's learners use
too) does every step; the methods differ only in `retrieve` (the replay batch) and `loss`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from yw_core.continual import ReplayLearner, mir_retrieve
from yw_core.interfaces import Capabilities, MethodConfig, Paper

ER_PAPER = Paper(
    title="On Tiny Episodic Memories in Continual Learning",
    authors=("Chaudhry", "Rohrbach", "Elhoseiny", "Ajanthan", "Dokania", "Torr", "Ranzato"),
    year=2019,
    venue="arXiv",
    arxiv_id="1902.10486",
)
MIR_PAPER = Paper(
    title="Online Continual Learning with Maximally Interfered Retrieval",
    authors=("Aljundi", "Caccia", "Belilovsky", "Caccia", "Lin", "Charlin", "Tuytelaars"),
    year=2019,
    venue="NeurIPS",
    arxiv_id="1908.04742",
    code_url="https://github.com/optimass/Maximally_Interfered_Retrieval",
)
ACE_PAPER = Paper(
    title="New Insights on Reducing Abrupt Representation Change in Online Continual Learning",
    authors=("Caccia", "Aljundi", "Asadi", "Tuytelaars", "Pineau", "Belilovsky"),
    year=2022,
    venue="ICLR",
    arxiv_id="2104.05025",
    code_url="https://github.com/pclucas14/AML",
)
ONLINE = Capabilities(training=True, deterministic=True)


class ReplayConfig(MethodConfig):
    """A reservoir buffer and the size of the replay batch drawn from it each step."""

    buffer_size: int = Field(
        500,
        ge=1,
        le=10_000_000,
        description="reservoir capacity in samples (500: LAS's and Mammoth's 0.5k buffer on "
        "Seq-CIFAR-10; LAS uses 2k on CIFAR-100 and TinyImageNet, 20k on ImageNet)",
    )
    minibatch_size: int = Field(
        32,
        ge=1,
        le=65536,
        description="replay samples per step (32: LAS's `--minibatch_size`, next to the "
        "stream's `--batch_size 32`, which the host's Stream sets)",
    )


class FineTune(ReplayLearner):
    """Online fine-tuning: one step of cross-entropy on each incoming batch, nothing kept."""

    name = "finetune"
    summary = "FineTune: one SGD step per incoming batch, no memory (the lower bound)"
    status = "baseline"
    capabilities = ONLINE
    memory = False

    class Config(MethodConfig):
        """No options: the optimizer and the stream's batch size are the host's."""


class ER(ReplayLearner):
    """Experience replay with a reservoir buffer (Chaudhry et al. 2019; Mammoth's `er`)."""

    name = "er"
    summary = "ER: train on each incoming batch plus a uniform replay batch from a reservoir"
    paper = ER_PAPER
    status = "baseline"
    capabilities = ONLINE
    Config = ReplayConfig


class MIR(ReplayLearner):
    """ER whose replay batch is retrieved by maximal interference (Aljundi et al. 2019)."""

    name = "mir"
    summary = "MIR: ER replaying the buffer samples a virtual SGD step would hurt most"
    paper = MIR_PAPER
    status = "baseline"
    capabilities = ONLINE

    class Config(ReplayConfig):
        candidates: int = Field(
            160,
            ge=1,
            le=10_000_000,
            description="random buffer samples scored per step, the top `minibatch_size` "
            "replayed (160: LAS's mir_las.py, `--subsample 160`)",
        )

        @model_validator(mode="after")
        def _enough_candidates(self):
            if self.candidates < self.minibatch_size:
                raise ValueError(
                    f"candidates ({self.candidates}) must be >= minibatch_size "
                    f"({self.minibatch_size}): MIR keeps the top minibatch_size of them"
                )
            return self

    def retrieve(self, x, y):
        """`mir_retrieve` with a virtual step at the optimizer's current lr
        (`param_groups[0]["lr"]`, so a host's lr schedule is followed); weights untouched."""
        lr = float(self.optimizer.param_groups[0]["lr"])
        c = self.config
        return mir_retrieve(
            self.model, x, y, self.buffer, lr=lr, candidates=c.candidates, k=c.minibatch_size
        )


class ERACE(ReplayLearner):
    """ER with the asymmetric cross-entropy (ACE) on the incoming batch (Caccia et al. 2022)."""

    name = "er-ace"
    summary = "ER-ACE: incoming loss over the batch's own classes only, plus replay cross-entropy"
    paper = ACE_PAPER
    status = "baseline"
    capabilities = ONLINE

    class Config(ReplayConfig):
        mask_unseen: bool = Field(
            False,
            description="also mask classes never seen yet (False: as Mammoth's er_ace.py, which "
            "keeps not-yet-seen classes in the incoming softmax and masks only seen classes "
            "absent from the batch; True: softmax over the batch's classes alone)",
        )

    def setup(self, model, optimizer, *, num_classes, runtime) -> None:
        super().setup(model, optimizer, num_classes=num_classes, runtime=runtime)
        self.seen = torch.zeros(self.num_classes, dtype=torch.bool, device=runtime.device)

    def kept_classes(self, y: torch.Tensor) -> torch.Tensor:
        """Bool (num_classes,): the logits the incoming loss keeps, the classes of `y` and
        (unless `mask_unseen`) those never seen; records y's classes as seen."""
        present = torch.zeros_like(self.seen)
        present[y] = True
        self.seen |= present
        return present if self.config.mask_unseen else present | ~self.seen

    def loss(self, x, y, replay) -> torch.Tensor:
        """ACE on the incoming batch plus, when there is a replay batch, its cross-entropy
        (two forward passes, as Mammoth's er_ace)."""
        loss = masked_cross_entropy(self.model(x), y, self.kept_classes(y))
        if replay is not None:
            loss = loss + F.cross_entropy(self.model(replay[0]), replay[1])
        return loss


def masked_cross_entropy(logits: torch.Tensor, y: torch.Tensor, keep: torch.Tensor):
    """Cross-entropy with the logits of classes where `keep` (num_classes,) is False set to
    -inf: they get no probability and no gradient. Every label of y must be kept."""
    return F.cross_entropy(logits.masked_fill(~keep, float("-inf")), y)
