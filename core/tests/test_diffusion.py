"""The conditional-diffusion contract and the digits DDPM: shapes, the forward process, the
sampler's determinism, the cache, and the errors that name a bad concept or model."""

import pytest
import torch

from yw_core.diffusion import (
    ConditionalDiffusion,
    DDPMRecipe,
    DigitsDDPM,
    check_conditional,
    from_unit,
    reference_ddpm,
    to_unit,
)
from yw_core.erasure import mi_proxy
from yw_core.testing import tiny_classifier, tiny_ddpm


def test_the_digits_model_predicts_noise_shaped_like_its_input():
    model = tiny_ddpm(num_classes=4)
    x, t = torch.randn(5, 1, 8, 8), torch.tensor([0, 3, 9, 1, 2])
    assert isinstance(model, ConditionalDiffusion)
    assert model.eps(x, t, model.condition([0, 1, 2, 3, 0])).shape == x.shape
    assert model(x, t, model.null_condition(5)).shape == x.shape
    assert torch.equal(model.null_condition(2), torch.tensor([4, 4]))


def test_the_forward_process_is_sqrt_alpha_bar_mixing():
    model = tiny_ddpm()
    x0, noise, t = torch.randn(3, 1, 8, 8), torch.randn(3, 1, 8, 8), torch.tensor([0, 4, 9])
    a = torch.cumprod(1 - torch.linspace(1e-3, 0.1, 10), 0)[t].reshape(3, 1, 1, 1)
    expected = a.sqrt() * x0 + (1 - a).sqrt() * noise
    torch.testing.assert_close(model.add_noise(x0, noise, t), expected)


def test_only_the_film_projections_read_the_condition_and_the_embedding_is_frozen():
    model = tiny_ddpm()
    names = {
        n for n, p in model.named_parameters() for q in model.conditioning_parameters() if p is q
    }
    assert names == {"blocks.0.cond.weight", "blocks.0.cond.bias"}
    assert not model.embedding.weight.requires_grad


@pytest.mark.parametrize(
    ("concepts", "message"),
    [
        ([0, 4], "unknown concept 4: the model knows the classes 0..3"),
        ([-1], "unknown concept -1"),
        ("a cat", "unknown concept 'a cat'.*not prompts"),
    ],
)
def test_unknown_concepts_are_named(concepts, message):
    with pytest.raises(ValueError, match=message):
        tiny_ddpm().condition(concepts)


def test_sampling_is_seeded_and_stays_in_range():
    model = tiny_ddpm()
    a = model.sample([0, 1, 2], 2.0, torch.Generator().manual_seed(0))
    b = model.sample([0, 1, 2], 2.0, torch.Generator().manual_seed(0))
    assert a.shape == (3, 1, 8, 8) and a.min() >= -1 and a.max() <= 1
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, model.sample([0, 1, 2], 2.0, torch.Generator().manual_seed(1)))


def test_unit_conversion_round_trips():
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(to_unit(from_unit(x)), x)


def test_check_conditional_names_what_is_wrong():
    with pytest.raises(TypeError, match="conditional diffusion model .*got Sequential"):
        check_conditional(tiny_classifier(), "m")
    model = tiny_ddpm()
    model.conditioning_parameters = list
    with pytest.raises(ValueError, match="m: the model has no conditioning parameters"):
        check_conditional(model, "m")


def test_mi_proxy_is_zero_when_the_condition_is_ignored_and_positive_otherwise():
    model = tiny_ddpm()
    x, labels = torch.randn(8, 1, 8, 8), torch.tensor([0, 1, 2, 3] * 2)
    with torch.no_grad():
        model.blocks[0].cond.bias.normal_()
    assert mi_proxy(model, x, labels, torch.Generator().manual_seed(0)) > 0
    with torch.no_grad():
        for p in model.conditioning_parameters():
            p.zero_()
    assert mi_proxy(model, x, labels, torch.Generator().manual_seed(0)) == 0.0


def test_reference_ddpm_trains_once_and_loads_from_the_cache(tmp_path):
    small = {"steps": 3, "hidden": 8, "blocks": 1, "embed": 4, "batch_size": 16}
    first = reference_ddpm(0, cache_dir=tmp_path, progress=False, **small)
    assert isinstance(first, DigitsDDPM) and not first.training
    path = first.zoo_info["path"]
    again = reference_ddpm(0, cache_dir=tmp_path, progress=False, **small)
    assert again.zoo_info["path"] == path
    assert again.zoo_info["train_seconds"] == first.zoo_info["train_seconds"]  # not retrained
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other = reference_ddpm(0, cache_dir=tmp_path, progress=False, **{**small, "steps": 4})
    assert other.zoo_info["path"] != path  # another recipe, another file


def test_a_bad_recipe_value_is_named():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="timesteps"):
        DDPMRecipe(timesteps=1)
