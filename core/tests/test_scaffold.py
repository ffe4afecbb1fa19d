"""`yw-core new-plugin`: the skeleton is a valid distribution with a concrete method class."""

import importlib.util
import sys
import tomllib

import pytest

from yw_core.interfaces import INTERFACES, check_method_class
from yw_core.scaffold import plugin_names, scaffold


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


def test_refuses_bad_name_and_existing_directory(tmp_path):
    with pytest.raises(ValueError, match="must match"):
        scaffold("Bad Name", "defense", tmp_path / "x")
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        scaffold("ok-name", "defense", tmp_path / "taken")
    with pytest.raises(ValueError, match="unknown interface"):
        scaffold("ok-name", "nosuch", tmp_path / "y")
