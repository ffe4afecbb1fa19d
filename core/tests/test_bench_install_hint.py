"""A protocol that names a method or attack of a missing distribution says what to install,
from the first-party catalogue (registry.toml), or which variable hides an installed one."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from yw_core.bench import methods, select
from yw_core.interfaces import Capabilities, Defense, MethodConfig
from yw_core.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
ATTACKS_HINT = (
    "attacks square, simba are provided by yw-plugin-attacks, which is not installed: "
    "pip install yw-plugin-attacks (from a source checkout: pip install ./plugins/attacks)"
)


class Noop(Defense):
    """A post-hoc defense returning the model itself."""

    name = "noop"
    summary = "returns the model"
    capabilities = Capabilities(post_hoc=True)

    class Config(MethodConfig):
        pass

    def protect(self, model, *, data=None, runtime):
        return model


def _protocol(registry: Registry, environ=None) -> SimpleNamespace:
    if environ is not None:
        registry.environ = environ
    return SimpleNamespace(registry=registry, used={})


@pytest.fixture
def not_installed(monkeypatch):
    monkeypatch.setattr(methods, "is_installed", lambda dist: False)


def test_missing_attacks_name_their_distribution_and_both_install_lines(not_installed):
    protocol = _protocol(Registry.from_classes([Noop]))
    with pytest.raises(ValueError) as exc:
        select(protocol, "attack", ["square", "simba"])
    assert str(exc.value) == ATTACKS_HINT
    assert (ROOT / "plugins" / "attacks" / "pyproject.toml").is_file()


def test_unlisted_names_are_unknown_beside_the_hint(not_installed):
    protocol = _protocol(Registry.from_classes([Noop]))
    with pytest.raises(ValueError) as exc:
        select(protocol, "attack", ["square", "nosuch", "simba"])
    assert str(exc.value) == f"unknown attack nosuch; known attacks: none installed; {ATTACKS_HINT}"
    with pytest.raises(ValueError) as exc:  # aaa is a defense in the catalogue, not an attack
        select(protocol, "attack", ["aaa"])
    assert str(exc.value) == "unknown attack aaa; known attacks: none installed"


def test_methods_of_other_interfaces_get_the_hint_too(not_installed):
    protocol = _protocol(Registry.from_classes([Noop]))
    with pytest.raises(ValueError) as exc:
        select(protocol, "defense", ["aaa", "noop"], builtin=["none"])
    assert str(exc.value) == (
        "method aaa is provided by yw-plugin-aaa, which is not installed: "
        "pip install yw-plugin-aaa (from a source checkout: pip install ./plugins/aaa)"
    )


def test_an_installed_distribution_hidden_by_the_switches_says_so(monkeypatch):
    monkeypatch.setattr(methods, "is_installed", lambda dist: True)
    hidden = _protocol(Registry.from_classes([Noop]), {"YW_DISABLE_PLUGINS": "yw-plugin-attacks"})
    with pytest.raises(ValueError, match=r"installed but hidden by YW_DISABLE_PLUGINS=yw-plugin-"):
        select(hidden, "attack", ["square"])
    plain = _protocol(Registry.from_classes([Noop]), {})
    with pytest.raises(ValueError, match="attack square is .* installed but does not register it$"):
        select(plain, "attack", ["square"])


def test_with_no_plugin_discovered_the_message_fits_what_is_installed():
    environ = {"YW_LOAD_PLUGINS": ""}  # discovery keeps no distribution
    protocol = _protocol(Registry.discover(environ))
    with pytest.raises(ValueError) as exc:
        select(protocol, "attack", ["square", "simba"])
    if methods.is_installed("yw-plugin-attacks"):
        assert str(exc.value).endswith("which is installed but hidden by YW_LOAD_PLUGINS=")
    else:
        assert str(exc.value) == ATTACKS_HINT


def test_install_line_gives_both_install_lines_for_first_party_distributions():
    from yw_core.bench import install_line

    assert install_line("yw-plugin-mumis", "yw-plugin-baselines") == (
        "pip install yw-plugin-mumis yw-plugin-baselines "
        "(from a source checkout: pip install ./plugins/mumis ./plugins/baselines)"
    )
    assert install_line("yw-plugin-elsewhere") == "pip install yw-plugin-elsewhere"
