"""Where the store is, and other settings that come from the environment."""

from __future__ import annotations

import os
from pathlib import Path

STORE_ENV = "TRACEKIT_STORE"
STORE_FILENAME = "tracekit.store"


def default_store_path() -> Path:
    """The store in the platform's user data directory (e.g. ~/.local/share/tracekit)."""
    from platformdirs import user_data_path

    return user_data_path("tracekit", appauthor=False) / STORE_FILENAME


def resolve_store_path(
    option: Path | str | None = None, environ: os._Environ[str] | dict[str, str] | None = None
) -> Path:
    """``--store PATH``, else ``TRACEKIT_STORE``, else the platform default."""
    env = os.environ if environ is None else environ
    if option:
        return Path(option).expanduser()
    if env.get(STORE_ENV):
        return Path(env[STORE_ENV]).expanduser()
    return default_store_path()
