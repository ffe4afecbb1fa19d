"""registry.toml stays in step with plugins/*/pyproject.toml and with the interfaces it names."""

import tomllib
from pathlib import Path

import pytest

from yw_core.catalogue import canonical, load_catalogue
from yw_core.groups import INTERFACE_OF_GROUP, KINDS

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = load_catalogue(ROOT / "registry.toml")
PLUGIN_DIRS = sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))


def test_root_registry_is_the_packaged_catalogue():
    packaged = ROOT / "core" / "src" / "yw_core" / "registry.toml"
    assert (ROOT / "registry.toml").read_bytes() == packaged.read_bytes()


def test_catalogue_covers_the_design_table():
    assert len(CATALOGUE) == 18  # 15 papers + yw-plugin-attacks + yw-plugin-baselines + yw-bench
    papers = [e for e in CATALOGUE.values() if "paper" in e]
    assert len(papers) == 15
    for entry in papers:
        assert {"title", "authors", "year", "venue", "arxiv_id"} <= set(entry["paper"])


@pytest.mark.parametrize("dist", sorted(CATALOGUE))
def test_entry_is_well_formed(dist):
    entry = CATALOGUE[dist]
    assert entry["distribution"].startswith("yw-plugin-") or entry["distribution"] == "yw-bench"
    assert entry["status"] in ("planned", "implemented")
    assert set(entry["methods"].values()) <= set(KINDS)
    # implemented exactly when its folder exists
    assert (entry["status"] == "implemented") == (ROOT / entry["path"]).is_dir()


@pytest.mark.parametrize("plugin", PLUGIN_DIRS, ids=lambda p: p.name)
def test_plugin_pyproject_matches_its_catalogue_entry(plugin):
    project = tomllib.loads((plugin / "pyproject.toml").read_text())["project"]
    entry = CATALOGUE.get(canonical(project["name"]))
    assert entry is not None, f"{project['name']} is missing from registry.toml"
    assert entry["path"] == f"plugins/{plugin.name}"
    declared = {
        name: INTERFACE_OF_GROUP[group]
        for group, items in project.get("entry-points", {}).items()
        if group in INTERFACE_OF_GROUP
        for name in items
    }
    assert declared == entry["methods"]
    assert any(dep.startswith("yw-core") for dep in project["dependencies"])


def test_tox_full_env_installs_every_plugin():
    """tox's `full` env runs every plugin's tests, so it must install every plugin in plugins/."""
    tox = (ROOT / "tox.ini").read_text()
    full = tox.split("[testenv:full]", 1)[1].split("\n[", 1)[0]
    for plugin in PLUGIN_DIRS:
        assert f"-e plugins/{plugin.name}" in full, f"tox full env misses plugins/{plugin.name}"
