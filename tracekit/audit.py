"""The hash-chained audit log, written in the same transaction as the change it records.

Each entry holds: a sequence number, the time (UTC), the action, the record references
involved, and the tracer's stated reason. It never holds a person's identity: callers pass
references, never names or contact details. Each entry's hash is

    SHA-256( previous entry's hash || canonical JSON of [seq, at, action, refs, reason] )

so editing, deleting, inserting or reordering entries breaks the chain at the first
affected entry, and :func:`verify` names it. The chain head (last sequence number and hash)
is also kept in ``settings`` so removing entries from the end is detected too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tracekit.store import settings as store_settings

GENESIS_HASH = "0" * 64
HEAD_SETTING = "audit.head"


@dataclass
class AuditEntry:
    seq: int
    at: str
    action: str
    refs: list[str]
    reason: str | None
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "action": self.action,
            "refs": self.refs,
            "reason": self.reason,
            "hash": self.hash,
        }


def entry_hash(prev_hash: str, seq: int, at: str, action: str, refs: list[str], reason: str | None) -> str:
    body = json.dumps([seq, at, action, refs, reason], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(prev_hash.encode("ascii") + body.encode("utf-8")).hexdigest()


def _head(conn: Any) -> tuple[int, str]:
    row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY rowid DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)


def append(conn: Any, action: str, refs: list[str], reason: str | None = None) -> AuditEntry:
    """Add an entry. Must be called inside the transaction of the change it records."""
    if not conn.in_transaction:
        raise RuntimeError("audit entries are written inside the change's transaction")
    last_seq, prev = _head(conn)
    seq = last_seq + 1
    at = datetime.now(UTC).isoformat(timespec="microseconds")
    refs = sorted(set(refs))
    digest = entry_hash(prev, seq, at, action, refs, reason)
    conn.execute(
        "INSERT INTO audit_log(seq, at, action, refs, reason, prev_hash, hash) VALUES(?, ?, ?, ?, ?, ?, ?)",
        (seq, at, action, json.dumps(refs), reason, prev, digest),
    )
    store_settings.put(conn, HEAD_SETTING, f"{seq}:{digest}")
    return AuditEntry(seq, at, action, refs, reason, prev, digest)


def _row(row: tuple[Any, ...]) -> AuditEntry:
    return AuditEntry(int(row[0]), row[1], row[2], json.loads(row[3]), row[4], row[5], row[6])


def entries(
    conn: Any,
    *,
    since: str | None = None,
    action: str | None = None,
    ref: str | None = None,
    limit: int | None = None,
    newest: bool = False,
    offset: int = 0,
) -> list[AuditEntry]:
    """Entries in order, filtered; at most ``limit``: the first ones after skipping
    ``offset``, or with ``newest`` the last ones before the ``offset`` most recent (still
    oldest first)."""
    clause, params = _filter(since, action, ref)
    order = "DESC" if newest and limit else "ASC"
    found = [_row(r) for r in _select(conn, clause, params, order, limit, offset)]
    return found[::-1] if order == "DESC" else found


def iter_entries(
    conn: Any,
    *,
    since: str | None = None,
    action: str | None = None,
    ref: str | None = None,
    offset: int = 0,
) -> Iterator[AuditEntry]:
    """Every matching entry from ``offset`` on, oldest first, read one at a time (for
    streaming a log of millions of entries: nothing is collected)."""
    clause, params = _filter(since, action, ref)
    return (_row(r) for r in _select(conn, clause, params, "ASC", None, offset))


def _filter(since: str | None, action: str | None, ref: str | None) -> tuple[str, list[str]]:
    where, params = [], []
    if since:
        where.append("at >= ?")
        params.append(since)
    if action:
        where.append("(action = ? OR action LIKE ?)")
        params.extend([action, f"{action}.%"])
    if ref:
        where.append("refs LIKE ?")
        params.append(f'%"{ref}"%')
    return ("WHERE " + " AND ".join(where)) if where else "", params


def _select(conn: Any, clause: str, params: list[str], order: str, limit: int | None, offset: int) -> Any:
    sql = f"SELECT seq, at, action, refs, reason, prev_hash, hash FROM audit_log {clause} ORDER BY seq {order} LIMIT ? OFFSET ?"
    return conn.execute(sql, (*params, -1 if not limit else int(limit), max(0, int(offset))))


def entry_count(conn: Any) -> int:
    """How many entries the log holds: the last sequence number (numbered from 1 without
    gaps, which :func:`verify` checks), without reading the whole log."""
    row = conn.execute("SELECT seq FROM audit_log ORDER BY rowid DESC LIMIT 1").fetchone()
    return int(row[0]) if row else 0


@dataclass
class VerifyResult:
    ok: bool
    entries: int
    problem: str | None = None
    first_bad_seq: int | None = None
    head: str | None = None


def verify(conn: Any) -> VerifyResult:
    """Walk the chain from the start; report the first entry that does not fit."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    for row in conn.execute("SELECT seq, at, action, refs, reason, prev_hash, hash FROM audit_log ORDER BY rowid"):
        entry = _row(row)
        count += 1
        if entry.seq > expected_seq:
            return VerifyResult(
                False,
                count,
                f"audit entry {expected_seq} is missing where it should be (entry {entry.seq} comes next): "
                "it was deleted or moved",
                expected_seq,
            )
        if entry.seq < expected_seq:
            return VerifyResult(
                False,
                count,
                f"audit entry {entry.seq} appears again after entry {expected_seq - 1}: an entry was inserted or moved",
                entry.seq,
            )
        if entry.prev_hash != prev_hash:
            return VerifyResult(
                False,
                count,
                f"audit entry {entry.seq} does not follow entry {entry.seq - 1}: the chain was broken (an entry was inserted, deleted or reordered)",
                entry.seq,
            )
        if entry_hash(prev_hash, entry.seq, entry.at, entry.action, entry.refs, entry.reason) != entry.hash:
            return VerifyResult(
                False,
                count,
                f"audit entry {entry.seq} ({entry.action}) was edited: its content no longer matches its hash",
                entry.seq,
            )
        prev_hash = entry.hash
        expected_seq += 1
    head_row = conn.execute("SELECT value FROM settings WHERE key = ?", (HEAD_SETTING,)).fetchone()
    last_seq = expected_seq - 1
    actual_head = f"{last_seq}:{prev_hash}" if count else None
    if head_row is None:
        if count:
            return VerifyResult(False, count, "the audit log's recorded head is missing (it was removed)", last_seq)
        return VerifyResult(True, count, None, None, actual_head)
    if head_row[0] != actual_head:
        recorded_seq_text, _, _ = head_row[0].partition(":")
        recorded_seq = int(recorded_seq_text) if recorded_seq_text.isdigit() else -1
        if last_seq > recorded_seq >= 0:
            return VerifyResult(
                False,
                count,
                f"audit entry {recorded_seq + 1} was added after the recorded head (entry {recorded_seq})",
                recorded_seq + 1,
            )
        if last_seq == recorded_seq:
            return VerifyResult(
                False,
                count,
                f"audit entry {last_seq} was altered: its hash does not match the recorded head",
                last_seq,
            )
        return VerifyResult(
            False,
            count,
            f"the audit log ends at entry {last_seq} but its recorded head is entry {recorded_seq_text}: "
            "entries were removed from the end",
            last_seq + 1,
        )
    return VerifyResult(True, count, None, None, actual_head)


def check_for_store(store: Any) -> list[str]:
    """``store check`` hook."""
    if not store.table_exists("audit_log"):
        return []
    result = verify(store.conn)
    return [] if result.ok else [result.problem or "audit chain broken"]
