"""A fresh venv with yw-core and yw-plugin-aaa from the tree, then third-party plugins built outside
the tree: the user's path.

Slow (about a minute: it installs torch's CPU wheel into a new venv), so it runs once per session.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "yw-plugin-logit-noise"
TORCH = "torch==2.13.0"  # the CPU build on disk; an unpinned torch would pull a CUDA build


def _run(*cmd, cwd=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A new venv holding torch, yw-core from ./core, and two plugins built outside the tree."""
    tmp = tmp_path_factory.mktemp("clean")
    _run(sys.executable, "-m", "venv", tmp / "venv")
    bin_ = tmp / "venv" / "bin"
    _run(bin_ / "pip", "install", "-q", TORCH, "pytest")
    _run(bin_ / "pip", "install", "-q", "./core", "./plugins/aaa", cwd=ROOT)
    source = tmp / "src" / EXAMPLE.name
    shutil.copytree(EXAMPLE, source)
    _run(bin_ / "pip", "wheel", "-q", "--no-deps", "-w", tmp / "wheels", source)
    (wheel,) = (tmp / "wheels").glob("yw_plugin_logit_noise-*.whl")
    _run(bin_ / "pip", "install", "-q", wheel)
    scaffolded = tmp / "src" / "yw-plugin-my-attack"
    _run(
        bin_ / "yw-core", "new-plugin", "my-attack", "--interface", "attack", "--output", scaffolded
    )
    _run(bin_ / "pip", "install", "-q", scaffolded)
    return bin_


def test_example_wheel_and_scaffold_show_as_third_party(venv):
    rows = {r["name"]: r for r in json.loads(_run(venv / "yw-core", "list", "--json").stdout)}
    assert rows["logit-noise"]["source"] == "third-party"
    assert rows["logit-noise"]["interface"] == "defense"
    assert rows["logit-noise"]["distribution"] == "yw-plugin-logit-noise"
    assert rows["my-attack"]["interface"] == "attack"
    checked = json.loads(_run(venv / "yw-core", "list", "--check", "--json").stdout)
    statuses = {r["name"]: (r["status"], r["source"]) for r in checked}
    assert statuses == {
        "logit-noise": ("ok", "third-party"),
        "my-attack": ("ok", "third-party"),
        "aaa": ("ok", "first-party"),  # pip install ./core ./plugins/aaa
    }
    _run(venv / "yw-core", "doctor")


def test_info_shows_the_example_config(venv):
    out = _run(venv / "yw-core", "info", "logit-noise").stdout
    assert "sigma" in out and "0.1" in out
    assert "post_hoc: True" in out


def test_example_passes_its_tests_with_the_installed_pytest_plugin(venv):
    proc = _run(venv / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", EXAMPLE / "tests")
    assert " passed" in proc.stdout and "failed" not in proc.stdout
