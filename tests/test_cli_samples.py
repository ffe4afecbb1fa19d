"""docs/cli.md's sample runs of `list`, `doctor` and `new-plugin` (and the tutorial's scaffold
run) are what those commands print.

Each `$ yw-core ...` line of those sections runs in the environment its prose names, built here
on top of yw-core alone (this environment's packages minus the first-party plugins) with fake
installed distributions, as pip would leave them. Only the Python and torch versions in
`doctor`'s first line are normalised: they differ from machine to machine.
"""

import os
import re
import shlex
import site
import subprocess
import sys
from pathlib import Path

import pytest

from yw_core.scaffold import scaffold

ROOT = Path(__file__).resolve().parents[1]
CLI_MD = ROOT / "docs" / "cli.md"
TUTORIAL = ROOT / "docs" / "writing-a-plugin.md"
EXAMPLE_SRC = ROOT / "docs" / "examples" / "yw-plugin-logit-noise" / "src"
FIRST_PARTY = re.compile(r"yw_(plugin_|bench)")  # dist-info, package or .pth of a yw-plugin-*
VERSIONS = re.compile(r"Python \S+, torch \S+ \(cuda: \w+\)")

# The environment of each `$ yw-core ...` sample of a section, in the order the section shows
# them: "none" has no plugin, "example" the docs' example plugin, "problems" the example and the
# faulty plugins of writing-a-plugin.md section 8, "reserved" a third-party `energy` scorer.
ENVIRONMENTS = {
    "list": "example none example problems example example none none example".split(),
    "doctor": "example problems reserved".split(),
    "new-plugin": "none none none none".split(),  # run in one folder, in order
}

BAD_CONFIG = '''from yw_core.interfaces import Capabilities, Defense, MethodConfig


class BadConfig(Defense):
    """Its Config field has neither a description nor bounds."""

    name = "bad-config"
    summary = "A Config that breaks the rules."
    capabilities = Capabilities(post_hoc=True)

    class Config(MethodConfig):
        k: int = 3

    def protect(self, model, *, data=None, runtime):
        return model
'''


def _install(site_dir: Path, dist: str, version: str, entry_points: dict, requires: str) -> None:
    """The dist-info pip writes for `dist`: metadata and entry points."""
    info = site_dir / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}"]
    (info / "METADATA").write_text("\n".join([*lines, f"Requires-Dist: {requires}", ""]))
    groups = [
        f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
        for g, eps in entry_points.items()
    ]
    (info / "entry_points.txt").write_text("\n".join(groups))


def _yw_core_alone(base: Path) -> None:
    """Links to this environment's site-packages entries, less the first-party plugins'."""
    base.mkdir()
    for directory in site.getsitepackages():
        for entry in Path(directory).iterdir():
            if not FIRST_PARTY.search(entry.name) and not (base / entry.name).exists():
                (base / entry.name).symlink_to(entry)


def _faulty_plugins(site_dir: Path) -> None:
    """yw-plugin-demo (a bad Config, a missing module, a second logit-noise, hooks) and
    yw-plugin-future (needs yw-core 2)."""
    demo = {
        "bad-config": "yw_plugin_demo.bad:BadConfig",
        "logit-noise": "yw_plugin_demo:LogitNoise",
        "needs-faiss": "yw_plugin_demo.faiss:NeedsFaiss",
    }
    entry_points = {"yw.defenses": demo, "yw.hooks": {"demo": "yw_plugin_demo.hooks"}}
    _install(site_dir, "yw-plugin-demo", "0.2.0", entry_points, "yw-core<2,>=1")
    future = {"yw.defenses": {"future": "yw_plugin_future:Future"}}
    _install(site_dir, "yw-plugin-future", "3.0.0", future, "yw-core>=2")
    package = site_dir / "yw_plugin_demo"
    package.mkdir()
    (package / "__init__.py").write_text('"""A faulty plugin."""\n')
    (package / "bad.py").write_text(BAD_CONFIG)
    (package / "faiss.py").write_text("import faiss_not_here  # noqa: F401\n")
    (package / "hooks.py").write_text('"""Hooks that implement nothing."""\n')


@pytest.fixture(scope="module")
def environments(tmp_path_factory) -> dict[str, list[Path]]:
    """The import paths of each environment; the first, yw-core alone, is a site directory."""
    tmp = tmp_path_factory.mktemp("cli-samples")
    _yw_core_alone(tmp / "base")
    noise = {"yw.defenses": {"logit-noise": "yw_plugin_logit_noise:LogitNoise"}}
    _install(tmp / "example", "yw-plugin-logit-noise", "0.1.0", noise, "yw-core<2,>=1")
    _faulty_plugins(tmp / "problems")
    scaffold("energy", "ood_scorer", tmp / "energy")  # a valid class, named as baselines' energy
    energy = {"yw.ood_scorers": {"energy": "yw_plugin_energy:Energy"}}
    _install(tmp / "reserved", "yw-plugin-energy", "0.1.0", energy, "yw-core<2,>=1")
    example = [tmp / "base", tmp / "example", EXAMPLE_SRC]
    return {
        "none": [tmp / "base"],
        "example": example,
        "problems": [*example, tmp / "problems"],
        "reserved": [tmp / "base", tmp / "reserved", tmp / "energy" / "src"],
    }


def _section(path: Path, heading: str) -> str:
    return path.read_text().split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def _samples(text: str) -> list[tuple[str, str]]:
    """(command, output) of every `$ yw-core` line in the console blocks of `text`."""
    samples = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        for run in re.split(r"^(?=\$ )", block, flags=re.M):
            if run:
                command, _, output = run.partition("\n")
                samples.append((command.removeprefix("$ "), output))
    return samples


def _run(command: str, paths: list[Path], *, cwd: Path) -> str:
    """What `command` prints (stdout and stderr, in order) with only `paths` to import from."""
    args = shlex.split(command)[1:]
    code = (
        f"import site, sys; site.addsitedir({str(paths[0])!r}); "
        f"from yw_core.cli import main; sys.exit(main({args!r}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YW_", "PYTHON"))}
    env.update(
        PYTHONPATH=os.pathsep.join(str(p) for p in paths[1:]),
        PYTHONUNBUFFERED="1",
        XDG_CACHE_HOME=str(cwd / ".cache"),
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    return proc.stdout


@pytest.mark.parametrize("section", sorted(ENVIRONMENTS))
def test_cli_md_samples_are_real_output(section, environments, tmp_path):
    samples = _samples(_section(CLI_MD, f"`{section}`"))
    assert len(samples) == len(ENVIRONMENTS[section]), "name each sample's environment"
    for (command, documented), env in zip(samples, ENVIRONMENTS[section]):
        actual = _run(command, environments[env], cwd=tmp_path)
        normalised = [VERSIONS.sub("Python X, torch X", text) for text in (actual, documented)]
        assert normalised[0] == normalised[1], f"{command} ({env}) prints:\n{actual}"


def test_tutorial_scaffold_sample_is_real_output(environments, tmp_path):
    text = _section(TUTORIAL, "1. Start from the scaffold, or by hand")
    ((command, documented),) = _samples(text)
    assert _run(command, environments["none"], cwd=tmp_path) == documented


def test_cli_md_lists_the_files_new_plugin_writes(tmp_path):
    text = _section(CLI_MD, "`new-plugin`")
    tree = re.search(r"It creates:\n\n```text\n(\S+)/\n(.*?)```", text, re.S)
    documented = {line.split()[0] for line in tree[2].splitlines()}
    out = scaffold("my-defense", "defense", tmp_path / tree[1])
    assert documented == {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
