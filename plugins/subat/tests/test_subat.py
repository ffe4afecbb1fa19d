"""Sub-AT end to end and the spec's invariants: the trajectory it samples, P Pᵀ = I, the iterate in
w0 + span(P), FGSM-RS at the larger radius in train mode, selection, and slower gradient growth."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from yw_core.adversarial import fgsm_rs, pgd_accuracy
from yw_core.runtime import Runtime
from yw_core.subspace import ProjectedOptimizer, Projector, flatten
from yw_core.testing import tiny_dataset
from yw_core.train import TrainConfig, fit
from yw_plugin_baselines.adversarial_training import adversarial_loss, split_validation
from yw_plugin_subat import SamplingStep, StepMethod, SubAT, SubspaceStep, dldr

TINY = {
    "sample_epochs": 3,
    "n_components": 4,
    "subspace_epochs": 3,
    "batch_size": 16,
    "progress": False,
}


def runtime(seed: int = 0) -> Runtime:
    return Runtime(device="cpu", seed=seed, distributed=False)


def toy_cnn(seed: int = 0) -> nn.Module:
    """A conv-BN-ReLU-linear classifier on 1x8x8 inputs (4 classes, 1,076 parameters)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(256, 4),
    )


def flat(model: nn.Module) -> torch.Tensor:
    return flatten(p for p in model.parameters())


def test_protect_trains_both_stages_and_leaves_the_input_alone():
    model = toy_cnn()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    method = SubAT(**TINY)
    robust = method.protect(model, data=tiny_dataset(64), runtime=runtime())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"protect changed the input model's {k}"
    assert not robust.training
    x = tiny_dataset(8, seed=3).tensors[0]
    assert robust(x).shape == (8, 4) and torch.isfinite(robust(x)).all()
    stages = [(row["stage"], row["epoch"]) for row in method.history]
    assert stages == [("sample", 1), ("sample", 2), ("sample", 3)] + [
        ("subspace", 1),
        ("subspace", 2),
        ("subspace", 3),
    ]
    lrs = {row["stage"]: row["lr"] for row in method.history}
    assert lrs == {"sample": pytest.approx(0.1), "subspace": pytest.approx(1.0)}
    assert all(0 <= row["val_pgd_acc"] <= row["val_clean_acc"] <= 1 for row in method.history)
    assert method.basis.shape == (4, flat(model).numel())
    assert 1 <= method.selected_epoch <= 3 and method.train_seconds > 0


def test_same_seed_same_model():
    data = tiny_dataset(64)
    runs = [SubAT(**TINY).protect(toy_cnn(), data=data, runtime=runtime()) for _ in range(2)]
    assert torch.equal(flat(runs[0]), flat(runs[1]))


def test_iterate_stays_in_w0_plus_span_and_bn_buffers_train_freely():
    """‖(I − PᵀP)(w − w0)‖ ≈ 0 after the projected stage; w0 is the *initial* weights."""
    model = toy_cnn()
    method = SubAT(**TINY, select="last")
    robust = method.protect(model, data=tiny_dataset(64), runtime=runtime())
    p = method.basis
    delta = flat(robust) - flat(model)
    outside = delta - p.t() @ (p @ delta)
    assert delta.norm() > 1e-2  # it moved
    assert outside.norm() <= 1e-5 * delta.norm()
    assert torch.allclose(p @ p.t(), torch.eye(len(p)), atol=1e-5)
    assert not torch.equal(robust[1].running_mean, model[1].running_mean)


