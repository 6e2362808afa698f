"""tracekit: an encrypted local case book for contact tracers.

The library API is importable without the CLI::

    from tracekit import open_store

    with open_store(path, passphrase=bytearray(b"...")) as store:
        print(store.info())

Names are loaded on first use so that ``tracekit --version`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "open_store": "tracekit.store",
    "create_store": "tracekit.store",
    "Store": "tracekit.store",
    "TracekitError": "tracekit.errors",
    "ExitCode": "tracekit.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'tracekit' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
