"""Rewrite the generated option tables of docs/cli.md from the installed protocols' Configs.

    python docs/tools/cli_options.py          # rewrite in place
    python docs/tools/cli_options.py --check  # exit 1 if docs/cli.md is out of date

Each table sits between `<!-- options: NAME -->` and `<!-- /options -->`.
"""

import re
import sys
from pathlib import Path

from yw_core.bench.flags import options_table
from yw_core.registry import Registry

CLI_MD = Path(__file__).resolve().parents[1] / "cli.md"
BLOCK = re.compile(r"(<!-- options: (\S+) -->\n).*?(<!-- /options -->)", re.S)


def rendered(text: str) -> str:
    registry = Registry.discover()

    def table(match):
        cls = registry.load(match[2], "bench")
        return f"{match[1]}{options_table(cls.Config)}\n{match[3]}"

    return BLOCK.sub(table, text)


if __name__ == "__main__":
    text = CLI_MD.read_text()
    new = rendered(text)
    if "--check" in sys.argv:
        sys.exit(0 if new == text else 1)
    CLI_MD.write_text(new)
