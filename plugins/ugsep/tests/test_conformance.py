"""The yw-core RecModel conformance suite for RankMixer and UG-Sep (small sizes for speed)."""

from yw_core.testing import conformance_suite
from yw_plugin_ugsep import RankMixer, UGSep

SMALL = {"tokens": 4, "width": 16, "layers": 2, "embedding_dim": 8}

TestRankMixer = conformance_suite(RankMixer, config_overrides=SMALL)
TestUGSep = conformance_suite(UGSep, config_overrides=SMALL)
TestUGSepNoCompensation = conformance_suite(
    UGSep, config_overrides={**SMALL, "compensation": False}
)
TestUGSep3to1 = conformance_suite(UGSep, config_overrides={**SMALL, "ug_ratio": "3:1"})
