"""Patent records: the table technology-convergence forecasters read, its checks and its files.

A patent table is a `Records` with one row per patent:

| column | value | required |
| --- | --- | --- |
| `id` | the patent's number, a non-empty string, unique | yes |
| `year` | application (or priority) year, an int | yes |
| `assignee` | the applicant firm, a string | yes |
| `ipc` | its IPC codes, a list of strings ("F24F", "F24F 11/00", "F24F0011000000") | yes |
| `cited` | ids of the patents it cites (backward citations), a list of strings | yes |
| `text` | title and abstract | yes |
| `inventors`, `applicants`, `claims`, `family`, `nonpatent_refs` | counts, ints >= 0 | no |
| `functions` | TRIZ functions the patent performs, a list of strings | no |

`check_patents` validates a table and returns a copy with every IPC code cut to its subclass
("F24F 11/00" -> "F24F", the level the paper's network is built on); every error names the
record (its id and row). `read_patents` loads a CSV (lists separated by ";") or Parquet file
into such a table and `write_patents` writes the CSV form.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from yw_core.interfaces.forecaster import Records

REQUIRED = ("id", "year", "assignee", "ipc", "cited", "text")
COUNTS = ("inventors", "applicants", "claims", "family", "nonpatent_refs")
LISTS = ("ipc", "cited", "functions")
SEPARATOR = ";"

# section, class, subclass; then an optional group: "11/00", " 11/00" or WIPO's 10-digit form
IPC = re.compile(r"^([A-H]\d{2}[A-Z])(?:\s*\d{1,4}\s*/\s*\d{1,6}|\d{10})?$")


def ipc_subclass(code: Any) -> str:
    """The subclass ("F24F") of an IPC code at any level; ValueError when it is not one."""
    if isinstance(code, str) and (match := IPC.match(code.strip().upper())):
        return match.group(1)
    raise ValueError(f"malformed IPC code {code!r}: expected a code like 'F24F' or 'F24F 11/00'")


def check_patents(records: Records, what: str = "patents") -> Records:
    """The table with IPC codes as subclasses; ValueError naming the record on bad input.

    Checks: the required columns; ids non-empty and unique; years whole numbers; at least one
    well-formed IPC code per patent; lists as lists of strings; text a string; counts whole
    numbers >= 0. The caller's table is left as it is."""
    if not isinstance(records, Records):
        raise TypeError(f"{what} must be yw_core.interfaces.Records, not {type(records).__name__}")
    records.require(REQUIRED, what)
    if len(records) == 0:
        raise ValueError(f"{what} are empty")
    columns = {name: list(records[name]) for name in records.columns}
    seen: dict[str, int] = {}
    ipcs = []
    for i, pid in enumerate(columns["id"]):
        where = f"{what}: patent {pid!r} (row {i})"
        if not isinstance(pid, str) or not pid.strip():
            raise ValueError(f"{what}: row {i} has id {pid!r}; ids must be non-empty strings")
        if pid in seen:
            raise ValueError(f"{where} repeats the id of row {seen[pid]}")
        seen[pid] = i
        year = columns["year"][i]
        if isinstance(year, bool) or not (_number(year) and float(year).is_integer()):
            raise ValueError(f"{where} has year {year!r}; years must be whole numbers")
        columns["year"][i] = int(year)
        for name in LISTS:
            if name in columns:
                _check_list(columns[name][i], name, where)
        if not columns["ipc"][i]:
            raise ValueError(f"{where} has no IPC code")
        try:
            ipcs.append(list(dict.fromkeys(ipc_subclass(c) for c in columns["ipc"][i])))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if not isinstance(columns["text"][i], str):
            raise ValueError(f"{where} has text {columns['text'][i]!r}; text must be a string")
        if not isinstance(columns["assignee"][i], str):
            raise ValueError(f"{where} has assignee {columns['assignee'][i]!r}; expected a string")
        for name in COUNTS:
            if name in columns:
                value = columns[name][i]
                if isinstance(value, bool) or not (_number(value) and float(value).is_integer()):
                    raise ValueError(f"{where} has {name} {value!r}; expected a whole number")
                if value < 0:
                    raise ValueError(f"{where} has {name} {value!r}; counts must be >= 0")
                columns[name][i] = int(value)
    columns["ipc"] = ipcs
    return Records(columns)


def read_patents(path: str | Path) -> Records:
    """A checked patent table from a .csv (lists joined by ';') or .parquet file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no patent file at {path}")
    if path.suffix.lower() == ".parquet":
        rows = _read_parquet(path)
    elif path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    else:
        raise ValueError(f"{path}: patent files are .csv or .parquet, not {path.suffix!r}")
    if not rows:
        raise ValueError(f"{path} has no patents")
    if missing := [c for c in REQUIRED if c not in rows[0]]:
        raise ValueError(
            f"{path} misses column(s) {', '.join(missing)} (have: {', '.join(rows[0])}); "
            f"a patent file needs {', '.join(REQUIRED)}"
        )
    known = [c for c in (*REQUIRED, *COUNTS, "functions") if c in rows[0]]
    columns: dict[str, list] = {c: [] for c in known}
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        for name in known:
            try:
                columns[name].append(_parse(name, row[name]))
            except ValueError:
                raise ValueError(
                    f"{path}, line {line} (patent {row['id']!r}): column {name} has "
                    f"{row[name]!r}, expected {'a whole number' if name != 'year' else 'a year'}"
                ) from None
    return check_patents(Records(columns), what=str(path))


def write_patents(records: Records, path: str | Path) -> None:
    """Write a patent table as the CSV `read_patents` reads (atomically)."""
    from yw_core.atomic import atomic_write

    records = check_patents(records)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(records.columns)
    for row in records.rows():
        writer.writerow([SEPARATOR.join(v) if name in LISTS else v for name, v in row.items()])
    atomic_write(path, out.getvalue())


def firm_codes(records: Records, firm: str) -> set[str]:
    """The IPC subclasses a firm holds patents in."""
    return {c for a, codes in zip(records["assignee"], records["ipc"]) if a == firm for c in codes}


def _parse(name: str, value: str | None) -> Any:
    value = "" if value is None else value
    if name in LISTS:
        return [v.strip() for v in value.split(SEPARATOR) if v.strip()]
    if name == "year":
        return int(value)
    if name in COUNTS:  # an empty count cell reads as 0
        return int(value) if value.strip() else 0
    return value


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    try:
        import pandas
    except ImportError:
        raise ImportError(f"reading {path} needs pandas and pyarrow: pip install pyarrow") from None
    frame = pandas.read_parquet(path)
    rows = []
    for row in frame.to_dict("records"):
        rows.append({k: _from_parquet(k, v) for k, v in row.items()})
    return rows


def _from_parquet(name: str, value: Any) -> str:
    """A Parquet cell in the CSV's text form (lists may be stored as arrays or joined)."""
    if name in LISTS and not isinstance(value, str):
        return SEPARATOR.join(str(v) for v in (value if value is not None else ()))
    return "" if value is None else str(value)


def _check_list(value: Any, name: str, where: str) -> None:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"{where} has {name} {value!r}; expected a list of strings")
    if bad := [v for v in value if not isinstance(v, str)]:
        raise ValueError(f"{where} has {name} entries {bad!r}; expected strings")


def _number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, str)
