"""The central team's tracer registry: whose bundles it takes.

A tracer is a name and the fingerprint of the key that signs their bundles (the tracer
reads it out with ``tracekit keys show``, or it is in ``bundle verify``'s output). A
bundle is ingested only when its signer is an active tracer of the registry. Removing a
tracer keeps what they sent (the bundles name them) and refuses what they send next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracekit.errors import Conflict, NotFound, ValidationError

#: As ``recipients add`` accepts recipient names.
_NAME = re.compile(r"[\w .@-]{1,100}")


@dataclass(frozen=True)
class Tracer:
    id: int
    name: str
    fingerprint: str
    added_at: datetime
    removed_at: datetime | None
    bundles: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fingerprint": self.fingerprint,
            "added_at": self.added_at.isoformat(),
            "removed_at": self.removed_at.isoformat() if self.removed_at else None,
            "bundles": self.bundles,
        }


def _check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise ValidationError("name", "is not a tracer name", expected="1-100 letters, digits, spaces and . @ - _")
    return name


def add(conn: Any, name: str, signer: str) -> Tracer:
    """Register a tracer; ``signer`` is their public key, its fingerprint or a file holding either."""
    from tracekit.bundle.reader import parse_signer

    name = _check_name(name)
    fingerprint = parse_signer(signer)
    if fingerprint is None:
        raise ValidationError("signer", "is empty", expected="the tracer's public key or its fingerprint")
    with conn.transaction():
        conn.execute("LOCK TABLE tracers IN SHARE ROW EXCLUSIVE MODE")
        for column, value in (("name", name), ("fingerprint", fingerprint)):
            taken = conn.execute(
                f"SELECT name FROM tracers WHERE {column} = %s AND removed_at IS NULL", (value,)
            ).fetchone()
            if taken:
                raise Conflict(f"the tracer {taken[0]!r} is registered with that {column} already")
        row = conn.execute(
            "INSERT INTO tracers (name, fingerprint) VALUES (%s, %s) RETURNING id, name, fingerprint, added_at, removed_at",
            (name, fingerprint),
        ).fetchone()
    return Tracer(*row)


def remove(conn: Any, name: str) -> Tracer:
    """Stop taking a tracer's bundles; what they sent stays."""
    row = conn.execute(
        "UPDATE tracers SET removed_at = now() WHERE name = %s AND removed_at IS NULL "
        "RETURNING id, name, fingerprint, added_at, removed_at",
        (_check_name(name),),
    ).fetchone()
    if row is None:
        raise NotFound(f"no registered tracer is named {name.strip()!r}", hint="tracekit central tracers list")
    return Tracer(*row)


def list_tracers(conn: Any, *, include_removed: bool = False) -> list[Tracer]:
    where = "" if include_removed else "WHERE t.removed_at IS NULL"
    rows = conn.execute(
        "SELECT t.id, t.name, t.fingerprint, t.added_at, t.removed_at, "
        "(SELECT count(*) FROM bundles b WHERE b.tracer_id = t.id) "
        f"FROM tracers t {where} ORDER BY t.name, t.added_at"
    ).fetchall()
    return [Tracer(*row) for row in rows]


def active_tracer(conn: Any, fingerprint: str) -> Tracer | None:
    row = conn.execute(
        "SELECT id, name, fingerprint, added_at, removed_at FROM tracers WHERE fingerprint = %s AND removed_at IS NULL",
        (fingerprint,),
    ).fetchone()
    return Tracer(*row) if row else None
