"""The yw-core defense conformance suite for DIO (its training is tested in test_training.py)."""

from yw_core.testing import conformance_suite
from yw_plugin_dio import DIO

TestDIO = conformance_suite(DIO)
