"""Shared by the UG-Sep tests: a CPU runtime and the spec's small correctness schema."""

import pytest


@pytest.fixture
def runtime():
    from yw_core.runtime import Runtime

    return Runtime(device="cpu", seed=0, distributed=False)


@pytest.fixture(scope="session")
def schema():
    """Config S of the spec's CPU test plan: a user id, three user categories and a dense user
    vector; an item id, two item categories and a hashed user x item cross (item side)."""
    from yw_core.interfaces import FeatureField, RecSchema

    return RecSchema(
        (
            FeatureField("user_id", "user", cardinality=1000),
            *(FeatureField(f"user_cat{i}", "user", cardinality=20) for i in range(3)),
            FeatureField("user_dense", "user", "dense", dim=4),
            FeatureField("item_id", "item", cardinality=2000),
            *(FeatureField(f"item_cat{i}", "item", cardinality=20) for i in range(2)),
            FeatureField("user_item_cross", "item", cardinality=64),
        )
    )
