"""yw-core: interfaces, registry, hooks and runtime for yw method plugins.

Kept import-light on purpose: `yw-core list` imports this package and must not pull in torch or
pydantic. Heavy names are resolved lazily through `__getattr__`.
"""

__version__ = "1.0.0"
API_VERSION = "1.0"

_LAZY = {
    "Runtime": "yw_core.runtime",
    "Method": "yw_core.interfaces",
    "Paper": "yw_core.interfaces",
    "Capabilities": "yw_core.interfaces",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'yw_core' has no attribute {name!r}")
