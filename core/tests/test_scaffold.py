"""`yw-core new-plugin`: the skeleton is a valid distribution with a concrete method class."""

import importlib.util
import inspect
import re
import sys
import tomllib
import typing
from pathlib import Path

import pytest

from yw_core.cli import main
from yw_core.interfaces import INTERFACES, check_method_class
from yw_core.scaffold import NOT_WRITTEN, plugin_names, scaffold

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
TUTORIAL_PLUGIN = Path(__file__).resolve().parents[2] / "docs/examples/yw-plugin-logit-noise"


def _load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("interface", sorted(INTERFACES))
def test_skeleton_for_each_interface_is_a_valid_method(tmp_path, interface):
    name = f"my-{interface.replace('_', '-')}"
    names = plugin_names(name)
    out = scaffold(name, interface, tmp_path / "plugin")
    meta = tomllib.loads((out / "pyproject.toml").read_text())
    group = INTERFACES[interface].group
    assert meta["project"]["name"] == names["distribution"]
    assert meta["project"]["entry-points"][group] == {
        name: f"{names['package']}:{names['class_name']}"
    }
    assert "yw-core>=1,<2" in meta["project"]["dependencies"]
    module_path = out / "src" / names["package"] / f"{names['module']}.py"
    module = _load_module(module_path, f"scaffold_{names['module']}")
    cls = getattr(module, names["class_name"])
    assert check_method_class(cls, INTERFACES[interface]) == []
    assert (out / "tests" / "test_conformance.py").exists()
    for method_name in INTERFACES[interface].__abstractmethods__:
        stub = getattr(cls, method_name)
        signature = inspect.signature(stub)
        assert signature == inspect.signature(getattr(INTERFACES[interface], method_name))
        typing.get_type_hints(stub)  # every name in the signature is imported
        named = [p.name for p in signature.parameters.values() if p.kind in _NAMED]
        with pytest.raises(NotImplementedError, match=f"^{method_name} {NOT_WRITTEN}$"):
            stub(**dict.fromkeys(named))  # the conformance test turns this into an xfail


def test_refuses_bad_name_and_existing_directory(tmp_path):
    with pytest.raises(ValueError, match="must match"):
        scaffold("Bad Name", "defense", tmp_path / "x")
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        scaffold("ok-name", "defense", tmp_path / "taken")
    with pytest.raises(ValueError, match="unknown interface"):
        scaffold("ok-name", "nosuch", tmp_path / "y")


def test_distribution_option_names_the_package_and_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = scaffold("energy", "ood_scorer", distribution="yw-plugin-energy-ood")
    assert out == Path("yw-plugin-energy-ood")
    meta = tomllib.loads((out / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "yw-plugin-energy-ood"
    assert meta["project"]["entry-points"]["yw.ood_scorers"] == {
        "energy": "yw_plugin_energy_ood:Energy"
    }
    assert (out / "src" / "yw_plugin_energy_ood" / "energy.py").is_file()
    names = plugin_names("energy", "yw-plugin-energy-ood", "energy_ood")
    assert (names["distribution"], names["package"]) == ("yw-plugin-energy-ood", "energy_ood")
    assert plugin_names("energy", package="energy_ood")["distribution"] == "yw-plugin-energy"


@pytest.mark.parametrize(
    ("name", "distribution", "package", "message"),
    [
        ("2step", None, None, "gives the module name '2step', which is not a Python identifier"),
        ("ok", "-bad", None, "distribution name '-bad' is not valid"),
        ("ok", "yw plugin", None, "distribution name 'yw plugin' is not valid"),
        ("ok", "1-plugin", None, "'1_plugin' is not a Python identifier (made from the distri"),
        ("ok", None, "my-pkg", "package name 'my-pkg' is not a Python identifier$"),
        ("ok", None, "class", "package name 'class' is not a Python identifier$"),
    ],
)
def test_invalid_names_are_refused_with_the_reason(name, distribution, package, message):
    with pytest.raises(ValueError, match=re.escape(message).replace(r"\$", "$")):
        plugin_names(name, distribution, package)


def test_pyproject_has_the_tutorials_test_extra_pytest_settings_and_license(tmp_path):
    out = scaffold("energy", "ood_scorer", tmp_path / "plugin")
    meta = tomllib.loads((out / "pyproject.toml").read_text())
    tutorial = tomllib.loads((TUTORIAL_PLUGIN / "pyproject.toml").read_text())
    for key in ("license", "optional-dependencies", "requires-python", "dependencies"):
        assert meta["project"][key] == tutorial["project"][key], key
    assert meta["tool"] == tutorial["tool"] | {"hatch": meta["tool"]["hatch"]}
    assert meta["build-system"] == tutorial["build-system"]
    readme = (out / "README.md").read_text()
    assert "method of the `ood_scorer` interface" in readme
    assert '.venv/bin/pip install -e ".[test]"' in readme


def test_cli_prints_a_next_line_for_a_fresh_venv(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["new-plugin", "my-defense", "--interface", "defense"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "Created yw-plugin-my-defense",
        "Next: python -m venv .venv && .venv/bin/pip install -e 'yw-plugin-my-defense[test]' "
        "&& .venv/bin/pytest yw-plugin-my-defense/tests",
        "(if your package index lacks yw-core, add its folder in a clone of yw: "
        ".venv/bin/pip install /path/to/yw/core -e 'yw-plugin-my-defense[test]')",
    ]
    assert err == ""
    assert main(["new-plugin", "x", "--interface", "defense", "--distribution", "x_"]) == 2
    assert "yw-core new-plugin: distribution name 'x_' is not valid" in capsys.readouterr().err


def test_cli_warns_when_the_name_is_reserved_for_a_first_party_plugin(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    args = ["new-plugin", "energy", "--interface", "ood_scorer", "--output", "energy-ood"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Created energy-ood\n")
    assert err == (
        "yw-core new-plugin: warning: the name 'energy' is reserved for the first-party "
        "yw-plugin-baselines (ood_scorer in registry.toml); installed together, the two clash: "
        "choose another name\n"
    )
