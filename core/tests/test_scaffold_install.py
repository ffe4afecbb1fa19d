"""A scaffold of each interface installs into a fresh venv, is discovered there, and its own
tests run green: the author's first `pytest` passes before any method is written.

Offline and cheap: each venv is made without pip and sees this environment's packages (torch,
pydantic, pytest, hatchling, yw-core) through a .pth file, minus the first-party plugins, so
yw-core finds only the plugin installed into it. pip builds and installs the plugin's wheel
(an editable install would need hatchling's `editables`, which only build isolation fetches).
"""

import json
import os
import re
import site
import subprocess
import sys
from pathlib import Path

import pytest

from yw_core.interfaces import INTERFACES
from yw_core.scaffold import plugin_names, scaffold

FIRST_PARTY = re.compile(r"yw_(plugin_|bench)")  # dist-info, package or .pth of a yw-plugin-*


@pytest.fixture(scope="module")
def base_site(tmp_path_factory) -> Path:
    """This environment's site-packages without the first-party plugins, as links."""
    base = tmp_path_factory.mktemp("base-site")
    for directory in site.getsitepackages():
        for entry in Path(directory).iterdir():
            if not FIRST_PARTY.search(entry.name) and not (base / entry.name).exists():
                (base / entry.name).symlink_to(entry)
    return base


def _run(*cmd, cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YW_", "PYTHON", "PIP_"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["XDG_CACHE_HOME"] = str(cwd / ".cache")  # stevedore's entry-point cache
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _fresh_venv(path: Path, base_site: Path) -> tuple[Path, Path]:
    """A venv without pip that sees `base_site`: its python and its site-packages."""
    _run(sys.executable, "-m", "venv", "--without-pip", path, cwd=path.parent)
    (purelib,) = path.glob("lib/python*/site-packages")
    (purelib / "yw_test_base.pth").write_text(f"import site; site.addsitedir({str(base_site)!r})\n")
    return path / "bin" / "python", purelib


@pytest.mark.parametrize("interface", sorted(INTERFACES))
def test_scaffold_installs_into_a_fresh_venv_and_its_tests_pass(tmp_path, base_site, interface):
    name = f"my-{interface.replace('_', '-')}"
    names = plugin_names(name)
    scaffold(name, interface, tmp_path / "plugin")
    python, purelib = _fresh_venv(tmp_path / "venv", base_site)
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--no-index", "--no-deps"]
    _run(*pip, "--no-build-isolation", "./plugin[test]", cwd=tmp_path)
    assert (purelib / names["package"] / "__init__.py").is_file()  # the venv's copy is imported
    (metadata,) = purelib.glob("*.dist-info/METADATA")
    assert "Provides-Extra: test" in metadata.read_text()  # pip install -e "DIR[test]" works

    listed = json.loads(_run(python, "-m", "yw_core.cli", "list", "--json", cwd=tmp_path).stdout)
    assert [(e["name"], e["interface"], e["distribution"], e["source"]) for e in listed] == [
        (name, interface, names["distribution"], "third-party")
    ]

    pytest_ = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    summary = _run(*pytest_, "plugin/tests", cwd=tmp_path).stdout.strip().splitlines()[-1]
    assert " passed" in summary and " xfailed" in summary, summary
    assert not re.search(r"\d+ (failed|errors?)\b", summary), summary
