"""The yw-core defense conformance suite for AAA."""

from yw_core.testing import conformance_suite
from yw_plugin_aaa import AAA

TestAAA = conformance_suite(AAA)
