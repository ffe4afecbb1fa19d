"""Shared by the tcforecast tests: a small synthetic patent history and a fast configuration."""

import pytest

# a quick configuration for tests: three base models, 3 folds, a short fuser fit
FAST = {
    "base_models": ("rf", "lightgbm", "knn"),
    "keep": 2,
    "cv": 3,
    "fuser_epochs": 50,
    "topics": 8,
    "text_dim": 16,
    "node2vec_dim": 8,
}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one intra-op thread is faster than two, more so on a busy CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def fast():
    return dict(FAST)


@pytest.fixture(scope="session")
def synth():
    """20 IPC subclasses, 2010-2021, about 1,200 patents (seed 0)."""
    from yw_core.patent_synth import synthetic_patents

    return synthetic_patents(codes=20, years=(2010, 2021), patents_per_year=80, seed=0)


@pytest.fixture(scope="session")
def fitted(synth):
    """tcforecast (FAST) fitted on the synthetic history: forecast window from 2022."""
    from yw_plugin_tcforecast import TCForecast

    return TCForecast(**FAST).fit(synth.records)
