"""The yw-core Interpreter conformance suite for AnomalyAID, DeepLIFT and gradient x input: its
default problems are split classifiers, which fit and explain read unchanged."""

from yw_core.testing import conformance_suite
from yw_plugin_anomalyaid import AnomalyAID

TestAnomalyAID = conformance_suite(AnomalyAID, config_overrides={"pfi_repeats": 2})
TestAnomalyAIDGradXInput = conformance_suite(
    AnomalyAID, config_overrides={"pfi_repeats": 2, "local": "grad_x_input"}
)
