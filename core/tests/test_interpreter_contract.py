"""The Interpreter contract on a trivial interpreter (gradient x input), the suite catching
broken ones, and the checks of `Explanation`."""

import pytest
import torch

from yw_core.interfaces import (
    Capabilities,
    Explanation,
    Interpreter,
    MethodConfig,
    Paper,
    iter_batches,
)
from yw_core.testing import conformance_suite


class GradientTimesInput(Interpreter):
    """Attribution of feature j to the explained logit: its gradient times x_j."""

    name = "gradxinput-contract"
    summary = "Gradient times input, for the predicted class."
    paper = Paper(
        title="Learning Important Features Through Propagating Activation Differences",
        authors=("Shrikumar", "Greenside", "Kundaje"),
        year=2017,
        venue="ICML",
        arxiv_id="1704.02685",
    )
    license = "MIT"
    status = "baseline"
    capabilities = Capabilities(post_hoc=True)

    class Config(MethodConfig):
        pass

    model = None

    def fit(self, model, data, *, runtime):
        for _ in iter_batches(data):  # nothing to learn; the data is only validated
            pass
        self.model, self.runtime = model, runtime
        return self

    def explain(self, x):
        if self.model is None:
            raise RuntimeError("call fit() before explain()")
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.enable_grad():
                inputs = self.runtime.to(x).detach().requires_grad_(True)
                logits = self.model(inputs)
                target = logits.argmax(1)
                picked = logits.gather(1, target[:, None]).sum()
                (grad,) = torch.autograd.grad(picked, inputs)
        finally:
            self.model.train(was_training)
        attributions = (grad * inputs).detach()
        return Explanation(attributions.to(x.device), target=target.to(x.device))


TestGradientTimesInputConformance = conformance_suite(GradientTimesInput)


def test_suite_catches_an_explanation_that_ignores_the_model(yw_runtime):
    class Brightness(GradientTimesInput):
        name = "brightness"

        def explain(self, x):
            super().explain(x)
            return Explanation(x.clone())  # bright pixels "matter", whatever the model reads

    suite = conformance_suite(Brightness)()
    with pytest.raises(AssertionError, match="pixels the model ignores"):
        suite.test_ignored_half_of_the_image_gets_no_attribution(yw_runtime)


def test_suite_catches_attributions_that_keep_their_graph(yw_runtime):
    class Attached(GradientTimesInput):
        name = "attached"

        def explain(self, x):
            explanation = super().explain(x)
            explanation.attributions = explanation.attributions + 0 * self.model.head.bias.sum()
            return explanation

    suite = conformance_suite(Attached)()
    with pytest.raises(AssertionError, match="attributions is not detached"):
        suite.test_fit_returns_self_and_explain_fits_the_inputs(yw_runtime)


def test_suite_catches_explain_that_needs_autograd_from_the_caller(yw_runtime):
    class NeedsGrad(GradientTimesInput):
        name = "needs-grad"

        def explain(self, x):
            inputs = x.detach().requires_grad_(True)
            logits = self.model(inputs)
            (grad,) = torch.autograd.grad(logits.amax(1).sum(), inputs)
            return Explanation((grad * inputs).detach())

    suite = conformance_suite(NeedsGrad)()
    with pytest.raises(RuntimeError, match="grad"):
        suite.test_same_explanation_under_no_grad(yw_runtime)


def test_explanation_check_returns_itself_and_top_features():
    x = torch.zeros(2, 1, 2, 2)
    a = torch.tensor([[0.1, -3.0, 0.2, 1.0], [2.0, 0.0, 0.0, -0.5]]).view(2, 1, 2, 2)
    explanation = Explanation(a, reliability=torch.tensor([0.0, 1.0]), target=torch.tensor([1, 0]))
    assert explanation.check(x) is explanation
    assert explanation.top_features(2).tolist() == [[1, 3], [0, 3]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attributions": torch.zeros(2, 4)}, r"attributions have shape \(2, 4\)"),
        ({"attributions": torch.full((2, 1, 2, 2), float("nan"))}, "NaN or infinite"),
        ({"reliability": torch.ones(3)}, r"reliability must have shape \(2,\)"),
        ({"target": torch.zeros(2, 1)}, r"target must have shape \(2,\)"),
        ({"reliability": torch.tensor([0.5, 1.5])}, r"reliability must lie in \[0, 1\]"),
        ({"reliability": torch.tensor([0.5, float("nan")])}, "not be NaN"),
    ],
)
def test_explanation_check_errors_name_the_problem(kwargs, message):
    x = torch.zeros(2, 1, 2, 2)
    explanation = Explanation(**{"attributions": torch.zeros_like(x), **kwargs})
    with pytest.raises(ValueError, match=message):
        explanation.check(x)
