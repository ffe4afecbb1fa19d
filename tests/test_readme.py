"""The README opens with the two commands, and CI runs its test command verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _opening_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```\n(.*?)\n```", text, flags=re.S)
    return blocks[:2]


def test_readme_opens_with_two_one_line_commands():
    text = (ROOT / "README.md").read_text()
    head = text.split("\n\n", 3)
    assert head[0].startswith("# ")
    run, test = _opening_commands()
    setup = "python3 -m venv .venv && .venv/bin/pip install -q torch==2.13.0 "
    for command in (run, test):
        assert "\n" not in command
        assert command.startswith(setup)
    assert "yw-core" in run and "pytest" in test


def test_ci_runs_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _opening_commands()[1] in ci_lines
