"""The yw-core OOD-scorer conformance suite for LowDimGrad: the default (PCA basis, KNN), the
forward+backward ensemble and the average-gradient basis. k = 8 fits the suite's 32-input data."""

from yw_core.testing import conformance_suite
from yw_plugin_lowdim_grad import LowDimGrad

TestLowDimGrad = conformance_suite(LowDimGrad, config_overrides={"k": 8})
TestLowDimGradForward = conformance_suite(
    LowDimGrad, config_overrides={"k": 8, "forward_weight": 1.0}
)
TestLowDimGradAvgGrad = conformance_suite(LowDimGrad, config_overrides={"basis": "avg_grad"})
