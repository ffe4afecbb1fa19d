"""Hooks: specs are documented, collectors gather contributions, plugin commands reach the CLI."""

import inspect

import pluggy
import pytest

from yw_core import hooks

HOOKS_MODULE = """
from yw_core.hooks import hookimpl

@hookimpl
def yw_register_datasets(register):
    register("tiny", lambda: [1, 2, 3])

@hookimpl
def yw_register_commands(subparsers):
    p = subparsers.add_parser("hello", help="say hello")
    p.set_defaults(func=lambda args: print("hello from a plugin") or 0)
"""


def test_every_spec_has_a_docstring_and_the_yw_prefix():
    specs = [m for n, m in inspect.getmembers(hooks.Specs, inspect.isfunction)]
    assert len(specs) == 8
    for spec in specs:
        assert spec.__name__.startswith("yw_") and spec.__doc__


def test_collect_gathers_registrations_and_rejects_duplicates():
    pm = hooks.make_plugin_manager(load_entry_points=False)

    class One:
        @hooks.hookimpl
        def yw_register_reporters(self, register):
            register("acc", len)

    class Two:
        @hooks.hookimpl
        def yw_register_reporters(self, register):
            register("acc", max)

    pm.register(One())
    hooks.set_plugin_manager(pm)
    try:
        assert hooks.collect("yw_register_reporters") == {"acc": len}
        pm.register(Two())
        with pytest.raises(ValueError, match="'acc' registered twice"):
            hooks.collect("yw_register_reporters")
    finally:
        hooks.set_plugin_manager(None)


def test_unimplemented_hook_is_an_empty_call():
    pm = hooks.make_plugin_manager(load_entry_points=False)
    assert pm.hook.yw_bench_start.get_hookimpls() == []
    assert pm.hook.yw_bench_start(run={}) == []


def test_impl_with_unknown_argument_is_rejected():
    pm = hooks.make_plugin_manager(load_entry_points=False)

    class Wrong:
        @hooks.hookimpl
        def yw_bench_end(self, run, results, extra):
            pass

    with pytest.raises(pluggy.PluginValidationError):
        pm.register(Wrong())


def test_hooks_entry_point_adds_dataset_and_command(fake_site):
    fake_site.add("yw-hello", {"yw.hooks": {"hello": "hello_hooks"}}, {"hello_hooks": HOOKS_MODULE})
    proc = fake_site.run_cli("hello")
    assert proc.returncode == 0, proc.stderr
    assert "hello from a plugin" in proc.stdout
    code = "from yw_core.hooks import collect; print(sorted(collect('yw_register_datasets')))"
    assert fake_site.run(code).stdout.strip() == "['tiny']"


def test_broken_hooks_module_is_reported_not_raised(fake_site):
    fake_site.add("yw-badhooks", {"yw.hooks": {"bad": "bad_hooks"}}, {"bad_hooks": "1/0\n"})
    code = "from yw_core.hooks import collect; print(collect('yw_register_datasets'))"
    proc = fake_site.run(code)
    assert proc.returncode == 0
    assert proc.stdout.strip() == "{}"
    assert "skipping 'bad'" in proc.stderr and "ZeroDivisionError" in proc.stderr


def test_builtin_commands_never_load_hooks(fake_site):
    fake_site.add("yw-badhooks", {"yw.hooks": {"bad": "bad_hooks"}}, {"bad_hooks": "1/0\n"})
    proc = fake_site.run_cli("list")
    assert proc.returncode == 0
    assert "ZeroDivisionError" not in proc.stderr
