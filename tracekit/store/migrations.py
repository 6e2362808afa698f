"""Schema migrations: an ordered list of small steps, recorded in the store.

Each migration is a numbered function that runs SQL on a connection already inside the
transaction that applies every pending migration at once, so a store is either fully
upgraded or not at all. Applied versions are recorded in ``schema_migrations``. A store
whose recorded version is higher than this tracekit knows is refused (made by a newer
tracekit), never written to.

Rules for adding a migration: append only; never edit or reorder a released one; keep
each one small and named for what it adds; add a test that upgrades a store from the
version before it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Connection = Any  # sqlcipher3.Connection; imported lazily to keep start-up cheap


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[Connection], None]


MIGRATIONS: list[Migration] = []


def migration(name: str) -> Callable[[Callable[[Connection], None]], Callable[[Connection], None]]:
    """Register the decorated function as the next migration."""

    def register(fn: Callable[[Connection], None]) -> Callable[[Connection], None]:
        MIGRATIONS.append(Migration(len(MIGRATIONS) + 1, name, fn))
        return fn

    return register


def run_statements(conn: Connection, sql: str) -> None:
    """Execute ``;``-separated DDL one statement at a time.

    ``executescript`` would COMMIT the surrounding transaction first, which would break
    the all-or-nothing upgrade, so it is never used here. Statements must not contain
    ``;`` inside literals or trigger bodies: run those with ``conn.execute``.
    """
    for statement in sql.split(";"):
        if statement.strip():
            conn.execute(statement)


BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""


@migration("settings")
def _settings(conn: Connection) -> None:
    run_statements(
        conn,
        """
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID
        """,
    )


def latest_version() -> int:
    return len(MIGRATIONS)
