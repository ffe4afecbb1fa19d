"""Docs stay true: the tutorial shows the example plugins' files as they are, and the CLI
reference covers every command and option the parser has, with the protocols' option tables
as their Configs generate them."""

import argparse
import importlib.util
import re
from pathlib import Path

import pytest

from yw_core.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "writing-a-plugin.md"
EXAMPLES = ROOT / "docs" / "examples"
FILE_BLOCK = re.compile(r"```\w*\n# file: (\S+)\n(.*?)```", re.S)


def test_tutorial_shows_every_example_file_in_full():
    blocks = dict(FILE_BLOCK.findall(TUTORIAL.read_text()))
    on_disk = {
        str(p.relative_to(EXAMPLES))
        for p in EXAMPLES.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix in (".py", ".toml", ".md")
    }
    assert set(blocks) == on_disk
    for name, content in blocks.items():
        assert (EXAMPLES / name).read_text() == content, f"{name} differs from the tutorial"


def test_protocol_option_tables_are_generated_from_the_configs():
    spec = importlib.util.spec_from_file_location("cli_options", ROOT / "docs/tools/cli_options.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    text = (ROOT / "docs" / "cli.md").read_text()
    first_party = [c for c, _ in _documented_parsers() if c.startswith("bench ")]
    assert text.count("<!-- options: ") == len(first_party), "one options table per protocol"
    assert tool.rendered(text) == text, "run python docs/tools/cli_options.py"


def _subcommands():
    parser = build_parser(protocols=True)
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def _documented_parsers():
    """(heading, parser) for every command, and for each protocol of `bench` its own section."""
    for name, parser in sorted(_subcommands().items()):
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:  # bench: its own flags, and the protocols of yw-bench (not third parties')
            yield name, parser
            for sub, subparser in nested[0].choices.items():
                module = subparser.get_default("protocol_cls").__module__
                if module.startswith("yw_bench."):
                    yield f"{name} {sub}", subparser
        else:
            yield name, parser


@pytest.mark.parametrize("command,parser", list(_documented_parsers()))
def test_cli_reference_covers_command_and_options(command, parser):
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text.split(f"## `{command}`", 1)
    assert len(section) == 2, f"docs/cli.md has no section ## `{command}`"
    section = section[1].split("\n## ", 1)[0]
    for action in parser._actions:
        for flag in action.option_strings:
            if flag not in ("-h", "--help"):
                assert f"`{flag}" in section, f"{command} {flag} is not documented"
