"""The store's ``settings`` table (one text value per key), read and written on a
connection inside the caller's transaction."""

from __future__ import annotations

from typing import Any


def get(conn: Any, key: str) -> str | None:
    found = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return found[0] if found else None


def put(conn: Any, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO settings(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


def delete(conn: Any, key: str) -> None:
    conn.execute("DELETE FROM settings WHERE key = ?", (key,))
