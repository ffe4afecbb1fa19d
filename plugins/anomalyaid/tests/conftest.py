"""Shared by the AnomalyAID tests: synthetic flows with known truth and a fast configuration."""

import pytest
import torch

# stage 1 trains a fresh FCN on ~160 labelled rows: lr 1e-2 gets it past "all benign" in the
# default 10 epochs (1e-3 does not); 5 shuffles per feature keep the permutation importance cheap
FAST = {"lr": 1e-2, "pfi_repeats": 5}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small tensors: one intra-op thread is faster than two, more so on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def runtime():
    from yw_core.runtime import Runtime

    return Runtime(device="cpu", seed=0, distributed=False)


def flows(seed: int = 0, n: int = 1000, kinds=("dos", "scan", "exfiltration")):
    """Standardised synthetic flows, 10% anomalies, 20% of the labels kept (-1 elsewhere)."""
    from yw_core.flows import synthetic_flows

    return synthetic_flows(
        n, anomaly_share=0.1, kinds=kinds, label_fraction=0.2, seed=seed
    ).standardise()


def train(data, model=None, **overrides):
    """(trained model, history, interpreter): train_detector with FAST and `overrides` on `data`
    (a Flows), from a seeded FCN unless `model` is given, with a runtime seeded 0."""
    from yw_core.runtime import Runtime
    from yw_plugin_anomalyaid import AnomalyAID

    aid = AnomalyAID(**{**FAST, **overrides})
    model = aid.build_model(data.x.shape[1], seed=0) if model is None else model
    runtime = Runtime(device="cpu", seed=0, distributed=False)
    trained, history = aid.train_detector(model, data.dataset(), runtime=runtime)
    return trained, history, aid


@pytest.fixture(scope="session")
def make_flows():
    """`flows` for tests that need other seeds or sizes."""
    return flows


@pytest.fixture(scope="session")
def train_with():
    """`train` for tests."""
    return train


@pytest.fixture(scope="session")
def trained():
    """(flows, detector, history, interpreter): AnomalyAID's two-stage training with the FCN
    agreeing with the cluster label (require_fcn_agree) on flows(0). Tests must not change it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a session fixture is set up before the module's one_thread
    try:
        data = flows(0)
        model, history, aid = train(data, require_fcn_agree=True)
    finally:
        torch.set_num_threads(threads)
    return data, model, history, aid