def test_the_trajectory_is_w0_then_mid_epoch_and_epoch_end_parameters():
    data, rt = tiny_dataset(64), runtime()
    model = toy_cnn()
    params = list(model.parameters())
    sampler = StepMethod(
        "s", lambda n, o, r: SamplingStep(n, o, r, params=params, batches_per_epoch=4)
    )
    config = TrainConfig(epochs=2, batch_size=16, schedule="constant", progress=False)
    reference = fit(
        toy_cnn(), data, runtime=rt, config=config.model_copy(update={"keep_checkpoints": True})
    )
    fit(model, data, runtime=rt, method=sampler, config=config)
    trajectory = sampler.step.checkpoints
    ends = [flatten(c) for c in reference.checkpoints]  # start and after each epoch
    assert len(trajectory) == 5
    for i, end in zip([0, 2, 4], ends):
        assert torch.equal(trajectory[i], end)
    for i in (1, 3):  # mid-epoch: between its neighbours, equal to neither
        assert not torch.equal(trajectory[i], trajectory[i - 1])
        assert not torch.equal(trajectory[i], trajectory[i + 1])


def test_dldr_directions_are_orthonormal_principal_directions():
    g = torch.Generator().manual_seed(0)
    walk = torch.cumsum(torch.randn(21, 500, generator=g), 0)  # a random-walk trajectory
    p = dldr(list(walk), 20)
    assert p.shape == (20, 500)
    assert torch.allclose(p @ p.t(), torch.eye(20), atol=1e-5)
    centred = walk - walk.mean(0)
    assert torch.allclose(centred @ p.t() @ p, centred, atol=1e-3)  # k = n - 1 spans it all


def test_two_parameters_with_k_1_move_along_a_line():
    """A 2-parameter model (logits w * x), a 3-point trajectory, k = 1: every iterate is on the
    line w0 + t P."""
    model = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.3], [-0.2]]))
    w0 = flat(model).clone()
    trajectory = [w0, w0 + torch.tensor([1.0, 0.4]), w0 + torch.tensor([2.0, 1.1])]
    p = dldr(trajectory, 1)
    iterates = []

    def loss_fn(m, batch):
        iterates.append(flat(m).clone())
        return F.cross_entropy(m(batch[0]), batch[1])

    params = list(model.parameters())
    method = StepMethod(
        "p", lambda n, o, r: SubspaceStep(n, o, r, ProjectedOptimizer(o, Projector(p), params))
    )
    data = TensorDataset(torch.rand(32, 1), (torch.rand(32) > 0.5).long())
    config = TrainConfig(epochs=3, batch_size=8, lr=1.0, weight_decay=0, progress=False)
    fit(model, data, runtime=runtime(), method=method, config=config, loss_fn=loss_fn)
    steps = torch.stack(iterates[1:] + [flat(model)]) - w0
    cross = steps[:, 0] * p[0, 1] - steps[:, 1] * p[0, 0]
    assert steps.norm(dim=1).max() > 1e-2
    assert cross.abs().max() < 1e-6


class Recorder(nn.Module):
    """A model that records each input and whether it was in train mode."""

    def __init__(self):
        super().__init__()
        self.net = toy_cnn()
        self.seen: list[tuple[torch.Tensor, bool]] = []

    def forward(self, x):
        self.seen.append((x.detach().clone(), self.training))
        return self.net(x)


def test_subspace_stage_attacks_at_the_larger_radius_in_train_mode():
    method = SubAT(eps=0.1)  # train_eps_ratio 2: FGSM-RS at 0.2, step 0.25
    x, y = tiny_dataset(32).tensors
    model = Recorder().train()
    generator = torch.Generator().manual_seed(0)
    loss = adversarial_loss(lambda m, a, b: method.subspace_attack(m, a, b, generator=generator))
    loss(model, (x, y))
    (_, attack_mode), (x_adv, loss_mode) = model.seen  # the attack's forward, then the loss's
    assert attack_mode and loss_mode
    distance = (x_adv - x).abs().max()
    assert 0.1 < distance <= 0.2 + 1e-6  # beyond eps, within 2 eps
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_select_best_returns_the_best_subspace_epoch_on_validation():
    data, rt = tiny_dataset(64), runtime()
    method = SubAT(**{**TINY, "subspace_epochs": 4}, eps=0.1)
    robust = method.protect(toy_cnn(), data=data, runtime=rt)
    curve = [row["val_pgd_acc"] for row in method.history if row["stage"] == "subspace"]
    assert method.selected_epoch == curve.index(max(curve)) + 1
    x, y = split_validation(data, 0.1, rt.seed)[1].tensors
    again = pgd_accuracy(robust, x, y, eps=0.1, step=0.025, generator=rt.generator(rt.seed + 1))
    assert again == max(curve)


