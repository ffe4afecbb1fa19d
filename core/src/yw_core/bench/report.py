"""Helpers protocols share to present a report: aligned text tables, percentages, and the
atomic writing of results.json, results.txt and figures (plus plugin reporters)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from yw_core.atomic import atomic_write


def columns(header: list[str], rows: list[list[str]]) -> list[str]:
    """Lines of an aligned table: the first two columns left-aligned, the rest right-aligned."""
    widths = [max(len(x) for x in col) for col in zip(header, *rows, strict=True)]
    return [
        "  ".join(x.ljust(w) if i < 2 else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths)))
        for r in [header, *rows]
    ]


def pct(value, digits: int = 1) -> str:
    """A fraction as a percentage string; '-' for None."""
    return "-" if value is None else f"{100 * value:.{digits}f}"


def figure_bytes(fig) -> bytes:
    """A matplotlib Figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    return buffer.getvalue()


def write_report(report: dict[str, Any], out: Path, table: str, figures: dict) -> None:
    """Write results.json, results.txt and each figure (file name -> Figure) atomically, then
    let each reporter a plugin registered (`yw_register_reporters`) add its files.

    Everything is rendered before the first file is written, so a failing plot leaves an
    earlier run's files as they were. A reporter is called as `reporter(report, out)`."""
    from yw_core import hooks

    rendered = {
        "results.json": json.dumps(report, indent=2, sort_keys=True) + "\n",
        "results.txt": table,
        **{name: figure_bytes(fig) for name, fig in figures.items()},
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, content in rendered.items():
        atomic_write(out / name, content)
    for reporter in hooks.collect("yw_register_reporters").values():
        reporter(report, out)
