"""The Unlearner contract on two trivial unlearners (fine-tuning on the retain set; gradient
ascent on the forget set, remaining-data-free), the suite catching a broken one, and the
checks of `UnlearningRequest`."""

import pytest
import torch
import torch.nn.functional as F
from pydantic import Field
from torch.utils.data import DataLoader, TensorDataset

from yw_core.interfaces import Capabilities, MethodConfig, Paper, Unlearner, UnlearningRequest
from yw_core.interfaces.unlearner import check_model, forget_set, working_model
from yw_core.testing import conformance_suite, tiny_dataset


def _descend(model, data, runtime, *, lr, steps, sign):
    """`steps` full passes of SGD over `data` on the cross-entropy times `sign`."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        for x, y in DataLoader(data, batch_size=8, shuffle=False):
            x, y = runtime.to((x, y))
            optimizer.zero_grad()
            (sign * F.cross_entropy(model(x), y)).backward()
            optimizer.step()
    return model.eval()


class RetainFineTune(Unlearner):
    """Forgets by fine-tuning on the retain set alone (catastrophic forgetting of the rest)."""

    name = "finetune-contract"
    summary = "Fine-tune on the retain set."
    paper = Paper(
        title="Towards Unbounded Machine Unlearning",
        authors=("Kurmanji", "Triantafillou", "Hayes", "Triantafillou"),
        year=2023,
        venue="NeurIPS",
        arxiv_id="2302.09880",
    )
    license = "MIT"
    status = "baseline"
    capabilities = Capabilities(training=True)

    class Config(MethodConfig):
        lr: float = Field(0.05, gt=0.0, le=10.0, description="SGD learning rate")
        epochs: int = Field(1, ge=1, le=100, description="passes over the retain set")

    def unlearn(self, model, forget, retain=None, *, runtime, in_place=False):
        request = UnlearningRequest.of(forget, retain)
        if request.retain is None:
            raise ValueError("fine-tuning needs a retain set")
        check_model(model, request.forget, runtime=runtime, name=self.name)
        model, c = working_model(model, in_place), self.config
        return _descend(model, request.retain, runtime, lr=c.lr, steps=c.epochs, sign=1.0)


class ForgetAscent(Unlearner):
    """Forgets by gradient ascent on the forget set; never looks at the remaining data."""

    name = "ascent-contract"
    summary = "Gradient ascent on the forget set."
    license = "MIT"
    status = "baseline"
    capabilities = Capabilities(training=True)
    remaining_data_free = True

    class Config(MethodConfig):
        lr: float = Field(0.01, gt=0.0, le=10.0, description="SGD learning rate")
        steps: int = Field(1, ge=1, le=100, description="passes over the forget set")

    def unlearn(self, model, forget, retain=None, *, runtime, in_place=False):
        forget = forget_set(forget)
        check_model(model, forget, runtime=runtime, name=self.name)
        model, c = working_model(model, in_place), self.config
        return _descend(model, forget, runtime, lr=c.lr, steps=c.steps, sign=-1.0)


TestRetainFineTuneConformance = conformance_suite(RetainFineTune)
TestForgetAscentConformance = conformance_suite(ForgetAscent)


def test_suite_catches_an_unlearner_that_edits_its_data(yw_runtime):
    class Scribbler(RetainFineTune):
        name = "scribbler"

        def unlearn(self, model, forget, retain=None, *, runtime, in_place=False):
            request = UnlearningRequest.of(forget, retain)
            request.forget.tensors[0].mul_(0.5)  # "augments" the forget set in place
            return super().unlearn(model, request, runtime=runtime, in_place=in_place)

    suite = conformance_suite(Scribbler)()
    with pytest.raises(AssertionError, match="modified"):
        suite.test_forget_and_retain_data_are_not_modified(yw_runtime)


def test_suite_catches_an_unlearner_that_reads_retain_while_claiming_not_to(yw_runtime):
    class Peeker(ForgetAscent):
        name = "peeker"

        def unlearn(self, model, forget, retain=None, *, runtime, in_place=False):
            model = super().unlearn(model, forget, retain, runtime=runtime, in_place=in_place)
            if retain is not None:  # quietly repairs the model on the remaining data
                model = _descend(model, retain, runtime, lr=0.05, steps=1, sign=1.0)
            return model

    suite = conformance_suite(Peeker)()
    with pytest.raises(AssertionError):
        suite.test_remaining_data_free_methods_ignore_retain(yw_runtime)


def test_suite_catches_an_unlearner_that_returns_a_model_in_train_mode(yw_runtime):
    class Training(ForgetAscent):
        name = "training"

        def unlearn(self, model, forget, retain=None, *, runtime, in_place=False):
            out = super().unlearn(model, forget, retain, runtime=runtime, in_place=in_place)
            return out.train()

    suite = conformance_suite(Training)()
    with pytest.raises(AssertionError, match="eval mode"):
        suite.test_unlearn_returns_model_of_the_same_output_shape(yw_runtime)


def test_suite_catches_an_unlearner_that_skips_check_model(yw_runtime):
    class Unchecked(ForgetAscent):
        name = "unchecked"

        def unlearn(self, model, forget, retain=None, *, runtime, in_place=False):
            forget_set(forget)
            return working_model(model, in_place).eval()  # never looks at the model

    suite = conformance_suite(Unchecked)()
    with pytest.raises(pytest.fail.Exception, match="ValueError"):
        suite.test_a_frozen_model_or_one_without_logits_is_a_clear_value_error(yw_runtime)


def test_request_of_datasets_and_of_a_request():
    forget, retain = tiny_dataset(4), tiny_dataset(6, seed=1)
    request = UnlearningRequest.of(forget, retain)
    assert (request.forget, request.retain) == (forget, retain)
    assert UnlearningRequest.of(request) is request
    assert UnlearningRequest(forget).retain is None
    with pytest.raises(ValueError, match="retain is given twice"):
        UnlearningRequest.of(request, retain)


@pytest.mark.parametrize(
    ("forget", "error", "message"),
    [
        (TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0)), ValueError, "forget set is empty"),
        (TensorDataset(torch.zeros(2, 3)), ValueError, r"\(x, y\) pairs"),
        ([(1.0, 0)], ValueError, "inputs must be tensors"),
        (iter([(torch.zeros(3), 0)]), TypeError, "map-style Dataset"),
    ],
)
def test_request_errors_name_the_problem(forget, error, message):
    with pytest.raises(error, match=message):
        UnlearningRequest(forget)


def test_a_bad_retain_set_is_named_as_retain():
    with pytest.raises(ValueError, match="retain set is empty"):
        UnlearningRequest(tiny_dataset(2), TensorDataset(torch.zeros(0, 2), torch.zeros(0)))


def test_suite_catches_an_unlearner_that_trains_the_callers_model(yw_runtime):
    class InPlace(ForgetAscent):
        name = "in-place"

        def unlearn(self, model, forget, retain=None, *, runtime, in_place=False):
            return super().unlearn(model, forget, retain, runtime=runtime, in_place=True)

    suite = conformance_suite(InPlace)()
    with pytest.raises(AssertionError):
        suite.test_the_callers_model_is_unchanged_unless_in_place(yw_runtime)


def test_check_model_names_each_problem(yw_runtime):
    from yw_core.testing import tiny_classifier

    forget = tiny_dataset(4)
    assert check_model(tiny_classifier(), forget, runtime=yw_runtime, name="m") == 4
    frozen = tiny_classifier().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        check_model(frozen, forget, runtime=yw_runtime, name="m")
    with torch.inference_mode():
        made_in_inference = tiny_classifier()
    with pytest.raises(ValueError, match="inference_mode"):
        check_model(made_in_inference, forget, runtime=yw_runtime, name="m")
    flat = torch.nn.Sequential(tiny_classifier(), torch.nn.Flatten(0))
    with pytest.raises(ValueError, match=r"\(N, classes\) logits"):
        check_model(flat, forget, runtime=yw_runtime, name="m")


def test_forget_set_never_reads_retain():
    forget = tiny_dataset(4)
    assert forget_set(forget) is forget
    assert forget_set(UnlearningRequest(forget)) is forget
    with pytest.raises(ValueError, match="forget set is empty"):
        forget_set(TensorDataset(torch.zeros(0, 2), torch.zeros(0)))


def test_an_empty_retain_set_says_the_whole_training_set_was_forgotten():
    with pytest.raises(ValueError, match="whole training set"):
        UnlearningRequest(tiny_dataset(2), TensorDataset(torch.zeros(0, 2), torch.zeros(0)))
