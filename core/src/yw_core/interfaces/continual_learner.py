"""ContinualLearner: learn online from a non-stationary stream of labelled batches.

`Stream` is the stream a host replays to every learner alike (class-incremental tasks, or one
i.i.d. task), made of `StreamBatch`es; the learner sees one batch at a time, once.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from yw_core.groups import GROUPS
from yw_core.interfaces.method import Method

if TYPE_CHECKING:
    import torch
    from torch import nn

    from yw_core.runtime import Runtime


@dataclass(frozen=True)
class StreamBatch:
    """One step of a stream: inputs x (B, ...), integer labels y (B,), and the task id.

    `task` is the index of the task the batch belongs to, or None in a task-free stream (the
    online setting of LAS, where boundaries are never announced). Checked on construction.
    """

    x: torch.Tensor
    y: torch.Tensor
    task: int | None = None

    def __post_init__(self) -> None:
        import torch

        if not isinstance(self.x, torch.Tensor) or not isinstance(self.y, torch.Tensor):
            raise TypeError("x and y must be tensors")
        if self.x.dim() < 2 or self.y.dim() != 1 or len(self.x) != len(self.y) or not len(self.y):
            raise ValueError(
                f"x must have shape (B, ...) and y shape (B,) with B >= 1, got "
                f"{tuple(self.x.shape)} and {tuple(self.y.shape)}"
            )
        if self.y.dtype.is_floating_point or self.y.dtype.is_complex or self.y.dtype == torch.bool:
            raise ValueError(f"y must hold integer class indices, got {self.y.dtype}")
        if (self.y < 0).any():
            raise ValueError("y holds negative class indices")
        if torch.isnan(self.x).any():
            raise ValueError("x contains NaN")
        if self.task is not None and (not isinstance(self.task, int) or self.task < 0):
            raise ValueError(f"task must be a non-negative int or None, got {self.task!r}")


class Stream:
    """A replayable sequence of StreamBatches over `num_classes` classes.

    Iterating twice gives the same batches, so every learner of a comparison sees one stream.
    `task_starts` holds the index of each task's first batch, known to the host whether or not
    the batches carry task ids.
    """

    def __init__(
        self,
        batches: Sequence[StreamBatch],
        num_classes: int,
        task_starts: Sequence[int] = (0,),
    ):
        self.batches = tuple(batches)
        self.num_classes = int(num_classes)
        self.task_starts = tuple(int(i) for i in task_starts)
        if not self.batches:
            raise ValueError("a stream needs at least one batch")
        if any(not isinstance(b, StreamBatch) for b in self.batches):
            raise TypeError("a stream is made of StreamBatch objects")
        top = max(int(b.y.max()) for b in self.batches)
        if self.num_classes < 1 or top >= self.num_classes:
            raise ValueError(f"labels go up to {top}, beyond num_classes={self.num_classes}")
        starts = self.task_starts
        if not starts or starts[0] != 0 or list(starts) != sorted(set(starts)):
            raise ValueError(f"task_starts must rise from 0, got {starts}")
        if starts[-1] >= len(self.batches):
            raise ValueError(f"task_starts {starts} go beyond the {len(self.batches)} batches")

    @classmethod
    def from_tensors(
        cls,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        batch_size: int = 32,
        tasks: int | Sequence[Sequence[int]] = 1,
        num_classes: int | None = None,
        task_ids: bool = True,
        seed: int = 0,
    ) -> Stream:
        """Cut (x, y) into a stream of tasks, each a disjoint group of classes, in order.

        `tasks=k` splits the sorted classes into k equal consecutive groups (Seq-CIFAR-10 is
        `tasks=5`: classes 0-1, then 2-3, ...); a list of groups sets them explicitly; `tasks=1`
        is one i.i.d. task. Each task's samples are shuffled with `seed` and cut into batches
        of `batch_size` (the last of a task may be smaller). `task_ids=False` leaves `task`
        None on every batch, for task-free learners.
        """
        import torch

        if len(x) != len(y) or y.dim() != 1:
            raise ValueError(f"x and y must have N rows, got {tuple(x.shape)} and {tuple(y.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        classes = sorted(int(c) for c in y.unique())
        groups = _groups(classes, tasks)
        g = torch.Generator().manual_seed(seed)
        rows_of_tasks = []
        for t, group in enumerate(groups):
            (rows,) = torch.isin(y, torch.tensor(group, dtype=y.dtype)).nonzero(as_tuple=True)
            if not len(rows):
                raise ValueError(f"task {t} (classes {list(group)}) has no samples")
            rows_of_tasks.append(rows)
        batches, starts = _cut(x, y, rows_of_tasks, batch_size, task_ids, g)
        top = classes[-1] + 1 if classes else 0
        return cls(batches, num_classes if num_classes is not None else top, starts)

    @classmethod
    def blurry(
        cls,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        tasks: int = 5,
        disjoint: float = 0.5,
        blurry: float = 0.1,
        batch_size: int = 32,
        num_classes: int | None = None,
        task_ids: bool = False,
        seed: int = 0,
    ) -> Stream:
        """An i-Blurry-N-M stream (Koh et al. 2022; LAS's "general" setting): classes recur.

        A share `disjoint` (N) of the classes, picked with `seed`, appear in one task each
        (spread evenly over the tasks); every other class has a major task (round robin) that
        holds its samples except a share `blurry` (M) of them, each moved to another task at
        random. Each task's samples are shuffled and cut into batches; `task_ids` is off by
        default: the learner is not told where tasks start.
        """
        import torch

        if len(x) != len(y) or y.dim() != 1:
            raise ValueError(f"x and y must have N rows, got {tuple(x.shape)} and {tuple(y.shape)}")
        if not 0 <= disjoint <= 1 or not 0 <= blurry < 1:
            raise ValueError(
                f"disjoint must be in [0, 1] and blurry in [0, 1), got {disjoint} and {blurry}"
            )
        if tasks < 1 or batch_size < 1:
            raise ValueError(f"tasks and batch_size must be >= 1, got {tasks} and {batch_size}")
        g = torch.Generator().manual_seed(seed)
        classes = y.unique()
        classes = classes[torch.randperm(len(classes), generator=g)].tolist()
        n_disjoint = round(disjoint * len(classes))
        home = {c: i * tasks // max(n_disjoint, 1) for i, c in enumerate(classes[:n_disjoint])}
        home.update({c: i % tasks for i, c in enumerate(classes[n_disjoint:])})
        task_of = torch.tensor([home[int(c)] for c in y.tolist()], dtype=torch.long)
        if tasks > 1:
            moved = torch.isin(y, torch.tensor(classes[n_disjoint:], dtype=y.dtype))
            moved &= torch.rand(len(y), generator=g) < blurry
            shift = torch.randint(1, tasks, (len(y),), generator=g)
            task_of = torch.where(moved, (task_of + shift) % tasks, task_of)
        rows_of_tasks = [(task_of == t).nonzero(as_tuple=True)[0] for t in range(tasks)]
        if empty := [t for t, rows in enumerate(rows_of_tasks) if not len(rows)]:
            raise ValueError(f"task {empty[0]} has no samples: use fewer tasks")
        batches, starts = _cut(x, y, rows_of_tasks, batch_size, task_ids, g)
        top = int(y.max()) + 1
        return cls(batches, num_classes if num_classes is not None else top, starts)

    @property
    def num_tasks(self) -> int:
        return len(self.task_starts)

    def __iter__(self) -> Iterator[StreamBatch]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)

    def __repr__(self) -> str:
        return f"Stream({len(self)} batches, {self.num_tasks} tasks, {self.num_classes} classes)"


def _cut(x, y, rows_of_tasks, batch_size: int, task_ids: bool, generator):
    """(batches, task starts): each task's rows shuffled with `generator`, in task order, cut
    into StreamBatches of `batch_size` (the last of a task may be smaller)."""
    import torch

    batches, starts = [], []
    for t, rows in enumerate(rows_of_tasks):
        rows = rows[torch.randperm(len(rows), generator=generator)]
        starts.append(len(batches))
        for i in range(0, len(rows), batch_size):
            chunk = rows[i : i + batch_size]
            batches.append(StreamBatch(x[chunk], y[chunk], t if task_ids else None))
    return batches, starts


def _groups(classes: list[int], tasks: int | Sequence[Sequence[int]]) -> list[list[int]]:
    if isinstance(tasks, int):
        if tasks < 1 or len(classes) % tasks:
            raise ValueError(f"tasks={tasks} must divide the {len(classes)} classes evenly")
        size = len(classes) // tasks
        return [classes[i : i + size] for i in range(0, len(classes), size)]
    groups = [[int(c) for c in group] for group in tasks]
    flat = [c for group in groups for c in group]
    if len(flat) != len(set(flat)):
        raise ValueError(f"tasks {groups} share classes; each class belongs to one task")
    if missing := sorted(set(classes) - set(flat)):
        raise ValueError(f"tasks {groups} leave out classes {missing} that y holds")
    return groups


class ContinualLearner(Method):
    """Learns online from a non-stationary stream, one mini-batch at a time (LAS, ER, ...).

    What a host relies on (the conformance suite checks it):

    - `setup(model, optimizer, *, num_classes, runtime)` binds the learner to a model the caller
      moved with `runtime.to` and an optimizer over its parameters, before the stream starts.
    - `observe(batch)` is one online step on a StreamBatch whose tensors may lie on any device
      (the learner moves them with the runtime); it may replay from its own buffer, and returns
      the training loss as a float. It must work when `batch.task` is None.
    - `predict(x)` returns detached logits (N, num_classes) on x's device, computed in eval mode;
      the model's training mode is restored afterwards.
    """

    interface = "continual_learner"
    group = GROUPS["continual_learner"]

    @abstractmethod
    def setup(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        num_classes: int,
        runtime: Runtime,
    ) -> None:
        """Bind the learner to a model and optimizer before the stream starts."""

    @abstractmethod
    def observe(self, batch: StreamBatch) -> float:
        """Learn from one incoming batch; returns the training loss."""

    @abstractmethod
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, classes) for evaluation."""
