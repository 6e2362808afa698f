"""Fixtures shared by the CLI tests."""

from __future__ import annotations

import pytest

from tests.conftest import PASSPHRASE


@pytest.fixture
def other_writer(cli_with_store, store_path):
    """Another connection holding the store's write lock (BEGIN IMMEDIATE), as an import
    does; roll it back (``other_writer.conn.execute("ROLLBACK")``) to free the store."""
    from tracekit.store import open_store

    holder = open_store(store_path, bytearray(PASSPHRASE.encode()))
    holder.conn.execute("BEGIN IMMEDIATE")
    yield holder
    if holder.conn.in_transaction:
        holder.conn.execute("ROLLBACK")
    holder.close()
