"""A real PostgreSQL server for the central tests: one per session, a fresh database per test.

The server (tests/central/pgserver.py) runs in a temporary directory on a Unix socket
only, with fsync off (a test server: it is thrown away). The schema is migrated once
into a template database; each test gets ``CREATE DATABASE ... TEMPLATE`` of it, which
copies a few megabytes (FILE_COPY: faster than WAL_LOG for a database this small). Where no server can be started (no binaries, root without a
``postgres`` user) the central tests skip, saying why; they are never mocked.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.central.pgserver import ServerUnavailable, TemporaryPostgres

TEMPLATE = "tracekit_central_template"
_names = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[TemporaryPostgres]:
    import psycopg

    from tracekit.central.database import connect, migrate

    server = TemporaryPostgres({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
    try:
        server.start()
    except ServerUnavailable as reason:
        server.stop()
        pytest.skip(f"the central tests need a PostgreSQL server and none could be started: {reason}")
    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        conn = connect(server.url(TEMPLATE))
        try:
            migrate(conn, server.url(TEMPLATE))
        finally:
            conn.close()
        yield server
    finally:
        server.stop()


@pytest.fixture
def database(postgres: TemporaryPostgres) -> str:
    """The connection string of a fresh, migrated database."""
    import psycopg

    name = f"central_{next(_names)}"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
    return postgres.url(name)


@pytest.fixture
def empty_database(postgres: TemporaryPostgres) -> str:
    """A database with no tracekit schema at all."""
    import psycopg

    name = f"empty_{next(_names)}"
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres.url(name)
