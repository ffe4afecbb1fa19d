"""The yw-core conformance suite for Sub-AT (metadata and Config; training is in test_subat.py)."""

from yw_core.testing import conformance_suite
from yw_plugin_subat import SubAT

TestSubAT = conformance_suite(SubAT)
