"""The standard machine-unlearning baselines: Retrain, FT, GA, RL, l1-sparse and SalUn.

Every one takes the trained classifier and the forget set D_f (and, except GA, the remaining
data D_r) and returns an unlearned copy in eval mode:

- Retrain (the gold standard): re-initialise and train from scratch on D_r with `fit`.
- FT: fine-tune on D_r only. l1-sparse: FT plus an l1 penalty on the weights that decays
  linearly to 0 (Jia et al. 2023, NeurIPS, "Model Sparsity Can Simplify Machine Unlearning").
- GA: gradient ascent on the cross-entropy of D_f only (reads no remaining data).
- RL: train on D_f with random wrong labels mixed with D_r. SalUn: RL that updates only the
  weights with the largest forget-loss gradient (Fan et al. 2024, ICLR).

Defaults are the recipes of the official code, OPTML-Group/Unlearn-Sparse @80ba55d (README
commands, `arg_parser.py`, `unlearn/*.py`) and OPTML-Group/Unlearn-Saliency @a6e89fd
(`Classification/README.md`, `generate_mask.py`, `unlearn/RL.py`), read, not copied: SGD with
momentum 0.9 and weight decay 5e-4 at a constant lr (the repos' step milestones 91 and 136 never
fire in a 10-epoch run), in train mode. Their batch of 256 over CIFAR-10's 45k images becomes 64
over the digits' 1.3k, and where a CIFAR lr does nothing at the digits' few forget batches, the
field says what we measured instead.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from pydantic import Field
from torch.utils.data import ConcatDataset, Dataset

from yw_core.interfaces import Capabilities, MethodConfig, Paper, Unlearner
from yw_core.interfaces.unlearner import UnlearningRequest, check_model, forget_set, working_model
from yw_core.models import eval_mode
from yw_core.runtime import Runtime

SPARSE = Paper(
    title="Model Sparsity Can Simplify Machine Unlearning",
    authors=("Jia", "Liu", "Ram", "Yao", "Liu", "Liu", "Sharma", "Liu"),
    year=2023,
    venue="NeurIPS",
    arxiv_id="2304.04934",
    code_url="https://github.com/OPTML-Group/Unlearn-Sparse",
)
SALUN = Paper(
    title="SalUn: Empowering Machine Unlearning via Gradient-based Weight Saliency in Both "
    "Image Classification and Generation",
    authors=("Fan", "Liu", "Zhang", "Wu", "Wei", "Liu"),
    year=2024,
    venue="ICLR",
    arxiv_id="2310.12508",
    code_url="https://github.com/OPTML-Group/Unlearn-Saliency",
)
TRAINING = Capabilities(training=True, deterministic=True)


class SGDConfig(MethodConfig):
    """Constant-lr SGD: the optimiser of every fine-tuning baseline in both repositories."""

    epochs: int = Field(
        10,
        ge=1,
        le=100_000,
        description="passes over the data (10: Unlearn-Sparse's FT and l1-sparse runs)",
    )
    lr: float = Field(
        0.01,
        gt=0,
        le=10,
        description="constant SGD lr (0.01: Unlearn-Sparse's FT and l1-sparse runs)",
    )
    batch_size: int = Field(
        64,
        ge=1,
        le=65536,
        description="mini-batch size (64: the digits recipe; the repos use 256 on CIFAR-10)",
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum (0.9: both repos)")
    weight_decay: float = Field(5e-4, ge=0, le=1, description="SGD weight decay (5e-4: both repos)")
    progress: bool = Field(False, description="show a tqdm bar over updates")


class Retrain(Unlearner):
    """Exact unlearning: the model re-initialised and trained from scratch on D_r only."""

    name = "retrain"
    summary = "Retrain: re-initialise and train from scratch on the remaining data (gold standard)"
    paper = SPARSE
    status = "baseline"
    capabilities = TRAINING
    bench_fields = {"train_epochs": "epochs", "train_lr": "lr", "train_batch_size": "batch_size"}

    class Config(SGDConfig):
        epochs: int = Field(
            20,
            ge=1,
            le=100_000,
            description="training epochs (20: the benches' digits-cnn recipe; `bench unlearn` "
            "sets the original model's; Unlearn-Sparse retrains its ResNet-18 160 epochs)",
        )
        lr: float = Field(
            0.1,
            gt=0,
            le=10,
            description="peak lr of fit's cosine schedule (0.1: the digits recipe and "
            "Unlearn-Sparse's retrain)",
        )

    def unlearn(self, model, forget, retain=None, *, runtime: Runtime, in_place: bool = False):
        """Train a freshly initialised copy on `retain` with `yw_core.train.fit`; the forget set
        is only checked (labels within the model's classes), never trained on."""
        from yw_core.train import TrainConfig, fit

        request = UnlearningRequest.of(forget, retain)
        _needs_retain(self.name, request)
        check_model(model, request.forget, runtime=runtime, name=self.name)
        model = working_model(model, in_place)
        reinitialise(model, runtime.seed)
        c = self.config
        recipe = TrainConfig(
            epochs=c.epochs,
            batch_size=c.batch_size,
            lr=c.lr,
            momentum=c.momentum,
            weight_decay=c.weight_decay,
            progress=c.progress,
        )
        return fit(model, request.retain, runtime=runtime, config=recipe).model.eval()


class FT(Unlearner):
    """Fine-tuning: a few epochs of SGD on D_r, so the model drifts away from D_f
    (catastrophic forgetting as unlearning)."""

    name = "ft"
    summary = "FT: fine-tune on the remaining data only (Unlearn-Sparse's baseline)"
    paper = SPARSE
    status = "baseline"
    capabilities = TRAINING
    Config = SGDConfig

    def unlearn(self, model, forget, retain=None, *, runtime: Runtime, in_place: bool = False):
        """Fine-tune a copy on `retain` with the cross-entropy; returns it in eval mode."""
        request = UnlearningRequest.of(forget, retain)
        _needs_retain(self.name, request)
        check_model(model, request.forget, runtime=runtime, name=self.name)
        model = working_model(model, in_place)
        return train_sgd(model, request.retain, _cross_entropy, self.config, runtime, self.name)


class GA(Unlearner):
    """Gradient ascent: SGD on the negated cross-entropy of D_f; reads no remaining data."""

    name = "ga"
    summary = "GA: gradient ascent on the forget set's cross-entropy (needs no remaining data)"
    paper = SPARSE
    status = "baseline"
    capabilities = TRAINING
    remaining_data_free = True

    class Config(SGDConfig):
        epochs: int = Field(
            5, ge=1, le=100_000, description="passes over D_f (5: Unlearn-Sparse's GA)"
        )
        lr: float = Field(
            1e-2,
            gt=0,
            le=10,
            description="constant SGD lr (Unlearn-Sparse's 1e-4 makes 90 steps on CIFAR-10's "
            "4.5k forget images and changes nothing in the digits' 15; 1e-2 still leaves the "
            "bench's digits models intact, 2e-2 halves one seed in three's retain accuracy: "
            "our measurements; GA's useful window is narrow, tune epochs and lr per model)",
        )

    def unlearn(self, model, forget, retain=None, *, runtime: Runtime, in_place: bool = False):
        """Ascend the forget set's cross-entropy on a copy; `retain` is never read."""
        forget = forget_set(forget)
        check_model(model, forget, runtime=runtime, name=self.name)
        model = working_model(model, in_place)

        def ascent(net, batch, update, total):
            return -_cross_entropy(net, batch, update, total)

        return train_sgd(model, forget, ascent, self.config, runtime, self.name)


class RL(Unlearner):
    """Random labels: D_f relabelled with random wrong classes, trained together with D_r."""

    name = "rl"
    summary = "RL: train on the forget set with random wrong labels, mixed with the remaining data"
    paper = SALUN
    status = "baseline"
    capabilities = TRAINING

    class Config(SGDConfig):
        epochs: int = Field(
            10,
            ge=1,
            le=100_000,
            description="passes over D_f ∪ D_r (10: Unlearn-Saliency's `--unlearn_epochs` default)",
        )
        lr: float = Field(
            0.01,
            gt=0,
            le=10,
            description="constant SGD lr (0.01: Unlearn-Saliency's `--unlearn_lr` default)",
        )

    def unlearn(self, model, forget, retain=None, *, runtime: Runtime, in_place: bool = False):
        """Train a copy on D_f with fresh random wrong labels per batch, mixed with D_r."""
        request = UnlearningRequest.of(forget, retain)
        _needs_retain(self.name, request)
        classes = check_model(model, request.forget, runtime=runtime, name=self.name)
        model = working_model(model, in_place)
        data, loss = _random_label_task(request, classes, runtime, self.name)
        return train_sgd(model, data, loss, self.config, runtime, self.name)


class L1Sparse(Unlearner):
    """l1-sparse: FT on D_r plus alpha_t·‖w‖₁, alpha_t decaying linearly from alpha to 0."""

    name = "l1-sparse"
    summary = "l1-sparse: fine-tune on the remaining data with a decaying l1 penalty on the weights"
    paper = SPARSE
    status = "baseline"
    capabilities = TRAINING

    class Config(SGDConfig):
        alpha: float = Field(
            5e-4,
            ge=0,
            le=1,
            description="initial l1 coefficient, falling linearly to 0 (Unlearn-Sparse's README "
            "leaves it to the user, `--alpha ${alpha}`; 5e-4 is our spec's value, not checked in "
            "the paper; on the digits it acts like FT, 2e-2 forgets class 3: our measurements)",
        )

    def unlearn(self, model, forget, retain=None, *, runtime: Runtime, in_place: bool = False):
        """Fine-tune a copy on `retain` with cross-entropy + l1_coefficient(...)·‖w‖₁."""
        request = UnlearningRequest.of(forget, retain)
        _needs_retain(self.name, request)
        check_model(model, request.forget, runtime=runtime, name=self.name)
        model = working_model(model, in_place)
        params = [p for p in model.parameters() if p.requires_grad]
        alpha = self.config.alpha

        def penalised(net, batch, update, total):
            l1 = sum(p.abs().sum() for p in params)
            return (
                _cross_entropy(net, batch, update, total)
                + l1_coefficient(alpha, update, total) * l1
            )

        return train_sgd(model, request.retain, penalised, self.config, runtime, self.name)


class SalUn(Unlearner):
    """SalUn: RL that updates only the salient weights, the top fraction by |∇ forget loss|."""

    name = "salun"
    summary = "SalUn: random-label unlearning of only the weights most salient to the forget loss"
    paper = SALUN
    status = "baseline"
    capabilities = TRAINING

    class Config(RL.Config):
        lr: float = Field(
            0.013,
            gt=0,
            le=10,
            description="constant SGD lr (0.013: Unlearn-Saliency's README run of SalUn, 10 "
            "epochs on CIFAR-10)",
        )
        fraction: float = Field(
            0.5,
            gt=0,
            le=1,
            description="share of the weights in the mask, ranked over all parameters together "
            "(0.5: `mask/with_0.5.pt` of Unlearn-Saliency's README run; 1: RL at this lr)",
        )

    def __init__(self, config=None, /, **overrides):
        super().__init__(config, **overrides)
        self.mask: dict[str, torch.Tensor] = {}

    def unlearn(self, model, forget, retain=None, *, runtime: Runtime, in_place: bool = False):
        """RL on a copy, every step undone outside the saliency mask; `self.mask` holds the mask
        (True: trained) by parameter name."""
        request = UnlearningRequest.of(forget, retain)
        _needs_retain(self.name, request)
        classes = check_model(model, request.forget, runtime=runtime, name=self.name)
        model = working_model(model, in_place)
        c = self.config
        self.mask = saliency_mask(model, request.forget, c.fraction, runtime, c.batch_size)
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        start = [p.detach().clone() for _, p in named]
        masks = [self.mask[n] for n, _ in named]

        def keep_unmasked(optimizer):
            with torch.no_grad():
                for (_, p), p0, m in zip(named, start, masks, strict=True):
                    p.copy_(torch.where(m, p, p0))
                    buffer = optimizer.state.get(p, {}).get("momentum_buffer")
                    if buffer is not None:
                        buffer.mul_(m)

        data, loss = _random_label_task(request, classes, runtime, self.name)
        return train_sgd(model, data, loss, c, runtime, self.name, after_step=keep_unmasked)


def saliency_mask(model, forget: Dataset, fraction: float, runtime: Runtime, batch_size: int):
    """{parameter name: bool tensor}, True for the `fraction` of all trainable weights with the
    largest |∂ CE(D_f) / ∂w|, CE the mean over D_f, in eval mode (as `generate_mask.py`)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = [torch.zeros_like(p) for _, p in named]
    loader = torch.utils.data.DataLoader(forget, batch_size=batch_size, shuffle=False)
    with eval_mode(model):
        for batch in loader:
            x, y = runtime.to(tuple(batch[:2]))
            loss = F.cross_entropy(model(x), y.long(), reduction="sum") / len(forget)
            parts = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
            for g, part in zip(grads, parts, strict=True):
                if part is not None:
                    g += part
    scores = torch.cat([g.abs().flatten() for g in grads])
    keep = int(fraction * scores.numel())  # the repo's int(len * ratio)
    flat = torch.zeros_like(scores, dtype=torch.bool)
    flat[torch.argsort(scores, descending=True, stable=True)[:keep]] = True
    pieces = flat.split([g.numel() for g in grads])
    return {n: m.view_as(p) for (n, p), m in zip(named, pieces, strict=True)}


def l1_coefficient(alpha: float, update: int, total: int) -> float:
    """The l1 weight at update `update` (0-based) of `total`: alpha·(1 − update/total), falling
    linearly to 0 at the end; Unlearn-Sparse's per-epoch alpha·(1 − epoch/epochs) per update."""
    return alpha * (1 - update / total)


def reinitialise(model, seed: int) -> None:
    """Draw fresh weights in place: `reset_parameters()` of every submodule that has one, after
    `torch.manual_seed(seed)` (in construction order, the weights a model built under that seed
    starts from); the global random state is restored afterwards."""
    cuda = sorted({p.device.index or 0 for p in model.parameters() if p.is_cuda})
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        for module in model.modules():
            if callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()


Loss = Callable[[torch.nn.Module, tuple, int, int], torch.Tensor]


def train_sgd(model, data, loss_fn: Loss, config: SGDConfig, runtime, name, after_step=None):
    """Constant-lr SGD in train mode over `data` for `config.epochs` epochs, the loop of every
    baseline but Retrain; `loss_fn(model, batch, update, total)`, `after_step(optimizer)` after
    each step. Returns the model in eval mode; a non-finite loss is a FloatingPointError."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    loader = runtime.loader(data, config.batch_size, shuffle=True)
    total = config.epochs * len(loader)
    bar = _bar(total, name) if config.progress and runtime.is_main else None
    model.train()
    update = 0
    for epoch in range(config.epochs):
        runtime.set_epoch(loader, epoch)
        for batch in loader:
            loss = loss_fn(model, runtime.to(tuple(batch)), update, total)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"{name}: loss is {loss.item()} at update {update + 1} of {total} (NaN or "
                    "inf in the data or the model, or a learning rate that diverges?)"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step(optimizer)
            update += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=round(float(loss.detach()), 4))
    if bar is not None:
        bar.close()
    return model.eval()


def _cross_entropy(model, batch, update, total):
    return F.cross_entropy(model(batch[0]), batch[1].long())


def _random_label_task(request: UnlearningRequest, classes: int, runtime: Runtime, name: str):
    """RL's data and loss: D_f and D_r mixed, each D_f label redrawn per batch as a uniform
    wrong class (y + k) mod C, k in 1..C-1, from a generator seeded with the runtime's seed."""
    if classes < 2:
        raise ValueError(f"{name}: random labels need at least 2 classes, the model has {classes}")
    data = ConcatDataset([_Tagged(request.forget, True), _Tagged(request.retain, False)])
    generator = runtime.generator(device="cpu")

    def loss(model, batch, update, total):
        x, y, relabel = batch
        shift = torch.randint(1, classes, y.shape, generator=generator).to(y.device)
        target = torch.where(relabel, (y + shift) % classes, y)
        return F.cross_entropy(model(x), target)

    return data, loss


class _Tagged(Dataset):
    """The (x, y) items of `data` as (x, y, relabel): RL's mark of the forget samples."""

    def __init__(self, data: Dataset, relabel: bool):
        self.data, self.relabel = data, relabel

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        x, y = self.data[i][:2]
        return x, torch.as_tensor(y, dtype=torch.long), self.relabel


def _needs_retain(name: str, request: UnlearningRequest) -> None:
    if request.retain is None:
        raise ValueError(
            f"{name} needs the remaining data: pass retain (the training set without the forget "
            "set), or use a remaining-data-free method such as ga"
        )


def _bar(total: int, name: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=name, unit="update", leave=False)
