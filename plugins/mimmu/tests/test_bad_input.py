"""MiMMU's bad input: Config values (ValidationError naming the field); an unknown concept, a
model without conditioning and NaN during erasure (clear errors); the caller's model is never
changed by a failed run."""

import pytest
import torch
from pydantic import ValidationError
from torch.utils.data import TensorDataset

from yw_core.diffusion import DigitsDDPM
from yw_core.testing import tiny_classifier, tiny_ddpm
from yw_plugin_mimmu import MiMMU


def data(labels, x=None):
    labels = torch.as_tensor(labels)
    x = torch.rand(len(labels), 1, 8, 8) * 2 - 1 if x is None else x
    return TensorDataset(x, labels)


@pytest.mark.parametrize(
    "overrides",
    [{"lr": 0}, {"epochs": 0}, {"batch_size": 0}, {"weighting": "snr"}, {"trainable": "unet"}],
)
def test_bad_config_values_name_the_field(overrides):
    with pytest.raises(ValidationError, match=next(iter(overrides))):
        MiMMU(**overrides)


def unlearn_keeping(model, forget, runtime, **config):
    """Run MiMMU and check, however it ends, that the caller's model is unchanged."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        config = {"epochs": 1, "batch_size": 4, **config}
        return MiMMU(**config).unlearn(model, forget, runtime=runtime)
    finally:
        after = model.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize(
    ("forget", "message"),
    [
        (data([0, 1, 12, 3]), "unknown concept 12: the model knows the classes 0..3"),
        (data([0, -1, 2, 3]), "unknown concept -1"),
        (TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)), "empty"),
    ],
)
def test_unknown_concepts_and_empty_forget_sets_are_named(forget, message, runtime):
    with pytest.raises(ValueError, match=message):
        unlearn_keeping(tiny_ddpm(), forget, runtime)


def test_a_prompt_for_a_class_conditioned_model_is_an_unknown_concept(runtime):
    forget = [(torch.rand(1, 8, 8), "a photo of a three")] * 4
    with pytest.raises(ValueError, match="unknown concept .*class indices 0..3, not prompts"):
        unlearn_keeping(tiny_ddpm(), forget, runtime)


def test_a_classifier_is_not_a_conditional_diffusion_model(runtime):
    with pytest.raises(TypeError, match="conditional diffusion model .* got Sequential"):
        unlearn_keeping(tiny_classifier(), data([0, 1, 2, 3]), runtime)


def test_a_model_without_conditioning_parameters_is_named(runtime):
    model = tiny_ddpm()
    model.conditioning_parameters = list
    with pytest.raises(ValueError, match="no conditioning parameters .* unconditional model"):
        unlearn_keeping(model, data([0, 1, 2, 3]), runtime)


def test_nan_in_the_forget_images_stops_with_the_step(runtime):
    x = torch.rand(8, 1, 8, 8)
    x[5] = float("nan")
    with pytest.raises(FloatingPointError, match="NaN or inf at step 1"):
        unlearn_keeping(tiny_ddpm(), data([0, 1, 2, 3] * 2, x), runtime, batch_size=8)


class TurnsNaN(DigitsDDPM):
    """A DigitsDDPM whose noise prediction is NaN from its `after + 1`-th call on (each copy
    counts its own calls), as a diverging run would be."""

    def __init__(self, after: int):
        small = tiny_ddpm()
        super().__init__(small.recipe, small.num_classes)
        self.load_state_dict(small.state_dict())
        self.after, self.calls = after, 0

    def eps(self, x_t, t, cond):
        self.calls += 1
        out = super().eps(x_t, t, cond)
        return out * float("nan") if self.calls > self.after else out


def test_a_model_that_turns_nan_during_erasure_stops_with_the_step(runtime):
    """The working copy predicts once per step: NaN from its fourth call is step 4; the
    caller's model is untouched."""
    with pytest.raises(FloatingPointError, match=r"NaN or inf at step 4 \(a learning rate"):
        unlearn_keeping(TurnsNaN(after=3).eval(), data([0, 1, 2, 3] * 4), runtime, epochs=3)
