"""Fake installed distributions: dist-info folders and modules on a temporary sys.path entry.

importlib.metadata finds them exactly as it finds pip-installed ones, so discovery, statuses and
the CLI are tested end to end in a subprocess without pip or network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from yw_core.groups import HOOKS_GROUP, KINDS

GOOD_DEFENSE = '''
import torch
from pydantic import Field
from yw_core.interfaces import Capabilities, Defense, MethodConfig, Paper


class Temperature(Defense):
    """Divides logits by a temperature: keeps predictions, changes confidences."""

    name = "{name}"
    summary = "Temperature scaling of the logits."
    paper = Paper(title="On Calibration of Modern Neural Networks", authors=("Guo",), year=2017)
    capabilities = Capabilities(post_hoc=True)

    class Config(MethodConfig):
        temperature: float = Field(2.0, gt=0.0, le=100.0, description="logits are divided by this")

    def protect(self, model, *, data=None, runtime):
        t = self.config.temperature

        class Scaled(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, x):
                return self.model(x) / t

        return Scaled()
'''


def _installed_yw_distributions() -> list[str]:
    groups = {HOOKS_GROUP, *KINDS.values()}
    found = set()
    for dist in metadata.distributions():
        if any(ep.group in groups for ep in dist.entry_points):
            found.add(dist.metadata["Name"])
    return sorted(found)


class FakeSite:
    """A folder of fake distributions; `run_cli` runs yw-core with it on PYTHONPATH."""

    good_defense = GOOD_DEFENSE  # source of a valid post-hoc Defense; format(name=...)

    def __init__(self, root: Path):
        self.root = root
        self.catalogue: Path | None = None  # registry.toml the CLI reads instead of core's

    def reserve(self, dist: str, name: str, interface: str) -> None:
        """Make the CLI's catalogue core's registry.toml plus a planned first-party `dist`
        providing `name` (every real first-party plugin may be installed in the venv)."""
        from yw_core.catalogue import CATALOGUE_PATH

        self.root.mkdir(parents=True, exist_ok=True)
        self.catalogue = self.root / "registry.toml"
        extra = (
            f'\n[plugins.{name}]\ndistribution = "{dist}"\npath = "plugins/{name}"\n'
            f'status = "planned"\nmethods = {{ {name} = "{interface}" }}\n'
        )
        self.catalogue.write_text(CATALOGUE_PATH.read_text() + extra)

    def add(
        self,
        dist: str,
        entry_points: dict[str, dict[str, str]],
        modules: dict[str, str] | None = None,
        requires: tuple[str, ...] = ("yw-core>=1,<2",),
        version: str = "1.0",
    ) -> None:
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir(parents=True)
        lines = ["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}"]
        lines += [f"Requires-Dist: {r}" for r in requires]
        (info / "METADATA").write_text("\n".join(lines) + "\n")
        eps = []
        for group, items in entry_points.items():
            eps.append(f"[{group}]")
            eps += [f"{name} = {value}" for name, value in items.items()]
        (info / "entry_points.txt").write_text("\n".join(eps) + "\n")
        for module, source in (modules or {}).items():
            (self.root / f"{module}.py").write_text(textwrap.dedent(source))

    def env(self, **extra: str) -> dict[str, str]:
        """The subprocess environment: the fake site on PYTHONPATH, and the yw plugins really
        installed in this venv (plugins/*) disabled, so each test sees only its own fakes."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("YW_")}
        env["PYTHONPATH"] = str(self.root)
        env["YW_DISABLE_PLUGINS"] = ",".join(_installed_yw_distributions())
        env["XDG_CACHE_HOME"] = str(self.root / ".cache")  # stevedore's entry-point cache
        env.update(extra)
        return env

    def run(self, code: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def run_cli(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        code = f"import sys; from yw_core.cli import main; sys.exit(main({list(args)!r}))"
        if self.catalogue is not None:
            path = str(self.catalogue)
            patch = f"import yw_core.catalogue as c; c.CATALOGUE_PATH = c.Path({path!r})"
            code = f"{patch}; {code}"
        return self.run(code, **env)

    def list_json(self, *args: str, **env: str) -> dict[str, dict]:
        proc = self.run_cli("list", "--json", *args, **env)
        assert proc.returncode == 0, proc.stderr
        return {e["name"]: e for e in json.loads(proc.stdout)}


@pytest.fixture
def fake_site(tmp_path) -> FakeSite:
    return FakeSite(tmp_path / "site")


@pytest.fixture
def bare_site(tmp_path) -> FakeSite:
    """A fake site with no fake plugins (and the venv's own disabled)."""
    return FakeSite(tmp_path / "bare")
