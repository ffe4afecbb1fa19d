"""The conformance rules every method class follows, whatever its interface."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from yw_core.testing.fixtures import tiny_classifier, tiny_dataset


class MethodConformance:
    """Rules every method class follows, whatever its interface."""

    method: ClassVar[type]
    interface: ClassVar[type | None] = None
    config_overrides: ClassVar[dict[str, Any]] = {}
    num_classes: ClassVar[int] = 4

    def make(self):
        return self.method(**self.config_overrides)

    def make_model(self):
        return tiny_classifier(num_classes=self.num_classes)

    def make_data(self, n: int = 32, seed: int = 0):
        return tiny_dataset(n, self.num_classes, seed)

    def test_method_class_is_valid(self):
        from yw_core.interfaces import check_method_class

        assert check_method_class(self.method, self.interface) == []

    def test_builds_with_paper_defaults(self):
        method = self.method()
        assert method.config == self.method.Config()

    def test_builds_from_a_config_a_dict_or_none_alike(self):
        """`Method(config)` takes a Config, a dict or None, with keyword overrides on top."""
        cls = self.method
        overrides = dict(self.config_overrides)
        built = [
            cls(cls.Config(**overrides)).config,
            cls(overrides).config,
            cls(None, **overrides).config,
        ]
        assert built[0] == built[1] == built[2]

    def test_unknown_config_key_is_rejected_by_name(self):
        from pydantic import ValidationError

        with pytest.raises(ValidationError, match="no_such_option"):
            self.method(no_such_option=1)

    def test_config_is_frozen(self):
        from pydantic import ValidationError

        config = self.method().config
        for field in type(config).model_fields:
            with pytest.raises(ValidationError):
                setattr(config, field, getattr(config, field))
            break

    def test_out_of_bounds_values_are_rejected_by_name(self):
        from pydantic import ValidationError

        from yw_core.interfaces import config_schema

        for row in config_schema(self.method.Config):
            for key, bound in row["bounds"].items():
                outside = bound - 1 if key in ("ge", "gt") else bound + 1
                with pytest.raises(ValidationError, match=row["name"]):
                    self.method(**{row["name"]: outside})

    def test_describe_is_json_serialisable(self):
        import json

        info = json.loads(json.dumps(self.method.describe(), default=str))
        assert info["name"] == self.method.name
        assert info["interface"] == self.method.interface

    def test_entry_point_matches_class(self):
        """When installed, entry points that point at this class carry its name (else: broken)."""
        from importlib import metadata

        cls = self.method
        found = [
            ep
            for ep in metadata.entry_points(group=cls.group)
            if ep.attr == cls.__qualname__ and cls.__module__.startswith(ep.module)
        ]
        found = [ep for ep in found if ep.load() is cls]
        if not found:
            pytest.skip("not installed through an entry point")
        assert [ep.name for ep in found] == [cls.name] * len(found)
