"""The first-party catalogue (registry.toml): every planned or implemented yw-plugin-* distribution.

It decides SOURCE (first-party or third-party) in `yw-core list` and what `--available` offers.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CATALOGUE_PATH = Path(__file__).with_name("registry.toml")


def canonical(name: str) -> str:
    """PEP 503 normalised name: 'YW_Plugin.Aaa' and 'yw-plugin-aaa' compare equal."""
    return "-".join(name.replace("_", "-").replace(".", "-").lower().split("-"))


def is_installed(distribution: str) -> bool:
    """Whether `distribution` is installed in this environment, whatever the registry shows."""
    from importlib import metadata

    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def load_catalogue(path: Path | None = None) -> dict[str, dict]:
    """Entries of registry.toml (`CATALOGUE_PATH` unless `path`) keyed by canonical
    distribution name."""
    return _read(Path(path) if path is not None else CATALOGUE_PATH)


@lru_cache(maxsize=4)
def _read(path: Path) -> dict[str, dict]:
    with open(path, "rb") as f:
        data = tomllib.load(f)
    return {canonical(entry["distribution"]): entry for entry in data["plugins"].values()}


def is_first_party(distribution: str) -> bool:
    return canonical(distribution) in load_catalogue()
