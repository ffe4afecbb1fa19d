"""Which parameters the gradient is taken over: the chosen set θ_S; every other parameter is a
constant of the gradient map.

- `"all"`: every named parameter, as the official code (it flattens `named_parameters()`).
- `"auto"` (our default): all of them when the model has at most `AUTO_LIMIT` (5,000,000)
  parameter values; above that, the head plus the last child of `model.features` that holds
  parameters (for the reference ResNet-18: `features.6`, its last stage, and `head`). A model
  without `.features`/`.head` falls back to its last top-level child that holds parameters. This
  is an inference (spec §1 (f)): a full-parameter basis of a large model does not fit in memory
  (ResNet-50: 25.6M x 1000 values).
- a tuple of name prefixes: the parameters whose name is a prefix or starts with `prefix.`.
"""

from __future__ import annotations

from torch import nn

AUTO_LIMIT = 5_000_000
"""Models with at most this many parameter values get every parameter under `params="auto"`."""


def select_parameters(model: nn.Module, spec: str | tuple[str, ...]) -> list[str]:
    """Names of the parameters in the chosen set, in `named_parameters()` order; ValueError
    naming the prefixes and the model's top-level parameter names when none matches."""
    named = dict(model.named_parameters())
    if spec == "all" or (spec == "auto" and sum(p.numel() for p in named.values()) <= AUTO_LIMIT):
        prefixes: tuple[str, ...] = ()
        names = list(named)
    else:
        prefixes = auto_prefixes(model) if spec == "auto" else tuple(spec)
        names = [n for n in named if any(n == p or n.startswith(p + ".") for p in prefixes)]
    if not names:
        top = list(dict.fromkeys(n.split(".", 1)[0] for n in named))
        where = f"params={prefixes!r}" if prefixes else f"params={spec!r}"
        raise ValueError(
            f"lowdim-grad: no parameter of {type(model).__name__} is in the chosen set "
            f"({where}); the model's top-level parameter names are "
            f"{', '.join(top) if top else '(none: it has no parameters)'}"
        )
    return names


def auto_prefixes(model: nn.Module) -> tuple[str, ...]:
    """The `"auto"` choice for a large model: the head plus the last parameterised child of
    `model.features`, else the last parameterised top-level child."""
    features, head = getattr(model, "features", None), getattr(model, "head", None)
    if isinstance(features, nn.Module) and _has_params(features):
        last = _last_parameterised_child(features)
        chosen = ("features" if last is None else f"features.{last}",)
        if isinstance(head, nn.Module) and _has_params(head):
            chosen += ("head",)
        return chosen
    last = _last_parameterised_child(model)
    return () if last is None else (last,)


def _has_params(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None


def _last_parameterised_child(module: nn.Module) -> str | None:
    found = None
    for name, child in module.named_children():
        if _has_params(child):
            found = name
    return found
