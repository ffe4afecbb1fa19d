"""The yw-core conformance suites, one line per baseline class."""

import pytest

from yw_core.testing import conformance_suite
from yw_plugin_baselines import (
    ER,
    ERACE,
    ESD,
    FT,
    GA,
    KNN,
    MIR,
    MSP,
    ODIN,
    PGDAT,
    RL,
    RND,
    SAM,
    SWA,
    ConceptAblation,
    Energy,
    FastAT,
    FineTune,
    GradNorm,
    L1Sparse,
    Mahalanobis,
    OutputNoise,
    ReAct,
    Retrain,
    SalUn,
)

TestRND = conformance_suite(RND)
TestOutputNoise = conformance_suite(OutputNoise)
TestFastAT = conformance_suite(FastAT)
TestPGDAT = conformance_suite(PGDAT)
TestSAM = conformance_suite(SAM)
# the suite's one-step run ends before SWA's start, so finalize warns (tested in test_swa.py)
TestSWA = conformance_suite(SWA, pytestmark=pytest.mark.filterwarnings("ignore:SWA averaged"))
TestMSP = conformance_suite(MSP)
TestODIN = conformance_suite(ODIN)
TestEnergy = conformance_suite(Energy)
TestMahalanobis = conformance_suite(Mahalanobis)
TestKNN = conformance_suite(KNN, config_overrides={"k": 5})  # the suite fits on 32 inputs
TestGradNorm = conformance_suite(GradNorm)
TestReAct = conformance_suite(ReAct)

# unlearners: one epoch in batches of 8 keeps each suite well under a second
TINY = {"epochs": 1, "batch_size": 8}
TestRetrain = conformance_suite(Retrain, config_overrides=TINY)
TestFT = conformance_suite(FT, config_overrides=TINY)
TestGA = conformance_suite(GA, config_overrides=TINY)
TestRL = conformance_suite(RL, config_overrides=TINY)
TestL1Sparse = conformance_suite(L1Sparse, config_overrides=TINY)
TestSalUn = conformance_suite(SalUn, config_overrides=TINY)

# online continual learners: the suite's two-task stream of 32 samples
TestFineTune = conformance_suite(FineTune)
TestER = conformance_suite(ER)
TestMIR = conformance_suite(MIR)
TestERACE = conformance_suite(ERACE)
TestESD = conformance_suite(ESD, config_overrides={"epochs": 2, "lr": 1e-3})
TestConceptAblation = conformance_suite(
    ConceptAblation, config_overrides={"epochs": 2, "lr": 1e-3, "anchor": 1}
)
