"""The yw-core ContinualLearner conformance suite for ER-LAS and MIR-LAS (small buffers, so
that replay and retrieval run on the suite's 4-batch stream)."""

from yw_core.testing import conformance_suite
from yw_plugin_las import ERLAS, MIRLAS

SMALL = {"buffer_size": 12, "minibatch_size": 4}

TestERLAS = conformance_suite(ERLAS, config_overrides=SMALL)
TestERLASWindow3 = conformance_suite(ERLAS, config_overrides={**SMALL, "window": 3})
TestMIRLAS = conformance_suite(MIRLAS, config_overrides={**SMALL, "mir_candidates": 8})
