"""The yw-core conformance suites, one line per baseline class."""

import pytest

from yw_core.testing import conformance_suite
from yw_plugin_baselines import PGDAT, RND, SAM, SWA, FastAT, OutputNoise

TestRND = conformance_suite(RND)
TestOutputNoise = conformance_suite(OutputNoise)
TestFastAT = conformance_suite(FastAT)
TestPGDAT = conformance_suite(PGDAT)
TestSAM = conformance_suite(SAM)
# the suite's one-step run ends before SWA's start, so finalize warns (tested in test_swa.py)
TestSWA = conformance_suite(SWA, pytestmark=pytest.mark.filterwarnings("ignore:SWA averaged"))
