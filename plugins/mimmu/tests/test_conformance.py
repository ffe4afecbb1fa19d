"""The yw-core Unlearner conformance suite for MiMMU (diffusion kind; two epochs keep it fast)."""

from yw_core.testing import conformance_suite
from yw_plugin_mimmu import MiMMU

TestMiMMU = conformance_suite(MiMMU, config_overrides={"epochs": 2, "lr": 1e-3})
TestMiMMULogSNR = conformance_suite(
    MiMMU, config_overrides={"epochs": 2, "lr": 1e-3, "weighting": "log-snr"}
)
