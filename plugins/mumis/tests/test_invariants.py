"""The spec's invariants of MU-Mis (shared/methods/unlearning-mumis-mimmu.md §1): the loss on
models with known input gradients, one step lowering the forget set's sensitivity, retain never
read, the stopping rule, and forgetting a digits class without the remaining data."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from yw_plugin_mumis import MUMis, StoppingRule, class_input_gradients, mumis_loss, sensitivities


def accuracy(model, data) -> float:
    x, y = data.tensors
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


class Constant(nn.Module):
    """Logits that ignore the input: a learnable bias per class."""

    def __init__(self, classes: int = 4):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(classes))

    def forward(self, x):
        return self.bias.expand(len(x), -1)


def test_the_loss_is_zero_on_a_model_whose_output_ignores_its_input(runtime):
    from yw_core.testing import tiny_dataset

    model, data = Constant().eval(), tiny_dataset(8)
    x, y = data.tensors
    loss = mumis_loss(model, x, y, (y + 1) % 4)
    assert float(loss.detach()) == 0.0
    method = MUMis()
    out = method.unlearn(model, data, runtime=runtime)
    assert method.stopped_by == "no_sensitivity"
    assert torch.equal(out.bias, model.bias)


def test_the_loss_of_a_linear_model_is_the_difference_of_its_weight_rows():
    """f = Wx + b: ∇ₓ f_k = W_k, so L = mean_i ‖W_{y_i}‖² − ‖W_{c′_i}‖², and its gradient in W
    is 2W_k / N summed over the samples' target rows minus their other rows."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    x = torch.randn(6, 3, 2, 2)
    y, other = torch.tensor([0, 1, 2, 3, 4, 0]), torch.tensor([1, 2, 3, 4, 0, 2])
    w = model[1].weight
    expected = (w[y].pow(2).sum(1) - w[other].pow(2).sum(1)).mean()
    loss = mumis_loss(model, x, y, other)
    torch.testing.assert_close(loss, expected)
    (grad,) = torch.autograd.grad(loss, w)
    manual = torch.zeros_like(w)
    for t, o in zip(y, other, strict=True):
        manual[t] += 2 * w[t].detach() / len(y)
        manual[o] -= 2 * w[o].detach() / len(y)
    torch.testing.assert_close(grad, manual)
    grads = class_input_gradients(model, x, y)
    torch.testing.assert_close(grads, w[y].detach())


def test_one_step_lowers_the_forget_sets_target_sensitivity(trained, runtime):
    model, forget, _ = trained
    x, y = forget.tensors
    before, _ = sensitivities(model, [(x, y)], 10, other="mean")
    out = MUMis(max_steps=1, batch_size=len(x)).unlearn(model, forget, runtime=runtime)
    after, _ = sensitivities(out, [(x, y)], 10, other="mean")
    assert after < before


def test_retain_is_never_read(trained, runtime):
    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"retain.{name} was read")

        def __len__(self):
            raise AssertionError("len(retain) was read")

        def __getitem__(self, i):
            raise AssertionError("retain[i] was read")

    model, forget, _ = trained
    x = forget.tensors[0][:16]
    plain = MUMis(max_steps=5).unlearn(model, forget, runtime=runtime)(x)
    guarded = MUMis(max_steps=5).unlearn(model, forget, Untouchable(), runtime=runtime)(x)
    assert torch.equal(plain, guarded)


def test_the_stopping_rule_waits_for_a_dip_to_recover_past_delta():
    rule = StoppingRule(delta=1.2, s_o0=10.0)
    assert [rule.update(s) for s in (8.0, 6.0, 9.0, 11.0, 12.5)] == [False] * 4 + [True]
    assert rule.minimum == 6.0
    strict = StoppingRule(delta=0.5, s_o0=10.0)
    assert not strict.update(6.0)  # above delta, but not above the lowest value so far
    assert strict.update(7.0)
    assert StoppingRule(delta=0.5, s_o0=10.0, above_minimum=False).update(6.0)


def test_the_stopping_rule_stops_and_forgets_class_3_without_the_remaining_data(
    trained, digits, runtime
):
    """At the defaults (δ = 2.0): stopped by the rule, forget accuracy <= 5%, remaining
    accuracy within 1 point, S_t at most half of the original's and S_o up by δ at the stop."""
    model, forget, retain = trained
    _, test = digits
    method = MUMis()
    out = method.unlearn(model, forget, runtime=runtime)
    first, last = method.trace[0], method.trace[-1]
    assert method.stopped_by == "delta"
    assert last["step"] < method.config.max_steps
    assert last["s_o"] / first["s_o"] > method.config.delta
    assert last["s_t"] / first["s_t"] <= 0.5
    assert accuracy(out, forget) <= 0.05
    assert accuracy(out, retain) >= accuracy(model, retain) - 0.01
    xt, yt = test.tensors
    kept = torch.utils.data.TensorDataset(xt[yt != 3], yt[yt != 3])
    assert accuracy(out, kept) >= accuracy(model, kept) - 0.015
    assert not out.training


def test_the_cap_stops_when_the_rule_never_trips(trained, runtime):
    model, forget, _ = trained
    method = MUMis(delta=50.0, max_steps=4)
    method.unlearn(model, forget, runtime=runtime)
    assert method.stopped_by == "max_steps"
    assert [row["step"] for row in method.trace] == [0, 1, 2, 3, 4]


def test_a_model_in_training_mode_is_unlearned_in_eval_mode_with_a_warning(trained, runtime):
    model, forget, _ = trained
    x = forget.tensors[0][:8]
    in_eval = MUMis(max_steps=2).unlearn(model, forget, runtime=runtime)(x)
    model.train()
    try:
        with pytest.warns(UserWarning, match="training mode"):
            out = MUMis(max_steps=2).unlearn(model, forget, runtime=runtime)
    finally:
        model.eval()
    assert not out.training
    assert torch.equal(out(x), in_eval)
