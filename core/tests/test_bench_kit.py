"""The protocol kit: the class rules, generated flags, method selection and configuration, the
run skeleton's files and hooks, and `yw-core bench` with third-party and broken protocols."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from pydantic import Field, ValidationError

from yw_core import cli, hooks
from yw_core.bench import (
    Protocol,
    ProtocolConfig,
    Report,
    check_overrides,
    check_protocol_class,
    configure,
    run_protocol,
    select,
)
from yw_core.interfaces import Capabilities, Defense, MethodConfig
from yw_core.registry import Registry
from yw_core.testing.protocol import protocol_suite


class Noop(Defense):
    """A post-hoc defense returning the model itself."""

    name = "noop"
    summary = "returns the model"
    capabilities = Capabilities(post_hoc=True)

    class Config(MethodConfig):
        strength: float = Field(1.0, ge=0, description="unused")
        epochs: int = Field(3, ge=1, description="unused")

    def protect(self, model, *, data=None, runtime):
        return model


class Trainer(Noop):
    """A training-time defense whose epochs field has another name."""

    name = "trainer"
    capabilities = Capabilities(training=True)
    bench_fields: ClassVar[dict[str, Any]] = {"epochs": "rounds", "eps": None}

    class Config(MethodConfig):
        rounds: int = Field(1, ge=1, description="training rounds")


class CountConfig(ProtocolConfig):
    methods: tuple[str, ...] | None = Field(None, description="defenses; None = all post-hoc")
    repeats: int = Field(2, ge=1, le=10, description="how often to count")
    loud: bool = Field(False, description="shout")
    fail: bool = Field(False, description="raise inside run (for tests)")


class Count(Protocol):
    """Counts the selected defenses: a protocol with no torch work, for the kit's tests."""

    name = "count"
    summary = "counts post-hoc defenses"
    Config = CountConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {"big": {"repeats": 5}}

    def run(self, config, *, runtime, progress):
        found = select(
            self,
            "defense",
            config.methods,
            where=lambda cls: cls.capabilities.post_hoc,
            why="not post-hoc",
        )
        if config.fail:
            raise RuntimeError("failed inside run")
        results = {name: {"count": config.repeats, "loud": config.loud} for name in found}
        for name, entry in results.items():
            self.result(name, entry)
        return Report(results=results, manifest={"defenses": len(found)})

    def format_table(self, report):
        return "".join(f"{n} {r['count']}\n" for n, r in report["results"].items())


TestCountConformance = protocol_suite(Count)


def test_protocol_rules_name_the_problem():
    class Bad(Count):
        name = "Bad Name"
        presets: ClassVar[dict[str, dict[str, Any]]] = {"broken": {"repeats": 0}}

    class Clash(ProtocolConfig):
        out: str = Field("x", description="clashes with --out")

    class Clashing(Count):
        Config = Clash

    problems = check_protocol_class(Bad)
    assert any("name 'Bad Name'" in p for p in problems)
    assert any("preset 'broken' does not validate" in p for p in problems)
    assert any("clash with the CLI's own options" in p for p in check_protocol_class(Clashing))
    assert check_protocol_class(Noop) == [f"{Noop!r} is not a subclass of yw_core.bench.Protocol"]


def test_configure_maps_settings_through_bench_fields_and_fails_loudly():
    assert configure(Trainer, {"epochs": 7, "eps": 0.3}).config.rounds == 7  # eps ignored
    assert configure(Noop, {"epochs": 4, "progress": True}).config.epochs == 4  # progress optional
    with pytest.raises(ValueError, match=r"sets 'sigma', but Noop.Config has no field 'sigma'"):
        configure(Noop, {"sigma": 0.5})
    with pytest.raises(ValidationError, match="strength"):
        configure(Noop, {}, overrides={"strength": -1})


def test_overrides_are_checked_against_the_methods_configs_before_a_run():
    methods = {"none": None, "noop": Noop}
    check_overrides({"noop": {"strength": 2.0}}, methods)
    with pytest.raises(ValueError, match="overrides name nosuch, not in this run: none, noop"):
        check_overrides({"nosuch": {"x": 1}}, methods)
    with pytest.raises(ValueError, match=r"--overrides noop.strength: .*greater than or equal"):
        check_overrides({"noop": {"strength": -1}}, methods)
    with pytest.raises(ValueError, match="--overrides noop.no_such: Extra inputs"):
        check_overrides({"noop": {"no_such": 1}}, methods)
    with pytest.raises(ValueError, match="none, which has no Config"):
        check_overrides({"none": {"x": 1}}, methods)


def test_select_by_capability_and_errors_name_what_is_known():
    protocol = Count(Registry.from_classes([Noop, Trainer]))
    assert list(select(protocol, "defense", where=lambda c: c.capabilities.post_hoc)) == ["noop"]
    with pytest.raises(ValueError, match="trainer: not post-hoc"):
        select(
            protocol,
            "defense",
            ["trainer"],
            where=lambda c: c.capabilities.post_hoc,
            why="not post-hoc",
        )
    with pytest.raises(ValueError, match="unknown method nosuch; known methods: noop, trainer"):
        select(protocol, "defense", ["nosuch"])
    with pytest.raises(ValueError, match="attack square is provided by yw-plugin-attacks, which"):
        select(protocol, "attack", ["square"])
    assert protocol.used == {"defense": {"noop"}}


