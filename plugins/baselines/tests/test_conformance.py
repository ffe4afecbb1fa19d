"""The yw-core defense conformance suite, one line per baseline class."""

from yw_core.testing import conformance_suite
from yw_plugin_baselines import RND, OutputNoise

TestRND = conformance_suite(RND)
TestOutputNoise = conformance_suite(OutputNoise)
