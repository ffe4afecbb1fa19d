"""The yw-core weight-optimizer conformance suite, one line per class."""

from yw_core.testing import conformance_suite
from yw_plugin_marwp import ARWP, MARWP, MRWP

TestMRWP = conformance_suite(MRWP)
TestARWP = conformance_suite(ARWP)
TestMARWP = conformance_suite(MARWP)
