"""The yw-core defense conformance suite for UniG."""

from yw_core.testing import conformance_suite
from yw_plugin_unig import UniG

TestUniG = conformance_suite(UniG)
