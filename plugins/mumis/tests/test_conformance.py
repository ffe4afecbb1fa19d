"""The yw-core Unlearner conformance suite for MUMis (a 3-step cap keeps it fast)."""

from yw_core.testing import conformance_suite
from yw_plugin_mumis import MUMis

TestMUMis = conformance_suite(MUMis, config_overrides={"max_steps": 3})
TestMUMisMeanOther = conformance_suite(MUMis, config_overrides={"max_steps": 3, "other": "mean"})
