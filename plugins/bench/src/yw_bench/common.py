"""Small pieces the seeded, multi-setting protocols (unlearn, continual, rec) share."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any


def distinct(name: str, values: tuple, minimum: int | None = None) -> tuple:
    """`values` without repeats, in order; a ValueError when empty or below `minimum`."""
    if not values:
        raise ValueError(f"{name} needs at least one value")
    if minimum is not None and any(v < minimum for v in values):
        raise ValueError(f"{name} must be >= {minimum}, got {list(values)}")
    return tuple(dict.fromkeys(values))


def installed_methods(
    protocol,
    interface: str,
    config,
    *,
    missing: str,
    first: str | None = None,
    where=None,
    why: str = "",
) -> dict[str, type]:
    """The run's methods of `interface` (every installed one passing `where` when
    `config.methods` is None), sorted by name with `first` leading, their `config.overrides`
    checked; a ValueError `missing` when none is installed, `why` when a named one fails `where`."""
    from yw_core.bench import check_overrides, select

    found = select(protocol, interface, config.methods, where=where, why=why)
    if config.methods is None and not found:
        raise ValueError(missing)
    methods = dict(sorted(found.items(), key=lambda kv: (kv[0] != first, kv[0])))
    check_overrides(config.overrides, methods)
    return methods


def method_rows(methods: dict[str, type], config) -> dict[str, tuple]:
    """{row: (method name, class, overrides, label)}: each method with the user's
    `config.overrides`, then (when `config.variants`) each comparison row it declares, with the
    variant's overrides on top of the user's."""
    from yw_core.bench import variants

    rows = {}
    for name, cls in methods.items():
        user = dict(config.overrides.get(name, {}))
        rows[name] = (name, cls, user, cls.summary)
        if config.variants:
            for row, variant in variants(cls).items():
                rows[row] = (name, cls, {**user, **variant.overrides}, variant.label)
    return rows


def load_splits(dataset: str, seed: int):
    """(train, test, number of classes) of a dataset; a ValueError naming missing files."""
    from yw_core.data import dataset_info, load_dataset

    try:
        train = load_dataset(dataset, "train", seed=seed)
        test = load_dataset(dataset, "test", seed=seed)
    except FileNotFoundError as exc:
        raise ValueError(f"data set {dataset}: {exc}") from None
    return train, test, dataset_info(dataset)["num_classes"]


def mean_std(row: dict[str, Any], key: str, digits: int = 1) -> str:
    """'mean ± std' of a summarised metric (`key` and `key_std`), '-' when absent."""
    if key not in row:
        return "-"
    return f"{row[key]:.{digits}f} ± {row[key + '_std']:.{digits}f}"


def summarise(runs: list[dict[str, Any]], keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Mean and std over seeds of each of `keys` (None: every float of the first run), skipping
    runs where a key is None or absent."""
    keys = [k for k in runs[0] if isinstance(runs[0][k], float)] if keys is None else keys
    out: dict[str, Any] = {}
    for key in keys:
        values = [r[key] for r in runs if r.get(key) is not None]
        if values:
            out[key] = statistics.fmean(values)
            out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return out