def test_the_pgd_sampler_trains_with_the_papers_pgd_recipe():
    method = SubAT(sampler="pgd", sample_epochs=2, subspace_epochs=1, batch_size=16)
    assert SubAT(sampler="pgd").recipe(CIFAR_BATCHES) == (100, 100, 40)
    assert method.sampler().config.steps == 10
    method = SubAT(sampler="pgd", **TINY)
    method.protect(toy_cnn(), data=tiny_dataset(64), runtime=runtime())
    assert [row["stage"] for row in method.history].count("sample") == 3


def mean_per_sample_grad_norm(model, x, y, eps) -> float:
    """Mean over samples of ‖∇_w CE(model(x_adv_i), y_i)‖, at FGSM-RS points (fixed seed)."""
    x_adv = fgsm_rs(
        model, x, y, eps=eps, step=1.25 * eps, generator=torch.Generator().manual_seed(0)
    )
    norms = []
    for i in range(len(x)):
        model.zero_grad()
        F.cross_entropy(model(x_adv[i : i + 1]), y[i : i + 1]).backward()
        norms.append(flatten(p.grad for p in model.parameters()).norm())
    model.zero_grad()
    return float(torch.stack(norms).mean())


def test_per_sample_gradient_norm_grows_more_slowly_in_the_subspace():
    """Qualitative (spec (g)): FGSM-RS AT on 128 random-label points from the same w0, 40
    epochs, full space (lr 0.1) vs the 5-d subspace of a 5-epoch sampling run (lr 1)."""
    rt = runtime()
    data = tiny_dataset(128)
    x, y = data.tensors
    eps = 0.1

    def mlp():
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 128),
            nn.ReLU(),
            nn.Linear(128, 128),
            nn.ReLU(),
            nn.Linear(128, 4),
        )

    generator = rt.generator()
    attack = adversarial_loss(
        lambda m, a, b: fgsm_rs(m, a, b, eps=eps, step=1.25 * eps, generator=generator)
    )
    start = mean_per_sample_grad_norm(mlp(), x, y, eps)

    sampled = mlp()
    params = list(sampled.parameters())
    sampler = StepMethod(
        "s", lambda n, o, r: SamplingStep(n, o, r, params=params, batches_per_epoch=4)
    )
    config = TrainConfig(epochs=5, batch_size=32, schedule="constant", progress=False)
    fit(sampled, data, runtime=rt, method=sampler, config=config, loss_fn=attack)
    p = dldr(sampler.step.checkpoints, 5)

    full = mlp()
    config = TrainConfig(
        epochs=40, batch_size=32, weight_decay=0, schedule="constant", progress=False
    )
    fit(full, data, runtime=rt, config=config, loss_fn=attack)
    sub = mlp()
    ps = list(sub.parameters())
    projected = StepMethod(
        "p", lambda n, o, r: SubspaceStep(n, o, r, ProjectedOptimizer(o, Projector(p), ps))
    )
    config = config.model_copy(update={"lr": 1.0})
    fit(sub, data, runtime=rt, method=projected, config=config, loss_fn=attack)

    full_growth = mean_per_sample_grad_norm(full, x, y, eps) / start - 1
    sub_growth = mean_per_sample_grad_norm(sub, x, y, eps) / start - 1
    assert full_growth > 0.5
    assert sub_growth < full_growth / 3


CIFAR_BATCHES = math.ceil(45_000 / 128)  # the paper's training split, batch 128


