"""A fresh venv with yw-core, yw-plugin-aaa, yw-bench and yw-plugin-attacks from the tree, then
third-party plugins and protocols built outside the tree: the user's path.

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
PROTOCOL = ROOT / "docs" / "examples" / "yw-bench-calibration"
BROKEN = """[build-system]
requires = ["hatchling>=1.18"]
build-backend = "hatchling.build"

[project]
name = "yw-bench-broken"
version = "0.1.0"

[project.entry-points."yw.benches"]
broken = "yw_bench_broken:NoSuchProtocol"

[tool.hatch.build.targets.wheel]
packages = ["yw_bench_broken"]
"""
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
    _run(bin_ / "pip", "install", "-q", "./core", "./plugins/aaa", "./plugins/bench", cwd=ROOT)
    _run(bin_ / "pip", "install", "-q", "./plugins/attacks", cwd=ROOT)
    for example in (EXAMPLE, PROTOCOL):
        source = tmp / "src" / example.name
        shutil.copytree(example, source)
        _run(bin_ / "pip", "wheel", "-q", "--no-deps", "-w", tmp / "wheels", source)
    for wheel in (tmp / "wheels").glob("*.whl"):
        _run(bin_ / "pip", "install", "-q", "--no-deps", wheel)
    broken = tmp / "src" / "yw-bench-broken"
    (broken / "yw_bench_broken").mkdir(parents=True)
    (broken / "yw_bench_broken" / "__init__.py").write_text('"""Declares a class it lacks."""\n')
    (broken / "pyproject.toml").write_text(BROKEN)
    _run(bin_ / "pip", "install", "-q", "--no-deps", broken)
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
    methods = {k: v for k, v in statuses.items() if k in ("logit-noise", "my-attack", "aaa")}
    assert methods == {
        "logit-noise": ("ok", "third-party"),
        "my-attack": ("ok", "third-party"),
        "aaa": ("ok", "first-party"),  # pip install ./core ./plugins/aaa
    }


def test_info_shows_the_example_config(venv):
    out = _run(venv / "yw-core", "info", "logit-noise").stdout
    assert "sigma" in out and "0.1" in out
    assert "post_hoc: True" in out


def test_example_passes_its_tests_with_the_installed_pytest_plugin(venv):
    proc = _run(venv / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", EXAMPLE / "tests")
    assert " passed" in proc.stdout and "failed" not in proc.stdout


def test_third_party_protocol_lists_and_runs_beside_a_broken_one(venv, tmp_path):
    listed = _run(venv / "yw-core", "bench", "--list").stdout
    rows = {line.split()[0]: line.split() for line in listed.splitlines()[1:]}
    assert rows["calibration"][1:4] == ["yw-bench-calibration", "0.1.0", "ok"]
    assert rows["defense"][1:4] == ["yw-bench", "1.0.0", "ok"]
    assert rows["broken"][3] == "broken"
    out = tmp_path / "calibration"
    args = ["--n", "30", "--sigmas", "0,0.3", "--no-progress", "--out", out]
    table = _run(venv / "yw-core", "bench", "calibration", *args).stdout
    assert "sigma=0.3" in table and "aaa" in table
    saved = json.loads((out / "results.json").read_text())
    assert saved["manifest"]["versions"]["yw-bench-calibration"] == "0.1.0"
    failed = subprocess.run(
        [venv / "yw-core", "bench", "broken"], capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 2 and "NoSuchProtocol" in failed.stderr
    doctor = subprocess.run([venv / "yw-core", "doctor"], capture_output=True, text=True)
    assert doctor.returncode == 1 and "broken" in doctor.stdout + doctor.stderr
    tiny = ["--methods", "aaa", "--attacks", "square", "--queries", "10", "--n", "20"]
    defense = _run(venv / "yw-core", "bench", "defense", *tiny, "--no-progress", "--out", out)
    assert "aaa" in defense.stdout and "square" in defense.stdout
