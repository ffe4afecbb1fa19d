"""Discovery, statuses and failure isolation: the CLI in a subprocess on fake distributions."""

import json

import pytest

IMPORT_MARKER = "yw-test-imported"


@pytest.fixture
def site(fake_site):
    """One of each case: ok, broken, missing module, incompatible, conflict, not a method, hooks."""
    fake_site.add(
        "yw-temperature",
        {"yw.defenses": {"temperature": "temperature_plugin:Temperature"}},
        {"temperature_plugin": fake_site.good_defense.format(name="temperature")},
    )
    fake_site.add(
        "yw-broken",
        {"yw.defenses": {"broken": "broken_plugin:Broken"}},
        {"broken_plugin": "raise RuntimeError('boom at import')\n"},
    )
    fake_site.add(
        "yw-needs-extra",
        {"yw.attacks": {"needs-extra": "needs_extra_plugin:Thing"}},
        {"needs_extra_plugin": "import no_such_dependency_xyz\n"},
        requires=("yw-core>=1", "no-such-dependency-xyz>=2"),
    )
    fake_site.add(
        "yw-future",
        {"yw.defenses": {"future": "future_plugin:Future"}},
        {"future_plugin": f"print('{IMPORT_MARKER}')\nraise SystemExit('must not be imported')\n"},
        requires=("yw-core>=99",),
    )
    for dist in ("yw-dup-a", "yw-dup-b"):
        fake_site.add(dist, {"yw.defenses": {"dup": "temperature_plugin:Temperature"}})
    fake_site.add(
        "yw-not-a-method",
        {"yw.defenses": {"notamethod": "notamethod_plugin:Thing"}},
        {"notamethod_plugin": "class Thing:\n    pass\n"},
    )
    fake_site.reserve("yw-plugin-reserved", "reserved", "unlearner")
    fake_site.add(
        "yw-plugin-reserved", {"yw.defenses": {"reserved": "temperature_plugin:Temperature"}}
    )
    fake_site.add(
        "yw-weird",
        {"yw.defenses": {"weird": "temperature_plugin:Temperature"}},
        requires=("yw-core>=one",),
    )
    return fake_site


def test_list_shows_metadata_statuses_without_importing(site):
    proc = site.run_cli("list")
    assert proc.returncode == 0, proc.stderr
    assert IMPORT_MARKER not in proc.stdout
    header = proc.stdout.splitlines()[0].split()
    assert header == ["NAME", "INTERFACE", "DISTRIBUTION", "VERSION", "STATUS", "SOURCE"]
    rows = site.list_json()
    assert rows["temperature"]["status"] == "unchecked"
    assert rows["future"]["status"] == "incompatible"
    assert "yw-core>=99" in rows["future"]["reason"]
    assert rows["dup"]["status"] == "conflict"
    assert rows["weird"]["status"] == "broken"
    assert "invalid yw-core requirement '>=one'" in rows["weird"]["reason"]
    assert {"name", "interface", "distribution", "version", "status", "source"} <= set(
        rows["temperature"]
    )


def test_list_check_classifies_every_failure_and_exits_zero(site):
    proc = site.run_cli("list", "--check")
    assert proc.returncode == 0, proc.stderr
    assert IMPORT_MARKER not in proc.stdout + proc.stderr
    assert "broken: RuntimeError: boom at import" in proc.stdout
    rows = site.list_json("--check")
    assert rows["temperature"]["status"] == "ok"
    assert rows["broken"]["status"] == "broken"
    assert rows["needs-extra"]["status"] == "broken"
    assert "No module named 'no_such_dependency_xyz'" in rows["needs-extra"]["reason"]
    assert 'pip install "no-such-dependency-xyz>=2"' in rows["needs-extra"]["reason"]
    assert rows["future"]["status"] == "incompatible"
    assert rows["notamethod"]["status"] == "broken"
    assert "not a subclass" in rows["notamethod"]["reason"]


def test_source_is_first_party_only_for_catalogue_distributions(site):
    rows = site.list_json()
    assert rows["reserved"]["source"] == "first-party"
    filtered = site.run_cli("list", "--interface", "unlearner")
    assert "No yw plugins match" in filtered.stdout
    assert rows["temperature"]["source"] == "third-party"


def test_doctor_fails_on_broken_and_passes_when_clean(site, fake_site):
    proc = site.run_cli("doctor")
    assert proc.returncode == 1
    assert "broken" in proc.stdout and "incompatible" in proc.stdout
    clean = site.run_cli("doctor", YW_LOAD_PLUGINS="yw-temperature")
    assert clean.returncode == 0, clean.stdout
    assert "1 plugin entry ok, 0 with problems" in clean.stdout


