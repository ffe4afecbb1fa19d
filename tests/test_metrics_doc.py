"""docs/metrics.md stays true: it names every public name of yw_core.metrics, and each example
prints exactly the output shown under it."""

import contextlib
import io
import re
from pathlib import Path

import pytest

import yw_core.metrics

PAGE = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
EXAMPLE = re.compile(r"```python\n(.*?)```\n\n```text\n(.*?)```", re.S)


def test_the_page_names_every_public_metric():
    text = PAGE.read_text()
    missing = [name for name in yw_core.metrics.__all__ if f"`{name}" not in text]
    assert not missing, f"docs/metrics.md does not document {missing}"


def _examples():
    """(code, output) of each example, with the heading of its section as the test id."""
    text = PAGE.read_text()
    found = [
        pytest.param(*m.groups(), id=re.findall(r"^## (.+)$", text[: m.start()], re.M)[-1])
        for m in EXAMPLE.finditer(text)
    ]
    assert len(found) == 9, "one example with its output per group"
    return found


@pytest.mark.parametrize("code,expected", _examples())
def test_each_example_prints_what_the_page_shows(code, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the calibration example saves a figure
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(PAGE), "exec"), {"__name__": "__main__"})
    assert out.getvalue() == expected
