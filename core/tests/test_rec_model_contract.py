"""The RecModel contract on a trivial model (a dot-product two-tower), the suite catching broken
ones, and the checks of `FeatureField`, `RecSchema` and `RecSchema.check_features`."""

import pytest
import torch
from pydantic import Field
from torch import nn

from yw_core.interfaces import Capabilities, FeatureField, MethodConfig, RecModel, RecSchema
from yw_core.testing import conformance_suite, random_features


class _Tower(nn.Module):
    """Sum of one embedding per id field and one linear map per dense field."""

    def __init__(self, fields, dim):
        super().__init__()
        self.parts = nn.ModuleDict(
            {
                f.name: nn.Embedding(f.cardinality, dim)
                if f.kind == "categorical"
                else nn.Linear(f.dim, dim)
                for f in fields
            }
        )

    def forward(self, features):
        return sum(part(features[name]) for name, part in self.parts.items())


class _TwoTowerModule(nn.Module):
    def __init__(self, schema, dim):
        super().__init__()
        self.schema = schema
        self.user = _Tower(schema.user_fields, dim)
        self.item = _Tower(schema.item_fields, dim)

    def forward(self, user, items):
        n = self.schema.check_features("user", user)
        if self.schema.check_features("item", items) != n:
            raise ValueError("user and item features must have the same number of rows")
        return (self.user(user) * self.item(items)).sum(-1)

    def serve(self, user, candidates):
        if self.schema.check_features("user", user) != 1:
            raise ValueError("serve() takes the features of one user")
        self.schema.check_features("item", candidates)
        return self.item(candidates) @ self.user(user)[0]  # the user tower runs once


class TwoTower(RecModel):
    """Users and items embedded apart; the score is their dot product."""

    name = "two-tower-contract"
    summary = "Dot-product two-tower ranking model."
    license = "MIT"
    status = "baseline"
    capabilities = Capabilities(training=True)

    class Config(MethodConfig):
        dim: int = Field(8, ge=1, le=1024, description="embedding size of each tower")

    def build(self, schema):
        return _TwoTowerModule(schema, self.config.dim)


TestTwoTowerConformance = conformance_suite(TwoTower)


def test_suite_catches_serve_that_ignores_the_user(yw_runtime):
    class _Popularity(_TwoTowerModule):
        def serve(self, user, candidates):
            self.schema.check_features("user", user)
            self.schema.check_features("item", candidates)
            return self.item(candidates).sum(-1)

    class Popularity(TwoTower):
        name = "popularity"

        def build(self, schema):
            return _Popularity(schema, self.config.dim)

    suite = conformance_suite(Popularity)()
    with pytest.raises(AssertionError, match="differs from forward"):
        suite.test_serve_equals_forward_on_the_repeated_user(yw_runtime)


def test_suite_catches_unchecked_features(yw_runtime):
    class _Lenient(_TwoTowerModule):
        def forward(self, user, items):
            user = {k: v.clamp(max=9) if k == "user_id" else v for k, v in user.items()}
            return (self.user(user) * self.item(items)).sum(-1)

    class Lenient(TwoTower):
        name = "lenient"

        def build(self, schema):
            return _Lenient(schema, self.config.dim)

    suite = conformance_suite(Lenient)()
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        suite.test_bad_features_are_a_value_error_naming_the_field(yw_runtime, "forward", "bad id")


def test_suite_catches_a_model_that_does_not_learn(yw_runtime):
    class _Frozen(_TwoTowerModule):
        def __init__(self, schema, dim):
            super().__init__(schema, dim)
            self.bias = nn.Parameter(torch.zeros(()))  # the only thing Adam can move
            self.requires_grad_(False).bias.requires_grad_(True)

        def forward(self, user, items):
            return super().forward(user, items).detach() * 0 + self.bias

    class Frozen(TwoTower):
        name = "frozen"

        def build(self, schema):
            return _Frozen(schema, self.config.dim)

    suite = conformance_suite(Frozen)()
    with pytest.raises(AssertionError, match="did not fall"):
        suite.test_a_few_steps_on_a_click_signal_lower_the_loss(yw_runtime)


SCHEMA = RecSchema(
    (
        FeatureField("user_id", "user", cardinality=5),
        FeatureField("ctx", "user", "dense", dim=3),
        FeatureField("item_id", "item", cardinality=7),
    )
)


def test_schema_sides_and_random_features_fit():
    assert [f.name for f in SCHEMA.user_fields] == ["user_id", "ctx"]
    assert [f.name for f in SCHEMA.item_fields] == ["item_id"]
    user = random_features(SCHEMA, "user", 6, seed=3)
    assert user["user_id"].dtype == torch.long and user["ctx"].shape == (6, 3)
    assert SCHEMA.check_features("user", user) == 6
    assert SCHEMA.check_features("item", random_features(SCHEMA, "item", 2)) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "", "side": "user", "cardinality": 3}, "non-empty"),
        ({"name": "age", "side": "both", "cardinality": 3}, "'age': side"),
        ({"name": "age", "side": "user", "kind": "sparse", "cardinality": 3}, "'age': kind"),
        ({"name": "age", "side": "user"}, "'age' needs cardinality"),
        ({"name": "age", "side": "user", "kind": "dense", "dim": 0}, "'age' needs dim"),
        ({"name": "age", "side": "user", "cardinality": 3, "dim": 2}, "'age' takes cardinality"),
    ],
)
def test_feature_field_errors_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeatureField(**kwargs)


def test_schema_errors_name_the_problem():
    user = FeatureField("u", "user", cardinality=2)
    with pytest.raises(ValueError, match="repeated: u"):
        RecSchema((user, user, FeatureField("i", "item", cardinality=2)))
    with pytest.raises(ValueError, match="at least one item field"):
        RecSchema((user,))
    with pytest.raises(TypeError, match="FeatureField"):
        RecSchema((user, ("i", "item")))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"user_id": None}, "miss field.*user_id"),
        ({"extra": torch.zeros(4)}, "unknown user feature.*extra"),
        ({"user_id": torch.tensor([0, 1, 2, 5])}, r"'user_id' holds ids outside \[0, 5\)"),
        ({"user_id": torch.tensor([0, -1, 2, 3])}, "'user_id' holds ids outside"),
        ({"user_id": torch.zeros(4)}, "'user_id' must be an integer tensor"),
        ({"user_id": [0, 1, 2, 3]}, "'user_id' must be a tensor"),
        ({"ctx": torch.zeros(4, 2)}, r"'ctx' must be a float tensor \(N, 3\)"),
        ({"ctx": torch.full((4, 3), float("inf"))}, "'ctx' holds NaN or infinite"),
        ({"ctx": torch.zeros(3, 3)}, r"differ in length: \[3, 4\]"),
    ],
)
def test_check_features_errors_name_the_field(change, message):
    user = random_features(SCHEMA, "user", 4)
    user.update(change)
    user = {k: v for k, v in user.items() if v is not None}
    with pytest.raises(ValueError, match=message):
        SCHEMA.check_features("user", user)


def test_check_features_rejects_a_bad_side_and_a_non_dict():
    with pytest.raises(ValueError, match="side must be"):
        SCHEMA.check_features("context", {})
    with pytest.raises(TypeError, match="dict of tensors"):
        SCHEMA.check_features("user", [torch.zeros(2)])
