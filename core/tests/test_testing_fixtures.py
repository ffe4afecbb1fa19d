"""The fixtures yw-core's pytest plugin gives plugin authors."""

import json

import torch

from yw_core import cli
from yw_core.interfaces import Capabilities, Defense, MethodConfig


class Identity(Defense):
    name = "identity"
    summary = "Returns the model unchanged."
    capabilities = Capabilities(post_hoc=True)

    class Config(MethodConfig):
        pass

    def protect(self, model, *, data=None, runtime):
        return model


def test_yw_registry_blocks_discovery_and_serves_in_memory_methods(yw_registry, capsys):
    cli.main(["list", "--json"])
    assert json.loads(capsys.readouterr().out) == []
    registry = yw_registry(Identity)
    assert registry.load("identity") is Identity
    cli.main(["list", "--check", "--json"])
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["name"], row["status"], row["distribution"]) == ("identity", "ok", "in-memory")
    assert cli.main(["info", "identity"]) == 0
    assert "Returns the model unchanged." in capsys.readouterr().out


def test_yw_seed_makes_torch_reproducible(yw_seed):
    first = torch.rand(3)
    torch.manual_seed(yw_seed)
    assert torch.equal(first, torch.rand(3))


def test_yw_runtime_is_cpu_and_seeded(yw_runtime):
    assert yw_runtime.device.type == "cpu"
    assert yw_runtime.seed == 0


def test_pytest_plugin_import_is_light():
    """pytest loads yw_core.testing.plugin in every environment with yw-core: no torch there."""
    import subprocess
    import sys

    code = "import sys, yw_core.testing.plugin, yw_core.testing; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_linear_problem_labels_are_the_models_predictions():
    from yw_core.testing import linear_problem

    model, x, y = linear_problem(n=8, seed=3)
    assert x.shape == (8, 3, 8, 8) and 0.3 <= x.min() and x.max() <= 0.7
    assert torch.equal(model(x).argmax(1), y)
    assert torch.allclose(model(x), x.flatten(1) @ model.weight.T)
