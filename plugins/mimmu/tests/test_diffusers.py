"""MiM-MU on Stable Diffusion's parts through diffusers, with nothing downloaded: a tiny randomly
initialised UNet2DConditionModel, DDPM scheduler, CLIP text encoder and CLIP tokenizer (a real
`transformers.CLIPTokenizer` read from a 56-token vocabulary written to a temporary folder),
wrapped as `yw_core.diffusion.DiffusersConditional`. A few seconds on a CPU."""

import copy
import json
import os
import string

import pytest
import torch

from yw_core.diffusion import DiffusersConditional
from yw_core.erasure import ConceptErasure
from yw_plugin_mimmu import MiMMU

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read at import: the hub is never asked anything

REASON = (
    "the Stable Diffusion path needs diffusers and transformers: "
    "pip install yw-plugin-mimmu[diffusers]"
)
diffusers = pytest.importorskip("diffusers", reason=REASON)
transformers = pytest.importorskip("transformers", reason=REASON)

PROMPT = "a cat"
TOKENS = 8  # the tokenizer's model_max_length, and the text encoder's positions


def tiny_tokenizer(folder):
    """A CLIP BPE tokenizer over lowercase letters (one token each, "x</w>" ends a word) that
    merges "cat"."""
    letters = string.ascii_lowercase
    words = [*letters, *(c + "</w>" for c in letters), "ca", "cat</w>"]
    vocab = ["<|startoftext|>", "<|endoftext|>", *words]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\nc a\nca t</w>\n")
    return transformers.CLIPTokenizer.from_pretrained(folder, model_max_length=TOKENS)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny U-Net's ops are too small to split: on a busy two-core machine a second torch
    thread made these tests about 70 times slower (measured); with one they take seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The caller's model: never modified by the tests (each unlearn works on a copy)."""
    tokenizer = tiny_tokenizer(tmp_path_factory.mktemp("tokenizer"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = diffusers.UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=8,
        )
        text_encoder = transformers.CLIPTextModel(
            transformers.CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=TOKENS,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=1000)
    return DiffusersConditional(unet, scheduler, text_encoder, tokenizer).eval()


@pytest.fixture(scope="module")
def forget():
    """Four (latent, prompt) pairs, as `pipe(prompts, output_type="latent")` would give."""
    latents = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    return [(x, PROMPT) for x in latents]


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_shapes(model):
    x = torch.randn(2, 4, 8, 8)
    t = torch.tensor([10, 900])
    cond = model.condition([PROMPT, "a dog"])
    assert cond.shape == (2, TOKENS, 32)
    assert model.condition(PROMPT).shape == (1, TOKENS, 32)
    null = model.null_condition(3)
    assert null.shape == (3, TOKENS, 32)
    assert torch.equal(null[2], model.condition([""])[0])
    assert not torch.equal(cond[0], null[0])
    with torch.no_grad():
        assert model.eps(x, t, cond).shape == x.shape
        assert model.eps(x, t, model.null_condition(2)).shape == x.shape
    assert model.num_timesteps == 1000
    assert model.alphas_cumprod().shape == (1000,)
    assert model.conditioning_parameters()
    assert all(p.requires_grad for p in model.text_encoder.parameters())  # wrapping froze nothing
    with pytest.raises(ValueError, match="prompts"):
        model.condition([3])


def check_erased(model, erased, before, method):
    """Only the U-Net's cross-attention moved; the caller's model and the text encoder did not."""
    assert erased is not model
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), f"the caller's {name} changed"
    changed = {n for n, v in erased.state_dict().items() if not torch.equal(v, before[n])}
    attn2 = {n for n in before if n.startswith("unet.") and ".attn2." in n}
    assert changed == attn2  # every cross-attention tensor, nothing else (text encoder included)
    assert all(p.requires_grad for p in erased.unet.parameters())  # the flags are restored
    assert len(method.trace) == method.config.epochs
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in method.trace)
    assert not erased.training


def test_unlearn_trains_only_the_cross_attention(model, forget, runtime):
    before = snapshot(model)
    method = MiMMU(lr=1e-3, epochs=2, batch_size=2)
    erased = method.unlearn(model, forget, runtime=runtime)
    check_erased(model, erased, before, method)


def mim_gap(model, frozen, x_t, t):
    """The MiM loss on fixed x_t: E‖ε_θ(x_t, t, c) − ε_φ(x_t, t, ∅)‖²."""
    with torch.no_grad():
        cond = model.condition([PROMPT] * len(x_t))
        target = frozen.eps(x_t, t, frozen.null_condition(len(x_t)))
        return float((model.eps(x_t, t, cond) - target).pow(2).mean())


def test_conditional_prediction_moves_to_the_frozen_unconditional(model, forget, runtime):
    """Trained on random noise draws, the MiM loss on held-out draws (another seed, fixed
    timesteps across the schedule) must fall at least fourfold; measured: about eightfold in
    8 steps (the random U-Net's conditional and unconditional predictions start close)."""
    x0 = torch.stack([x for x, _ in forget])
    generator = torch.Generator().manual_seed(123)
    t = torch.tensor([50, 300, 600, 950])
    x_t = model.add_noise(x0, torch.randn(x0.shape, generator=generator), t)
    frozen = copy.deepcopy(model)
    start = mim_gap(model, frozen, x_t, t)
    erased = MiMMU(lr=1e-3, epochs=8, batch_size=4).unlearn(model, forget, runtime=runtime)
    end = mim_gap(erased, frozen, x_t, t)
    assert start > 0
    assert end < start / 4, (start, end)


@pytest.mark.parametrize("name", ["ESD", "ConceptAblation"])
def test_baselines_take_the_same_model(model, forget, runtime, name):
    baselines = pytest.importorskip(
        "yw_plugin_baselines", reason="ESD, ablation: yw-plugin-baselines"
    )
    cls = getattr(baselines, name)
    assert issubclass(cls, ConceptErasure)
    overrides = {"anchor": "a dog"} if name == "ConceptAblation" else {}
    before = snapshot(model)
    method = cls(lr=1e-3, epochs=2, batch_size=2, **overrides)
    erased = method.unlearn(model, forget, runtime=runtime)
    check_erased(model, erased, before, method)


def test_a_bare_unet_names_the_wrapper(model, forget, runtime):
    with pytest.raises(TypeError, match="DiffusersConditional"):
        MiMMU().unlearn(model.unet, forget, runtime=runtime)
