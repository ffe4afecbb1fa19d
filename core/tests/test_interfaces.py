"""Method classes: config validation, class checks, and the conformance suites on small methods.

Interfaces with no plugin yet have trivial implementations in test_<interface>_contract.py.
"""

import pytest
import torch
from pydantic import Field, ValidationError

from yw_core.interfaces import (
    INTERFACES,
    Attack,
    AttackResult,
    Capabilities,
    Defense,
    MethodConfig,
    TrainStep,
    WeightOptimizer,
    check_method_class,
)
from yw_core.testing import conformance_suite


class Temperature(Defense):
    """Post-hoc: divides the logits by a temperature (keeps the argmax)."""

    name = "temperature"
    summary = "Temperature scaling."
    capabilities = Capabilities(post_hoc=True)

    class Config(MethodConfig):
        temperature: float = Field(2.0, gt=0.0, le=100.0, description="divides the logits")
        mode: str = Field("scale", description="a string option")

    def protect(self, model, *, data=None, runtime):
        t = self.config.temperature
        return torch.nn.Sequential(model, _Scale(1 / t))


class _Scale(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


class RandomNoise(Attack):
    """Random sign noise, one query per sample per step; stops on success."""

    name = "random-noise"
    summary = "Random L-inf sign noise."

    class Config(MethodConfig):
        pass

    def run(self, model, x, y, *, eps, norm="linf", budget, runtime):
        self.check_inputs(x, y, eps, budget, norm)
        g = runtime.generator()
        queries = torch.zeros(len(x), dtype=torch.long)
        success = model(x).argmax(1) != y  # initially wrong: not attacked
        x_adv = x.clone()
        for _ in range(budget):
            live = ~success
            if not live.any():
                break
            noise = eps * torch.sign(torch.rand(x[live].shape, generator=g) - 0.5)
            cand = (x[live] + noise).clamp(0, 1)
            queries[live] += 1
            fooled = model(cand).argmax(1) != y[live]
            x_adv[live] = torch.where(fooled[:, None, None, None], cand, x_adv[live])
            success[live] = fooled
        return AttackResult(x_adv, success, queries, queries.clone())


class PlainSGD(WeightOptimizer):
    name = "plain"
    summary = "One forward and backward, then the base optimizer's step."

    class Config(MethodConfig):
        pass

    def attach(self, model, base_optimizer, *, runtime):
        return _PlainStep(model, base_optimizer, runtime)


class _PlainStep(TrainStep):
    def step(self, batch, loss_fn):
        self.optimizer.zero_grad()
        loss = loss_fn(self.model, batch)
        loss.backward()
        self.optimizer.step()
        return loss.detach()


TestTemperatureConformance = conformance_suite(Temperature)
TestRandomNoiseConformance = conformance_suite(RandomNoise, norms=("linf",))
TestPlainSGDConformance = conformance_suite(PlainSGD)


def test_bad_config_errors_name_the_field():
    with pytest.raises(ValidationError, match="tempreature"):
        Temperature(tempreature=1.0)
    with pytest.raises(ValidationError, match="temperature"):
        Temperature(temperature="hot")
    with pytest.raises(ValidationError, match="temperature"):
        Temperature(temperature=-1.0)
    with pytest.raises(ValidationError, match="temperature"):
        Temperature(temperature=float("nan"))


def test_config_from_object_dict_and_overrides():
    base = Temperature.Config(temperature=3.0)
    assert Temperature(base).config.temperature == 3.0
    assert Temperature({"temperature": 4.0}).config.temperature == 4.0
    expected = Temperature.Config(temperature=3.0, mode="other")
    assert Temperature(base, mode="other").config == expected
    with pytest.raises(TypeError, match="config must be"):
        Temperature(3.0)
    assert repr(Temperature(temperature=5.0)) == "Temperature(temperature=5.0)"


def test_check_method_class_reports_each_problem():
    class Loose(Defense):
        name = "Bad Name"
        summary = ""
        api_version = "2.0"

        class Config(MethodConfig.__base__):  # a plain BaseModel: neither forbid nor frozen
            strength: float = 1.0

        def protect(self, model, *, data=None, runtime):
            return model

    problems = " | ".join(check_method_class(Loose, Defense))
    for expected in (
        "name 'Bad Name'",
        "summary must be",
        "api_version 2.0",
        "extra='forbid'",
        "frozen=True",
        "no description",
        "without bounds",
    ):
        assert expected in problems


def test_abstract_and_wrong_interface_are_reported():
    class Half(Defense):
        name = "half"
        summary = "no protect"

    assert any("protect" in p for p in check_method_class(Half, Defense))
    assert any("does not subclass Attack" in p for p in check_method_class(Temperature, Attack))


def test_every_interface_has_a_group_and_a_suite():
    from yw_core.groups import GROUPS
    from yw_core.testing import SUITES

    assert {k: c.group for k, c in INTERFACES.items()} == GROUPS
    assert set(SUITES) == set(INTERFACES)


def test_conformance_suite_catches_a_budget_violation(yw_runtime):
    class Greedy(RandomNoise):
        name = "greedy"

        def run(self, model, x, y, *, eps, norm="linf", budget, runtime):
            result = super().run(model, x, y, eps=eps, norm=norm, budget=budget, runtime=runtime)
            result.total_queries += budget  # claims more queries than allowed
            return result

    suite = conformance_suite(Greedy)()
    with pytest.raises(AssertionError):
        suite.test_budget_ball_and_range(yw_runtime)


def test_conformance_suite_catches_a_training_defense_that_runs_without_data(yw_runtime):
    class Silent(Temperature):
        name = "silent"
        capabilities = Capabilities(training=True)

    suite = conformance_suite(Silent)()
    with pytest.raises(pytest.fail.Exception, match="ValueError"):
        suite.test_training_time_protect_without_data_is_a_value_error(yw_runtime)


def test_conformance_suite_catches_a_post_hoc_defense_with_unseeded_noise(yw_runtime):
    class Unseeded(Temperature):
        name = "unseeded"

        def protect(self, model, *, data=None, runtime):
            return torch.nn.Sequential(model, _UnseededNoise())

    suite = conformance_suite(Unseeded)()
    with pytest.raises(AssertionError, match="same seed"):
        suite.test_post_hoc_same_seed_same_logits(yw_runtime)


class _UnseededNoise(torch.nn.Module):
    """Adds noise from a generator seeded from the operating system, not from the runtime."""

    def __init__(self):
        super().__init__()
        self.generator = torch.Generator()
        self.generator.seed()

    def forward(self, x):
        return x + torch.randn(x.shape, generator=self.generator)


class _SeededNoise(torch.nn.Module):
    """Adds fresh noise on every call, from a generator seeded from the runtime."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, x):
        return x + torch.randn(x.shape, generator=self.generator, device=self.generator.device)


class _BatchShifted(torch.nn.Module):
    """Adds the mean logit of the whole batch to every logit: each input's scores depend on the
    others, its argmax does not."""

    def forward(self, x):
        return x + x.mean()


def test_conformance_suite_catches_an_undeclared_randomized_defense(yw_runtime):
    class Noisy(Temperature):
        name = "noisy"

        def protect(self, model, *, data=None, runtime):
            return torch.nn.Sequential(model, _SeededNoise(runtime.generator()))

    suite = conformance_suite(Noisy)()
    suite.test_post_hoc_same_seed_same_logits(yw_runtime)  # seeded: this passes
    with pytest.raises(AssertionError, match="declare randomized=True"):
        suite.test_post_hoc_repeated_query_matches_randomized(yw_runtime)


def test_conformance_suite_catches_a_randomized_declaration_with_no_randomness(yw_runtime):
    class Claims(Temperature):
        name = "claims"
        capabilities = Capabilities(post_hoc=True, randomized=True)

    suite = conformance_suite(Claims)()
    with pytest.raises(AssertionError, match="declared randomized"):
        suite.test_post_hoc_repeated_query_matches_randomized(yw_runtime)


def test_conformance_suite_catches_an_undeclared_batch_dependence(yw_runtime):
    class Shifted(Temperature):
        name = "shifted"

        def protect(self, model, *, data=None, runtime):
            return torch.nn.Sequential(model, _BatchShifted())

    suite = conformance_suite(Shifted)()
    with pytest.raises(AssertionError, match="batch_dependence='scores'"):
        suite.test_post_hoc_batch_dependence_as_declared(yw_runtime)


def test_conformance_suite_checks_the_argmax_of_a_scores_dependent_defense(yw_runtime):
    class Shifted(Temperature):
        name = "shifted"
        capabilities = Capabilities(post_hoc=True, batch_dependence="scores")

        def protect(self, model, *, data=None, runtime):
            return torch.nn.Sequential(model, _BatchShifted())

    suite = conformance_suite(Shifted)()
    suite.test_post_hoc_batch_dependence_as_declared(yw_runtime)  # argmax kept: passes

    class Flips(Shifted):
        name = "flips"

        def protect(self, model, *, data=None, runtime):  # adds the batch size to class 0
            return torch.nn.Sequential(model, _AddBatchSize())

    with pytest.raises(AssertionError, match="batch_dependence='argmax'"):
        conformance_suite(Flips)().test_post_hoc_batch_dependence_as_declared(yw_runtime)


class _AddBatchSize(torch.nn.Module):
    """Adds 100 x (batch size) to class 0's logit: the predicted class depends on the batch."""

    def forward(self, x):
        bump = torch.zeros_like(x)
        bump[:, 0] = 100.0 * (len(x) - 1)
        return x + bump


def test_conformance_suite_catches_a_step_that_returns_a_loss_with_grad(yw_runtime):
    class Attached(PlainSGD):
        name = "attached"

        def attach(self, model, base_optimizer, *, runtime):
            return _AttachedStep(model, base_optimizer, runtime)

    suite = conformance_suite(Attached)()
    with pytest.raises(AssertionError, match="detached"):
        suite.test_step_updates_weights(yw_runtime)


class _AttachedStep(_PlainStep):
    def step(self, batch, loss_fn):
        self.optimizer.zero_grad()
        loss = loss_fn(self.model, batch)
        loss.backward()
        self.optimizer.step()
        return loss
