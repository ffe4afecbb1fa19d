"""The yw-core defense conformance suite for SOME (its training is tested in test_protect.py)."""

from yw_core.testing import conformance_suite
from yw_plugin_some import SOME

TestSOME = conformance_suite(SOME, config_overrides={"epochs": 1, "progress": False})
