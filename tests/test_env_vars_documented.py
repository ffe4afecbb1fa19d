"""Every YW_* environment variable the distributions' sources name is in docs/cli.md's
Environment table."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"\bYW_[A-Z][A-Z0-9_]*\b")


def _sources() -> list[Path]:
    return sorted(
        p
        for src in [ROOT / "core" / "src", *ROOT.glob("plugins/*/src")]
        for p in src.rglob("*.py")
        if "__pycache__" not in p.parts
    )


def _documented() -> set[str]:
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text.split("\n## Environment\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(YW_[A-Z0-9_]+)", section, flags=re.M))


def test_every_yw_variable_in_the_sources_is_in_the_environment_table():
    used: dict[str, str] = {}
    for path in _sources():
        for name in NAME.findall(path.read_text()):
            used.setdefault(name, str(path.relative_to(ROOT)))
    assert "YW_LOAD_PLUGINS" in used, "the scan found nothing: are the sources where it looks?"
    missing = {name: where for name, where in used.items() if name not in _documented()}
    assert not missing, f"add these to docs/cli.md's ## Environment table: {missing}"


def test_the_table_lists_no_variable_the_sources_do_not_name():
    used = {n for p in _sources() for n in NAME.findall(p.read_text())}
    assert _documented() <= used, f"not read anywhere: {sorted(_documented() - used)}"
