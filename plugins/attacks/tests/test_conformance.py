"""The yw-core attack conformance suite, one line per attack class (all do L-inf and L2)."""

from yw_core.testing import conformance_suite
from yw_plugin_attacks import (
    FGSM,
    FGSMRS,
    NES,
    PGD,
    Bandits,
    BiSquare,
    SignHunter,
    SimBA,
    Square,
    UpSquare,
)

BOTH = ("linf", "l2")

TestSquare = conformance_suite(Square, norms=BOTH)
TestSimBA = conformance_suite(SimBA, norms=BOTH)
TestNES = conformance_suite(NES, norms=BOTH, config_overrides={"q": 2, "lr": 0.05})  # 5 q a step
TestBandits = conformance_suite(Bandits, norms=BOTH)
TestSignHunter = conformance_suite(SignHunter, norms=BOTH)
TestFGSM = conformance_suite(FGSM, norms=BOTH)
TestFGSMRS = conformance_suite(FGSMRS, norms=BOTH)
TestPGD = conformance_suite(PGD, norms=BOTH)
TestUpSquare = conformance_suite(UpSquare, norms=BOTH)
TestBiSquare = conformance_suite(BiSquare, norms=BOTH)