def test_load_and_disable_switches(site):
    only = site.list_json(YW_LOAD_PLUGINS="yw-temperature,broken")
    assert set(only) == {"temperature", "broken"}
    assert site.list_json(YW_LOAD_PLUGINS="") == {}
    rest = site.list_json(YW_DISABLE_PLUGINS="yw-broken,future")
    assert "broken" not in rest and "future" not in rest and "temperature" in rest


def test_strict_switch_reraises_the_import_error(site):
    proc = site.run_cli("list", "--check", YW_STRICT_PLUGINS="1", YW_LOAD_PLUGINS="yw-broken")
    assert proc.returncode != 0
    assert "RuntimeError: boom at import" in proc.stderr
    invalid = site.run_cli("list", "--check", YW_STRICT_PLUGINS="1", YW_LOAD_PLUGINS="notamethod")
    assert invalid.returncode != 0
    assert "is not a valid method" in invalid.stderr
    off = site.run_cli("list", "--check", YW_STRICT_PLUGINS="0", YW_LOAD_PLUGINS="yw-broken")
    assert off.returncode == 0


def test_info_shows_paper_and_config(site):
    proc = site.run_cli("info", "temperature")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "On Calibration of Modern Neural Networks" in out
    assert "temperature" in out and "2.0" in out and "gt 0.0" in out
    data = json.loads(site.run_cli("info", "temperature", "--json").stdout)
    assert data["config"][0]["default"] == 2.0


def test_info_on_unknown_name_exits_2_with_closest_names(site):
    proc = site.run_cli("info", "temprature")
    assert proc.returncode == 2
    assert "no method named temprature" in proc.stderr
    assert "temperature" in proc.stderr
    assert site.run_cli("info", "nosuch").returncode == 2


def test_info_on_broken_or_incompatible_exits_1_with_reason(site):
    broken = site.run_cli("info", "broken")
    assert broken.returncode == 1 and "boom at import" in broken.stderr
    future = site.run_cli("info", "future")
    assert future.returncode == 1 and "incompatible" in future.stderr
    assert IMPORT_MARKER not in future.stdout


def test_list_imports_neither_torch_nor_plugin_code(site):
    code = (
        "import io, sys, contextlib\n"
        "from yw_core.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['list'])\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in\n"
        "       ('torch', 'pydantic', 'stevedore', 'temperature_plugin', 'broken_plugin')]\n"
        "print(sorted(bad))\n"
    )
    proc = site.run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_freeze_and_interface_filter(site):
    frozen = site.run_cli("list", "--freeze").stdout.splitlines()
    assert frozen[0].startswith("yw-core==")
    assert "yw-temperature==1.0" in frozen
    attacks = site.list_json("--interface", "attack")
    assert set(attacks) == {"needs-extra"}


def test_available_lists_catalogue_rows_not_installed(site, bare_site):
    proc = site.run_cli("list", "--available", "--json")
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert "reserved" not in rows  # yw-plugin-reserved is installed in the fake site
    bare_site.reserve("yw-plugin-reserved", "reserved", "unlearner")
    proc = bare_site.run_cli("list", "--available", "--json")
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["reserved"]["install"] == "pip install yw-plugin-reserved"
    assert rows["reserved"]["interface"] == "unlearner"


class _Dist:
    def __init__(self, *requires):
        self.requires = list(requires)


@pytest.mark.parametrize(
    ("requires", "expected"),
    [
        (("torch>=2.2", "yw-core>=1,<2"), ">=1,<2"),
        (("yw_core (>=1.0)",), ">=1.0"),
        (("YW-Core[extra] >= 1 , < 2",), ">=1,<2"),
        (("yw-core",), ""),
        (("yw-core @ file:///src/core",), ""),
        (("yw-core>=99; extra == 'dev'", "yw-core>=1"), ">=1"),
        (("yw-core>=99; python_version < '3'",), None),
        (("yw-corex>=5", "torch"), None),
        ((), None),
    ],
)
def test_core_requirement_parsing(requires, expected):
    from yw_core.registry import core_requirement

    assert core_requirement(_Dist(*requires)) == expected


def test_core_admits():
    from yw_core.registry import core_admits

    assert core_admits(">=1,<2", "1.4.0") and core_admits("", "1.0") and core_admits(None, "1.0")
    assert not core_admits(">=99", "1.0.0")
    assert core_admits(">=1", "1.1.0.dev0")
