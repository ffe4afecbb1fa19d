"""The yw-core Forecaster conformance suite for tcforecast, on small synthetic patents."""

from yw_core.testing import conformance_suite
from yw_plugin_tcforecast import TCForecast

FAST = {"base_models": ("rf", "lightgbm", "knn"), "keep": 2, "cv": 3, "fuser_epochs": 50}


def make_history(self):
    from yw_core.patent_synth import synthetic_patents

    return synthetic_patents(codes=20, years=(2010, 2021), patents_per_year=80, seed=1).records


def make_query(self):
    from yw_core.interfaces import Records

    pairs = [("A01B", "C12N"), ("A61K", "B25J"), ("B60L", "E04B"), ("A23L", "C07K")]
    return Records({"year": [2022] * 4, "a": [a for a, _ in pairs], "b": [b for _, b in pairs]})


TestTCForecast = conformance_suite(
    TCForecast, config_overrides=FAST, make_history=make_history, make_query=make_query
)
