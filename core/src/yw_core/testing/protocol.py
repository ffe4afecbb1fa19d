"""Conformance suite for benchmark protocols: the class rules, its Config as CLI flags, presets,
and (with `smoke`) a real run that writes readable files.

    from yw_core.testing import protocol_suite
    TestProtocol = protocol_suite(MyBench, smoke={"n": 20})
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest


class ProtocolConformance:
    """What `yw-core bench` relies on in every protocol; set `smoke` to a cheap Config."""

    protocol: ClassVar[type]
    smoke: ClassVar[dict[str, Any] | None] = None

    def test_protocol_class_is_valid(self):
        from yw_core.bench import check_protocol_class

        assert check_protocol_class(self.protocol) == []

    def test_unknown_config_key_is_rejected_by_name(self):
        from pydantic import ValidationError

        with pytest.raises(ValidationError, match="no_such_option"):
            self.protocol.Config(no_such_option=1)

    def test_every_field_is_a_cli_flag_with_help(self):
        import argparse

        from yw_core.bench.flags import add_config_flags, flag

        parser = argparse.ArgumentParser(prog=f"yw-core bench {self.protocol.name}")
        add_config_flags(parser, self.protocol.Config)
        text = parser.format_help()
        for name in self.protocol.Config.model_fields:
            assert flag(name) in text

    def test_presets_validate(self):
        protocol = self.protocol.__new__(self.protocol)
        for preset in self.protocol.presets:
            assert isinstance(protocol.config(preset), self.protocol.Config)

    def test_describe_is_json_serialisable(self):
        import json

        info = json.loads(json.dumps(self.protocol.describe(), default=str))
        assert info["name"] == self.protocol.name and info["interface"] == "bench"

    def test_entry_point_matches_class(self):
        """When installed, entry points that point at this class carry its name."""
        from importlib import metadata

        cls = self.protocol
        found = [
            ep
            for ep in metadata.entry_points(group="yw.benches")
            if ep.attr == cls.__qualname__ and cls.__module__.startswith(ep.module)
        ]
        found = [ep for ep in found if ep.load() is cls]
        if not found:
            pytest.skip("not installed through an entry point")
        assert [ep.name for ep in found] == [cls.name] * len(found)

    def test_smoke_run_writes_readable_results(self, tmp_path):
        import json

        from yw_core.bench import run_protocol

        if self.smoke is None:
            pytest.skip("no smoke config: set `smoke` to a cheap Config to run the protocol")
        protocol = self.protocol()
        report = run_protocol(protocol, protocol.Config(**self.smoke), tmp_path, progress=False)
        saved = json.loads((tmp_path / "results.json").read_text())
        assert saved["manifest"]["protocol"] == self.protocol.name
        assert saved["results"] == json.loads(json.dumps(report["results"]))
        assert (tmp_path / "results.txt").read_text().strip()
        for name in report["manifest"]["files"]:
            assert (tmp_path / name).stat().st_size > 0


def protocol_suite(protocol: type, **attributes: Any) -> type[ProtocolConformance]:
    """The conformance test class for `protocol`; name it Test*."""
    name = f"Test{protocol.__name__}Conformance"
    return type(name, (ProtocolConformance,), {"protocol": protocol, **attributes})
