"""Pluggy hooks of the project "yw": what plugins contribute, and where they can listen in.

A distribution publishes a module of hook implementations under the entry-point group `yw.hooks`:

    [project.entry-points."yw.hooks"]
    my_plugin = "my_plugin.hooks"

and marks its functions with `@yw_core.hooks.hookimpl`. Collector hooks receive a `register`
callable; lifecycle hooks are told about benchmark and training events. Implementations may take
fewer arguments than the spec (pluggy's opt-in arguments), so specs can grow without breaking them.
The plugin manager is built on first use; a hook that nobody implements is a call on an empty list.
"""

from __future__ import annotations

import os

import pluggy

PROJECT = "yw"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Specs:
    """The hook specifications; each docstring says when it is called and what it may do."""

    @hookspec
    def yw_register_datasets(self, register):
        """Call register(name, loader) for each dataset the plugin provides."""

    @hookspec
    def yw_register_models(self, register):
        """Call register(name, factory) for each reference model the plugin provides."""

    @hookspec
    def yw_register_reporters(self, register):
        """Call register(name, reporter) for each results reporter the plugin provides.

        After every benchmark run writes its files, `reporter(report, out)` is called with the
        report (as in results.json) and the output folder, e.g. to write a CSV or log a run."""

    @hookspec
    def yw_register_commands(self, subparsers):
        """Add CLI sub-commands to `yw-core` (argparse subparsers; set_defaults(func=...)).

        Benchmark protocols do not need it: they register under `yw.benches`."""

    @hookspec
    def yw_bench_start(self, run):
        """A benchmark run is about to start; `run` holds its settings."""

    @hookspec
    def yw_bench_result(self, run, method_name, metrics):
        """One method's metrics in a benchmark run are ready."""

    @hookspec
    def yw_bench_end(self, run, results):
        """A benchmark run has finished with all its results."""

    @hookspec
    def yw_train_epoch_end(self, state):
        """An epoch of the core training loop has ended; `state` holds epoch, model and metrics."""


_manager: pluggy.PluginManager | None = None


def make_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the specs; loads `yw.hooks` modules unless told not to."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(Specs)
    if load_entry_points:
        from yw_core.registry import Registry

        for module in Registry.discover().load_hooks():
            pm.register(module)
    from yw_core.registry import env_flag

    if env_flag(os.environ, "YW_TRACE_HOOKS"):
        pm.trace.root.setwriter(print)
        pm.enable_tracing()
    return pm


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use."""
    global _manager
    if _manager is None:
        _manager = make_plugin_manager()
    return _manager


def set_plugin_manager(pm: pluggy.PluginManager | None) -> None:
    """Replace (or with None, reset) the process-wide manager; used by tests and embedding hosts."""
    global _manager
    _manager = pm


def collect(hook_name: str) -> dict[str, object]:
    """Run a collector hook and return what the plugins registered, by name."""
    found: dict[str, object] = {}

    def register(name: str, obj: object) -> None:
        if name in found:
            raise ValueError(f"{hook_name}: {name!r} registered twice")
        found[name] = obj

    getattr(get_plugin_manager().hook, hook_name)(register=register)
    return found
