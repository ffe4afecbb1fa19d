"""The fixtures yw-core's pytest plugin gives plugin authors."""

import json

import torch

from yw_core import cli
from yw_core.interfaces import Capabilities, Defense, MethodConfig, check_method_class


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


def test_testing_exports_every_suite_and_fixture():
    import yw_core.testing as testing
    from yw_core.interfaces import INTERFACES

    for name in testing.__all__:
        assert getattr(testing, name) is not None, name
    assert set(testing.SUITES) == set(INTERFACES)
    for interface, suite in testing.SUITES.items():
        assert issubclass(suite, testing.MethodConformance)
        module = f"yw_core.testing.{interface}"
        assert suite.__module__ == module, f"{suite.__name__} should live in {module}"
    assert testing.protocol_suite.__module__ == "yw_core.testing.protocol"


def test_conformance_suite_picks_the_suite_by_interface():
    from yw_core.testing import DefenseConformance, MethodConformance, conformance_suite

    suite = conformance_suite(Identity, config_overrides={"x": 1})
    assert suite.__name__ == "TestIdentityConformance"
    assert issubclass(suite, DefenseConformance) and suite.interface is Defense
    assert suite.method is Identity and suite.config_overrides == {"x": 1}

    class Stray:
        pass

    stray = conformance_suite(Stray)
    assert stray.__bases__ == (MethodConformance,) and stray.interface is None
    assert check_method_class(Stray) == [
        f"{Stray!r} is not a subclass of yw_core.interfaces.Method"
    ]


def test_prototype_problem_reads_only_the_top_half():
    from yw_core.testing import prototype_problem

    model, data = prototype_problem(n=8, num_classes=4, seed=0)
    x, y = data.tensors
    assert x.shape == (8, 1, 8, 8) and 0 <= x.min() and x.max() <= 1
    assert torch.equal(model(x).argmax(1), y)
    changed = x.clone()
    changed[:, :, 4:] = torch.rand(8, 1, 4, 8)
    assert torch.equal(model(changed), model(x))


def test_random_features_fit_the_schema_and_repeat_with_the_seed():
    from yw_core.interfaces import FeatureField, RecSchema
    from yw_core.testing import random_features

    schema = RecSchema(
        (FeatureField("u", "user", cardinality=3), FeatureField("v", "item", "dense", dim=2))
    )
    user = random_features(schema, "user", 50, seed=1)
    assert schema.check_features("user", user) == 50 and set(user["u"].tolist()) == {0, 1, 2}
    items = random_features(schema, "item", 4, seed=1)
    assert items["v"].shape == (4, 2)
    assert torch.equal(random_features(schema, "item", 4, seed=1)["v"], items["v"])
