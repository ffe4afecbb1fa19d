"""Forecaster: predict future events (e.g. technology convergence) from historical records.

`Records` is the table both sides use: history rows (patents, events) to learn from and query
rows (candidate events, e.g. IPC pairs) to score. Plain Python and torch; no pandas needed.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from yw_core.groups import GROUPS
from yw_core.interfaces.method import Method

if TYPE_CHECKING:
    import torch


class Records:
    """A table of named columns of equal length; a column is a list, a tensor or an array.

    Values may be anything a method reads (years, IPC codes, lists of citations). Build one
    from a dict of columns, or with `from_rows` from a list of dicts; `require` gives the clear
    error a method raises when a column it needs is missing.
    """

    def __init__(self, columns: Mapping[str, Sequence[Any]]):
        if not isinstance(columns, Mapping):
            raise TypeError(f"columns must be a dict of name -> column, not {type(columns)}")
        self._columns: dict[str, Any] = {}
        for name, column in columns.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"column names must be non-empty strings, got {name!r}")
            if isinstance(column, (str, bytes)) or not hasattr(column, "__len__"):
                raise ValueError(f"column {name!r} must be a sequence of values, got {column!r}")
            self._columns[name] = column if hasattr(column, "shape") else list(column)
        lengths = {name: len(column) for name, column in self._columns.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k}={v}" for k, v in lengths.items())
            raise ValueError(f"columns differ in length: {shown}")

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> Records:
        """A table from rows given as dicts, all with the same keys."""
        rows = list(rows)
        if not rows:
            raise ValueError("no rows: build an empty table as Records({name: [], ...})")
        names = list(rows[0])
        for i, row in enumerate(rows):
            if set(row) != set(names):
                missing = sorted(set(names) - set(row))
                extra = sorted(set(row) - set(names))
                raise ValueError(f"row {i} differs from row 0: missing {missing}, extra {extra}")
        return cls({name: [row[name] for row in rows] for name in names})

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self._columns)

    def require(self, names: Iterable[str], what: str = "records") -> None:
        """ValueError naming every column of `names` that the table lacks."""
        if missing := [n for n in names if n not in self._columns]:
            raise ValueError(
                f"{what} miss column(s): {', '.join(missing)} (have: {', '.join(self.columns)})"
            )

    def rows(self) -> Iterator[dict[str, Any]]:
        """The rows as dicts, in order."""
        for i in range(len(self)):
            yield {name: column[i] for name, column in self._columns.items()}

    def __getitem__(self, name: str) -> Any:
        self.require([name])
        return self._columns[name]

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()))) if self._columns else 0

    def __repr__(self) -> str:
        return f"Records({len(self)} rows: {', '.join(self.columns)})"


class Forecaster(Method):
    """Predicts future events (e.g. technology convergence) from historical records.

    What a host relies on (the conformance suite checks it):

    - `history_columns` and `query_columns` name the columns the method needs; `fit` and
      `predict` call `Records.require` with them first, so a missing column is a ValueError
      naming it.
    - `fit(history)` learns from the past and returns self; `predict(query)` returns a float
      tensor with one finite score per query row, higher = more likely to happen. Before
      `fit` it raises RuntimeError. Neither changes the records it is given.
    """

    interface = "forecaster"
    group = GROUPS["forecaster"]
    history_columns: ClassVar[tuple[str, ...]] = ()
    query_columns: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def fit(self, history: Records) -> Forecaster:
        """Learn from the historical records; returns self."""

    @abstractmethod
    def predict(self, query: Records) -> torch.Tensor:
        """Scores for the queried future events."""
