"""pytest plugin of yw-core (entry point `pytest11`): fixtures and markers for plugin tests.

Fixtures:
- `yw_runtime`: a seeded `Runtime` on `YW_TEST_DEVICE` (default cpu);
- `yw_seed`: seeds python, numpy and torch to 0 and returns the seed;
- `yw_registry`: blocks entry-point discovery for the test; call it with method classes to get
  an in-memory registry that `Registry.discover()` (and so the CLI) returns instead.

Markers: `gpu`, `slow`, `distributed`. Importing this module must stay cheap (no torch): pytest
loads it in every environment where yw-core is installed.
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped without one)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "distributed: launches several processes with torchrun")


@pytest.fixture
def yw_seed():
    from yw_core.runtime import Runtime

    Runtime(device="cpu", seed=0, distributed=False)
    return 0


@pytest.fixture
def yw_runtime():
    from yw_core.runtime import Runtime

    runtime = Runtime(device=os.environ.get("YW_TEST_DEVICE", "cpu"), seed=0, distributed=False)
    yield runtime
    runtime.close()


@pytest.fixture
def yw_registry(monkeypatch):
    from yw_core import hooks
    from yw_core.registry import Registry

    current = {"registry": Registry([])}

    def make(*classes, distribution: str = "in-memory"):
        current["registry"] = Registry.from_classes(classes, distribution=distribution)
        return current["registry"]

    def discover(cls, environ=None):
        return current["registry"]

    monkeypatch.setattr(Registry, "discover", classmethod(discover))
    hooks.set_plugin_manager(hooks.make_plugin_manager(load_entry_points=False))
    try:
        yield make
    finally:
        hooks.set_plugin_manager(None)