def test_run_writes_files_manifest_and_hooks(tmp_path, yw_registry):
    yw_registry(Noop, Trainer)
    seen: list[tuple[str, Any]] = []

    class Listener:
        @hooks.hookimpl
        def yw_bench_start(self, run):
            seen.append(("start", run["protocol"]))

        @hooks.hookimpl
        def yw_bench_result(self, run, method_name, metrics):
            seen.append(("result", method_name))

        @hooks.hookimpl
        def yw_bench_end(self, run, results):
            seen.append(("end", results["manifest"]["defenses"]))

        @hooks.hookimpl
        def yw_register_reporters(self, register):
            register("csv", lambda report, out: (out / "rows.csv").write_text("name\nnoop\n"))

    hooks.get_plugin_manager().register(Listener())
    config = Count().config("big", loud=True)
    report = run_protocol(Count, config, tmp_path, progress=False, preset="big")
    assert seen == [("start", "count"), ("result", "noop"), ("end", 1)]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["results"] == {"noop": {"count": 5, "loud": True}}
    assert saved["manifest"]["preset"] == "big"
    assert saved["manifest"]["versions"]["in-memory"] == "0"
    assert saved["manifest"]["files"] == ["results.json", "results.txt"]
    assert (tmp_path / "results.txt").read_text() == "noop 5\n"
    assert (tmp_path / "rows.csv").exists()
    assert report["config"]["repeats"] == 5


def test_a_failing_run_leaves_earlier_results_untouched(tmp_path, yw_registry):
    yw_registry(Noop)
    run_protocol(Count, CountConfig(), tmp_path, progress=False)
    before = (tmp_path / "results.json").read_bytes()
    with pytest.raises(RuntimeError, match="failed inside run"):
        run_protocol(Count, CountConfig(fail=True, repeats=3), tmp_path, progress=False)
    assert (tmp_path / "results.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "results.txt"]


def test_cli_flags_come_from_the_config(tmp_path, yw_registry, capsys):
    yw_registry(Count, Noop)
    out = tmp_path / "out"
    assert cli.main(["bench", "count", "--repeats", "3", "--loud", "--out", str(out)]) == 0
    assert "noop 3" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["results"]["noop"]["loud"] is True
    assert cli.main(["bench", "count", "--preset", "big", "--repeats", "4", "--out", str(out)]) == 0
    saved = json.loads((out / "results.json").read_text())
    assert saved["results"]["noop"]["count"] == 4 and saved["manifest"]["preset"] == "big"
    assert cli.main(["bench", "count", "--repeats", "11", "--out", str(tmp_path / "x")]) == 2
    assert "--repeats: Input should be less than or equal to 10" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_list_info_and_unknown_protocol(yw_registry, capsys):
    yw_registry(Count, Noop)
    assert cli.main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert "count" in out and "big" in out and "counts post-hoc defenses" in out
    assert cli.main(["info", "count"]) == 0
    out = capsys.readouterr().out
    assert "count (bench)" in out and "preset big: repeats=5" in out and "repeats" in out
    assert cli.main(["bench", "nosuch"]) == 2
    assert "no protocol named nosuch; installed: count" in capsys.readouterr().err


def test_cli_without_protocols_says_what_to_install(yw_registry, capsys):
    yw_registry(Noop)
    assert cli.main(["bench", "defense"]) == 2
    assert "pip install yw-bench" in capsys.readouterr().err
    assert cli.main(["bench"]) == 2


PROTOCOL_SOURCE = '''
from pydantic import Field
from yw_core.bench import Protocol, ProtocolConfig, Report


class HelloConfig(ProtocolConfig):
    greeting: str = Field("hello", description="what to say")


class Hello(Protocol):
    """A third-party protocol."""

    name = "hello"
    summary = "says hello"
    Config = HelloConfig

    def run(self, config, *, runtime, progress):
        return Report(results={"greeting": config.greeting})

    def format_table(self, report):
        return report["results"]["greeting"] + "\\n"
'''


def test_third_party_and_broken_protocols_through_entry_points(fake_site, tmp_path):
    fake_site.add(
        "yw-hello", {"yw.benches": {"hello": "hello_bench:Hello"}}, {"hello_bench": PROTOCOL_SOURCE}
    )
    fake_site.add(
        "yw-broken-bench",
        {"yw.benches": {"broken": "broken_bench:Nope"}},
        {"broken_bench": "raise RuntimeError('protocol boom')\n"},
    )
    listed = fake_site.run_cli("bench", "--list")
    assert listed.returncode == 0, listed.stderr
    assert "hello" in listed.stdout and "says hello" in listed.stdout
    assert "broken" in listed.stdout and "protocol boom" in listed.stdout
    out = tmp_path / "out"
    ran = fake_site.run_cli("bench", "hello", "--greeting", "hi", "--out", str(out))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("hi\n")
    assert json.loads((out / "results.json").read_text())["results"] == {"greeting": "hi"}
    broken = fake_site.run_cli("bench", "broken")
    assert broken.returncode == 2 and "is broken: RuntimeError: protocol boom" in broken.stderr
    rows = fake_site.list_json("--interface", "bench")
    assert rows["hello"]["interface"] == "bench" and rows["hello"]["source"] == "third-party"
