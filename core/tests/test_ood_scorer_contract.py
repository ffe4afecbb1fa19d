"""The OODScorer contract on a trivial scorer (maximum softmax probability), the suite catching a
broken one, and `iter_batches`, which turns every data form `fit` accepts into (x, y) batches."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from yw_core.interfaces import Capabilities, MethodConfig, OODScorer, Paper, iter_batches
from yw_core.interfaces.ood_scorer import check_inputs
from yw_core.testing import conformance_suite, tiny_dataset


class MaxSoftmax(OODScorer):
    """The baseline: the model's top softmax probability, nothing learned from the data."""

    name = "msp-contract"
    summary = "Maximum softmax probability of the model."
    paper = Paper(
        title="A Baseline for Detecting Misclassified and Out-of-Distribution Examples in "
        "Neural Networks",
        authors=("Hendrycks", "Gimpel"),
        year=2017,
        venue="ICLR",
        arxiv_id="1610.02136",
    )
    license = "MIT"
    status = "baseline"
    capabilities = Capabilities(post_hoc=True)

    class Config(MethodConfig):
        pass

    model = None

    def fit(self, model, id_data, *, runtime):
        for _ in iter_batches(id_data):  # validates the data, as a real scorer would read it
            pass
        self.model, self.runtime = model, runtime
        return self

    def score(self, x):
        if self.model is None:
            raise RuntimeError("call fit() before score()")
        check_inputs(self.name, x)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                probs = self.model(self.runtime.to(x)).softmax(1)
        finally:
            self.model.train(was_training)
        return probs.amax(1).to(x.device)


TestMaxSoftmaxConformance = conformance_suite(MaxSoftmax)


def test_suite_catches_scores_of_shape_n_by_1(yw_runtime):
    class Column(MaxSoftmax):
        name = "msp-column"

        def score(self, x):
            return super().score(x)[:, None]

    suite = conformance_suite(Column)()
    with pytest.raises(AssertionError, match="shape"):
        suite.test_fit_returns_self_and_scores_one_per_input(yw_runtime)


def test_suite_catches_a_scorer_that_leaves_the_model_in_eval_mode(yw_runtime):
    class Sticky(MaxSoftmax):
        name = "msp-sticky"

        def score(self, x):
            self.model.eval()
            with torch.no_grad():
                return self.model(self.runtime.to(x)).softmax(1).amax(1).to(x.device)

    suite = conformance_suite(Sticky)()
    with pytest.raises(AssertionError, match="training mode"):
        suite.test_model_weights_and_mode_are_left_alone(yw_runtime)


def test_suite_catches_a_scorer_that_scores_nan_inputs(yw_runtime):
    class Trusting(MaxSoftmax):
        name = "msp-trusting"

        def score(self, x):
            with torch.no_grad():
                return self.model(self.runtime.to(x)).softmax(1).amax(1).to(x.device)

    suite = conformance_suite(Trusting)()
    with pytest.raises(pytest.fail.Exception, match="ValueError"):
        suite.test_bad_inputs_to_score_are_a_clear_value_error(yw_runtime)


def test_iter_batches_reads_tensor_dataset_and_loader_alike():
    data = tiny_dataset(10)
    x, y = data.tensors
    from_tensor = list(iter_batches(x, batch_size=4))
    assert [len(b) for b, _ in from_tensor] == [4, 4, 2]
    assert all(label is None for _, label in from_tensor)
    from_dataset = list(iter_batches(data, batch_size=4, labels=True))
    assert torch.equal(torch.cat([b for b, _ in from_dataset]), x)
    assert torch.equal(torch.cat([label for _, label in from_dataset]), y)
    from_loader = list(iter_batches(DataLoader(data, batch_size=3)))
    assert [len(b) for b, _ in from_loader] == [3, 3, 3, 1]
    bare = TensorDataset(x)  # a Dataset of bare inputs gives no labels
    assert all(label is None for _, label in iter_batches(bare))


@pytest.mark.parametrize(
    ("data", "kwargs", "error", "message"),
    [
        (torch.zeros(0, 1, 8, 8), {}, ValueError, "empty"),
        (torch.zeros(5), {}, ValueError, r"shape \(N, \.\.\.\)"),
        (torch.full((2, 1, 8, 8), float("nan")), {}, ValueError, "NaN"),
        (torch.zeros(2, 1, 8, 8), {"labels": True}, ValueError, "labels"),
        ([torch.zeros(2, 3)], {}, TypeError, "list"),
    ],
)
def test_iter_batches_errors_name_the_problem(data, kwargs, error, message):
    with pytest.raises(error, match=message):
        list(iter_batches(data, **kwargs))
