"""`yw-core bench defense` without yw-plugin-attacks says what to install, before any work."""

from yw_bench.defense import DefenseBench
from yw_core import cli
from yw_core.bench import methods


def test_defense_without_the_attacks_plugin_says_what_to_install(
    yw_registry, monkeypatch, capsys, tmp_path
):
    yw_registry(DefenseBench)  # no attack installed
    monkeypatch.setattr(methods, "is_installed", lambda dist: False)
    out = tmp_path / "out"
    assert cli.main(["bench", "defense", "--attacks", "square,simba", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "attacks square, simba are provided by yw-plugin-attacks, which is not installed" in err
    assert (
        "pip install yw-plugin-attacks (from a source checkout: pip install ./plugins/attacks)"
        in err
    )
    assert not (out / "results.json").exists()