def test_none_keeps_the_papers_recipe_at_its_sizes():
    """At CIFAR-10's 352 batches the floor of 20 updates per dimension is 5 epochs: the
    paper's 65 / 80 / 40 stand, and its proportions (80/131, 40/65) at other sampling epochs."""
    assert SubAT().recipe(CIFAR_BATCHES) == (65, 80, 40)
    assert SubAT(sample_epochs=30).recipe(CIFAR_BATCHES) == (30, 37, 18)
    assert SubAT(sample_epochs=1).recipe(CIFAR_BATCHES) == (1, 2, 1)  # k below 3 checkpoints
    assert SubAT(sample_epochs=30, min_steps_per_dim=0).recipe(11) == (30, 37, 18)


def test_small_data_gets_at_least_min_steps_per_dim_updates_per_direction():
    """Digits at the bench's defaults (1,212 training points, 10 batches, k = 13): 6
    proportional epochs are 60 updates; the floor asks for 20 * 13 = 260, i.e. 26 epochs."""
    sample_epochs, k, subspace_epochs = SubAT(sample_epochs=10).recipe(10)
    assert (sample_epochs, k, subspace_epochs) == (10, 13, 26)
    assert SubAT(sample_epochs=10, min_steps_per_dim=25).recipe(10)[2] == 33  # ceil(32.5)
    assert SubAT(sample_epochs=10, min_steps_per_dim=0).recipe(10)[2] == 6


def test_protect_runs_and_records_the_resolved_subspace_epochs():
    method = SubAT(
        sample_epochs=2,
        n_components=2,
        batch_size=16,
        min_steps_per_dim=4,
        progress=False,
        lr_guard=False,
    )
    data = tiny_dataset(64)
    per_epoch = math.ceil(len(split_validation(data, 0.1, 0)[0]) / 16)
    method.protect(toy_cnn(), data=data, runtime=runtime())
    assert method.subspace_epochs == method.recipe(per_epoch)[2] == math.ceil(4 * 2 / per_epoch)
    assert sum(row["stage"] == "subspace" for row in method.history) == method.subspace_epochs


def test_an_explicit_subspace_epochs_is_kept():
    assert SubAT(sample_epochs=30, n_components=5, subspace_epochs=2).recipe(1) == (30, 5, 2)


def test_the_config_records_the_resolved_recipe():
    """None is resolved at construction, so results.json shows the k that ran (the subspace
    epochs, which depend on the data, are in `method.subspace_epochs` and the history)."""
    config = SubAT(sample_epochs=30).config
    assert (config.sample_epochs, config.n_components, config.subspace_epochs) == (30, 37, None)
    assert SubAT(**config.model_dump()).config == config  # a recorded config reproduces the run


def _protect_recording_warnings(**config):
    import warnings

    method = SubAT(**{**TINY, **config})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        method.protect(toy_cnn(), data=tiny_dataset(64), runtime=runtime())
    return method, [str(w.message) for w in caught if "stability bound" in str(w.message)]


def test_the_lr_guard_warns_above_the_stability_bound_and_not_below():
    """2(1 + momentum)/λ with λ the sharpest curvature at w0 in the subspace: a subspace_lr
    above it warns (naming the bound), one below it does not; the estimate does not depend on
    the lr, and lr_guard=False skips it."""
    first, _ = _protect_recording_warnings(subspace_lr=1e-3)
    assert first.sharpness > 0
    assert first.lr_bound == pytest.approx(2 * (1 + 0.9) / first.sharpness)
    above, warned = _protect_recording_warnings(subspace_lr=1.2 * first.lr_bound)
    assert above.sharpness == pytest.approx(first.sharpness)
    assert len(warned) == 1 and f"{first.lr_bound:.3g}" in warned[0]
    _, quiet = _protect_recording_warnings(subspace_lr=0.8 * first.lr_bound)
    assert quiet == []
    unguarded, none = _protect_recording_warnings(subspace_lr=1.2 * first.lr_bound, lr_guard=False)
    assert unguarded.sharpness is None and none == []
