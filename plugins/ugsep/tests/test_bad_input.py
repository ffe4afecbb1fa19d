"""Bad input to RankMixer / UG-Sep: Config values (ValidationError naming the field), features
that do not fit the schema, an empty candidate list, a request of several users."""

import pytest
import torch
from pydantic import ValidationError

from yw_core.testing.fixtures import random_features
from yw_plugin_ugsep import RankMixer, UGSep


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"tokens": 1}, "tokens"),
        ({"width": 0}, "width"),
        ({"layers": 0}, "layers"),
        ({"ffn_ratio": 0}, "ffn_ratio"),
        ({"ug_ratio": "0:1"}, "ug_ratio"),
        ({"ug_ratio": "1-1"}, "ug_ratio"),
        ({"tokens_u": 3}, "tokens_u"),
    ],
)
def test_bad_config_values_name_the_field(overrides, field):
    with pytest.raises(ValidationError, match=field):
        UGSep(**overrides)


def test_width_must_split_into_token_heads():
    with pytest.raises(ValidationError, match="multiple of tokens"):
        RankMixer(tokens=16, width=100)


def test_a_ratio_that_does_not_split_the_tokens_is_an_error():
    with pytest.raises(ValidationError, match="ug_ratio 2:1 does not split tokens=16"):
        UGSep(tokens=16, ug_ratio="2:1")


def test_fewer_embedded_values_than_tokens_is_an_error():
    from yw_core.interfaces import FeatureField, RecSchema

    one_each = RecSchema(
        (FeatureField("u", "user", cardinality=5), FeatureField("i", "item", cardinality=5))
    )
    with pytest.raises(ValueError, match="user fields embed to 2 values, fewer than their 8"):
        UGSep(tokens=16, width=32, embedding_dim=2).build(one_each)


@pytest.fixture(params=[RankMixer, UGSep])
def net(request, schema):
    torch.manual_seed(0)
    return request.param(tokens=8, width=64).build(schema).eval()


def test_a_missing_field_is_named(net, schema):
    user = random_features(schema, "user", 1, 0)
    items = random_features(schema, "item", 5, 1)
    del items["item_cat1"]
    with pytest.raises(ValueError, match="item features miss field.*item_cat1"):
        net.serve(user, items)
    del user["user_dense"]
    with pytest.raises(ValueError, match="user features miss field.*user_dense"):
        net(user, random_features(schema, "item", 1, 1))


def test_candidates_with_another_field_set_are_named(net, schema):
    user = random_features(schema, "user", 1, 0)
    items = random_features(schema, "item", 5, 1)
    items["item_price"] = torch.zeros(5, 1)
    with pytest.raises(ValueError, match="unknown item feature.*item_price"):
        net.serve(user, items)
    items.pop("item_price")
    items["user_cat0"] = items.pop("item_cat0")  # a user field passed as a candidate field
    with pytest.raises(ValueError, match="item_cat0"):
        net.serve(user, items)


def test_an_empty_candidate_list_is_an_error(net, schema):
    user = random_features(schema, "user", 1, 0)
    items = random_features(schema, "item", 0, 1)
    with pytest.raises(ValueError, match="empty candidate list"):
        net.serve(user, items)


def test_serve_takes_one_user(net, schema):
    with pytest.raises(ValueError, match="1 row, got 3"):
        net.serve(random_features(schema, "user", 3, 0), random_features(schema, "item", 3, 1))


def test_forward_rows_must_pair_up(net, schema):
    with pytest.raises(ValueError, match="user features have 3 rows but item features 4"):
        net(random_features(schema, "user", 3, 0), random_features(schema, "item", 4, 1))


def test_nan_and_bad_ids_are_named(net, schema):
    user = random_features(schema, "user", 1, 0)
    user["user_dense"][0, 1] = float("nan")
    with pytest.raises(ValueError, match="user_dense.*NaN"):
        net.serve(user, random_features(schema, "item", 2, 1))
    items = random_features(schema, "item", 2, 1)
    items["item_id"][0] = 2000
    with pytest.raises(ValueError, match="item_id.*outside"):
        net.serve(random_features(schema, "user", 1, 0), items)
