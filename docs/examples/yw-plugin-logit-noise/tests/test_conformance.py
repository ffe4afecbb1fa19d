"""yw-core's conformance suite for LogitNoise: metadata, config and the post-hoc call shape."""

from yw_core.testing import conformance_suite

from yw_plugin_logit_noise import LogitNoise

TestConformance = conformance_suite(LogitNoise)
