"""The yw-core weight-optimizer conformance suite for RWP."""

from yw_core.testing import conformance_suite
from yw_plugin_rwp import RWP

TestRWP = conformance_suite(RWP)
