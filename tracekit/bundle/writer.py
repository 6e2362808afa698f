"""Writing a handover bundle: records -> redact -> leak guard -> tar -> age -> atomic file.

The bundle (format in docs/bundle-format.md) is an uncompressed POSIX tar, streamed
through age encryption into a temporary file beside the destination, then fsynced and
renamed into place. Nothing is ever written in plaintext: the tar goes through an OS
pipe straight into pyrage's streaming encryption (a thread), and records are read,
redacted and checked in chunks, so memory stays flat whatever the store's size.

Members, in order: ``records/<type>s-NNNNN.jsonl`` and ``.csv`` chunks, ``statistics.json``
and ``statistics.csv`` (statistics policy), ``referrals/R-XXXXXX.age`` and
``recalls/<32 hex>.json`` (vetted-team only), ``redaction-report.json``, then
``manifest.json`` and ``manifest.sig``. The manifest comes last so a streaming reader can
check every file against it.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import secrets
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from tracekit import __version__, audit, files
from tracekit.bundle import recalls, source
from tracekit.bundle.manifest import BUNDLE_FORMAT, BUNDLE_VERSION
from tracekit.domain.rules import SETTINGS
from tracekit.errors import NotFound, TracekitError, ValidationError, WriteFailed
from tracekit.records.casebook import MAX_PAGE
from tracekit.records.models import CaseStatus, Page, TraceStatus
from tracekit.redaction import apply as redaction
from tracekit.redaction import statistics
from tracekit.redaction.guard import LeakGuard
from tracekit.redaction.policy import (
    RECORD_FIELDS,
    Policy,
    check_policy_for_recipient,
    default_policy_for,
    get_policy,
)

CHUNK_RECORDS = 20_000
#: The first character of every CSV member: a byte order mark, so spreadsheets read UTF-8.
CSV_BOM = "\ufeff"

Redactor = Callable[..., dict[str, Any] | None]


@dataclass
class ExportResult:
    """What an export wrote; ``path`` and ``bundle_id`` are None when it wrote nothing
    (nothing new to hand over, see :func:`export_handover`)."""

    path: Path | None
    bundle_id: str | None
    recipient: str
    policy: str
    record_counts: dict[str, int]
    changes_since: str | None
    changes_until: str
    size_bytes: int
    seconds: float
    files: list[str] = field(default_factory=list)
    #: The policy asks for pseudonyms but the store has no team key: every record's is empty.
    without_pseudonyms: bool = False

    @property
    def written(self) -> bool:
        return self.path is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "written": self.written,
            "path": str(self.path) if self.path else None,
            "bundle_id": self.bundle_id,
            "recipient": self.recipient,
            "policy": self.policy,
            "record_counts": self.record_counts,
            "changes_since": self.changes_since,
            "changes_until": self.changes_until,
            "size_bytes": self.size_bytes,
            "seconds": round(self.seconds, 3),
            "files": self.files,
            "without_pseudonyms": self.without_pseudonyms,
        }


def _utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _TarStream:
    """Adds members to a streaming tar and remembers each one's SHA-256 and size."""

    def __init__(self, sink: BinaryIO, mtime: float) -> None:
        self._tar = tarfile.open(fileobj=sink, mode="w|", format=tarfile.USTAR_FORMAT)
        self._mtime = mtime
        self.entries: list[dict[str, Any]] = []

    def add(self, name: str, data: bytes, *, listed: bool = True) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = int(self._mtime)
        info.mode = 0o600
        self._tar.addfile(info, io.BytesIO(data))
        if listed:
            self.entries.append({"path": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})

    def close(self) -> None:
        self._tar.close()

    def abandon(self) -> None:
        """Give up without writing the end of the archive (the output is being deleted)."""
        stream = self._tar.fileobj
        self._tar.closed = True  # type: ignore[attr-defined]
        if stream is not None and hasattr(stream, "closed"):
            stream.closed = True  # tarfile's _Stream would otherwise flush into a closed pipe


class _Encryptor:
    """age-encrypt everything written to ``sink`` into ``out``, in a background thread."""

    def __init__(self, out: BinaryIO, recipients: list[Any]) -> None:
        from pyrage import encrypt_io

        read_fd, write_fd = os.pipe()
        self.sink = os.fdopen(write_fd, "wb", buffering=1 << 20)
        self._source = os.fdopen(read_fd, "rb")
        self._error: BaseException | None = None

        def run() -> None:
            try:
                encrypt_io(self._source, out, recipients)
            except BaseException as exc:  # reported by finish()
                self._error = exc
                # Keep reading until the writer closes its end: writing into a pipe nobody
                # reads would kill the CLI by SIGPIPE (or raise BrokenPipeError, which the
                # CLI takes for "the reader went away") before finish() can report this.
                try:
                    while self._source.read(1 << 20):
                        pass
                except Exception:
                    pass
            finally:
                self._source.close()

        self._thread = threading.Thread(target=run, name="tracekit-age", daemon=True)
        self._thread.start()

    def finish(self) -> None:
        if not self.sink.closed:
            self.sink.close()
        self._thread.join()
        if self._error is not None:
            raise WriteFailed(f"encrypting the bundle failed: {self._error}") from None


def _recipient(conn: Any, name: str) -> tuple[str, str, str]:
    row = conn.execute("SELECT name, role, public_key FROM recipients WHERE name = ?", (name,)).fetchone()
    if row is None:
        known = [r[0] for r in conn.execute("SELECT name FROM recipients ORDER BY name").fetchall()]
        raise NotFound(
            f"no recipient named {name!r}",
            hint=("known recipients: " + ", ".join(known))
            if known
            else "add one: tracekit recipients add NAME age1...",
        )
    return row[0], row[1], row[2]


def _marked_people(store: Any) -> list[Any]:
    from tracekit.records.casebook import marked_people

    return marked_people(store.conn)


def _columns(policy: Policy, record_type: str) -> list[str]:
    columns = list(policy.fields[record_type]) + ["withheld", "referral"]
    if policy.role_category or policy.scope == "sensitive":
        columns.append("role")
    if policy.scope == "sensitive":
        columns.append("sensitive")
    return columns


@dataclass
class _Report:
    withheld: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: the records this bundle carries in clear (standard policies), kept in the store so
    #: that marking someone later can say which bundles had them
    in_clear: recalls.ClearRecords = field(default_factory=recalls.ClearRecords)

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def withhold(self, reason: str, record_type: str, ref: str) -> None:
        self.withheld.setdefault(reason, {}).setdefault(record_type, []).append(ref)


def _record_members(
    conn: Any,
    policy: Policy,
    record_type: str,
    since: str | None,
    guard: LeakGuard,
    redact: Redactor,
    pseudonymise: Any,
    tar: _TarStream,
    report: _Report,
    scrub: Callable[[str | None], str | None],
    stub_ids: redaction.StubIds,
) -> None:
    """The record chunks of one type. Ordinary records go in id order; stubs come after
    them all, shuffled, so a stub's place in the file cannot say which record it stands
    for (in id order it would sit exactly where an earlier bundle had the clear record)."""
    rows: Iterator[dict[str, Any]] = (source.cases if record_type == "case" else source.contacts)(conn, since)
    layout = redaction.CsvLayout(_columns(policy, record_type))
    # Each chunk is built as UTF-8 bytes as it goes (JSON Lines in a bytearray, CSV through
    # an encoding text layer), so a chunk is held once as text, not as 20,000 objects.
    # Every CSV chunk starts with a byte order mark (Excel then reads it as UTF-8) and the header.
    chunk_json = bytearray()
    csv_bytes_io = io.BytesIO()
    csv_text = io.TextIOWrapper(csv_bytes_io, encoding="utf-8", newline="", write_through=False)
    writer = csv.writer(csv_text, lineterminator="\r\n")
    csv_text.write(CSV_BOM)
    writer.writerow(layout.header)
    refs: list[str] = []
    number = 0
    encode = functools.partial(orjson.dumps, default=str, option=orjson.OPT_APPEND_NEWLINE)
    row = layout.row

    def flush() -> None:
        nonlocal number
        if not refs:
            return
        number += 1
        json_bytes = bytes(chunk_json)
        csv_text.flush()
        csv_bytes = csv_bytes_io.getvalue()
        _guard_chunk(guard, json_bytes, refs)  # the guard reads the very bytes that go into the tar
        _guard_chunk(guard, csv_bytes, refs)
        if not guard.blocked:  # once blocked, the rest is only scanned, to list every hit
            tar.add(f"records/{record_type}s-{number:05d}.jsonl", json_bytes)
            tar.add(f"records/{record_type}s-{number:05d}.csv", csv_bytes)
        del json_bytes, csv_bytes
        del chunk_json[:]
        refs.clear()
        csv_bytes_io.seek(0)
        csv_bytes_io.truncate()
        csv_text.write(CSV_BOM)
        writer.writerow(layout.header)

    # Free text is scrubbed of marked people's details only where the policy lets notes
    # out: otherwise redaction drops them anyway, and scrubbing every note costs more
    # than all the rest of the export (a regular expression over the marked people).
    scrub_notes = "notes" in policy.fields.get(record_type, ())

    def add(out: dict[str, Any], ref: str) -> None:
        chunk_json.extend(encode(out))
        writer.writerow(row(out))
        refs.append(ref)  # for the guard's message: the tracer's own reference, never written
        if len(refs) >= CHUNK_RECORDS:
            flush()

    stubs: list[tuple[dict[str, Any], str]] = []  # few: marked people and their contacts
    remember_clear = policy.scope == "standard"
    run_first = run_last = -2  # the current run of consecutive ids carried in clear
    for raw in rows:
        if scrub_notes and raw.get("notes"):
            raw["notes"] = scrub(raw["notes"])
        out = redact(record_type, raw, policy, pseudonymise, stub_ids=stub_ids)
        if out is None:
            continue
        report.count(f"{record_type}s")
        reason = out.get("withheld")
        if reason:
            report.withhold(str(reason), record_type, str(out["ref"]))
            stubs.append((out, str(raw["ref"])))
            continue
        if remember_clear:
            record_id = raw["id"]
            if record_id != run_last + 1:
                if run_last >= 0:
                    report.in_clear.add_run(record_type, run_first, run_last)
                run_first = record_id
            run_last = record_id
        add(out, str(raw["ref"]))
    if run_last >= 0:
        report.in_clear.add_run(record_type, run_first, run_last)
    secrets.SystemRandom().shuffle(stubs)
    for out, ref in stubs:
        add(out, ref)
    flush()


def _guard_chunk(guard: LeakGuard, data: bytes, refs: list[str]) -> None:
    """Scan a whole chunk at once; on a hit, note every hit by the record line it is on."""
    if guard.empty or not guard.flagged(data):
        return
    text = data.decode("utf-8")
    lines = text.splitlines()
    offset = len(lines) - len(refs)  # CSV chunks start with a header line
    found = False
    for index, line in enumerate(lines):
        found = guard.scan(line, refs[index - offset] if index >= offset else "the header") or found
    if not found:
        guard.scan(text, refs[0] if refs else "a record")  # a value split across lines


# A case or contact that a central handover would withhold: the person is in a sensitive
# role, was referred or came in a received referral, or (for a contact) the case's person is. Statistics leave them out
# of every table (docs/threat-model.md, "Statistics").
_SENSITIVE_PEOPLE = (
    "(SELECT person_id FROM person_roles UNION SELECT id FROM people WHERE referral_id IS NOT NULL "
    "UNION SELECT record_id FROM received_records WHERE kind = 'person')"
)
_SENSITIVE_CASE = f"c.person_id IN {_SENSITIVE_PEOPLE}"
_SENSITIVE_CONTACT = f"(e.person_id IN {_SENSITIVE_PEOPLE} OR c.person_id IN {_SENSITIVE_PEOPLE})"
_CONTACTS = "FROM exposures e JOIN cases c ON c.id = e.case_id"
# (the counting query over ordinary records, where the fixed list of values comes from)
_STATISTICS_QUERIES: dict[str, tuple[str, tuple[str, ...] | str]] = {
    "cases_by_test_date": (
        f"SELECT c.test_date, count(*) FROM cases c WHERE NOT {_SENSITIVE_CASE} GROUP BY 1",
        "SELECT DISTINCT test_date FROM cases",
    ),
    "cases_by_status": (
        f"SELECT c.status, count(*) FROM cases c WHERE NOT {_SENSITIVE_CASE} GROUP BY 1",
        (*CaseStatus, statistics.OTHER),
    ),
    "contacts_by_exposure_date": (
        f"SELECT e.last_exposure, count(*) {_CONTACTS} WHERE NOT {_SENSITIVE_CONTACT} GROUP BY 1",
        "SELECT DISTINCT last_exposure FROM exposures",
    ),
    "contacts_by_setting": (
        f"SELECT e.setting, count(*) {_CONTACTS} WHERE NOT {_SENSITIVE_CONTACT} GROUP BY 1",
        (*SETTINGS, statistics.OTHER),
    ),
    "contacts_by_area": (
        "SELECT COALESCE(substr(p.postcode, 1, instr(p.postcode, ' ') - 1), ''), count(*) "
        f"{_CONTACTS} JOIN people p ON p.id = e.person_id "
        f"WHERE NOT {_SENSITIVE_CONTACT} GROUP BY 1",
        statistics.AREA_VALUES,
    ),
    "contacts_by_trace_status": (
        f"SELECT e.trace_status, count(*) {_CONTACTS} WHERE NOT {_SENSITIVE_CONTACT} GROUP BY 1",
        (*TraceStatus, statistics.OTHER),
    ),
}


def _statistics(conn: Any, policy: Policy) -> dict[str, Any]:
    """Every table over the whole store and over ordinary records only, in bands of five,
    with a fixed list of rows: a record of a sensitive person is in no table at all.

    Dates list every date any record has (a withheld stub carries its dates anyway), so
    marking someone never removes a date row; areas are the fixed postcode areas.
    """
    tables = {}
    for name in policy.statistics:
        counting, values = _STATISTICS_QUERIES[name]
        counts = source.count_rows(conn, counting)
        if name == "contacts_by_area":
            by_area: dict[str, int] = {}
            for outward_code, count in counts.items():
                area = statistics.postcode_area(outward_code)
                by_area[area] = by_area.get(area, 0) + count
            counts = by_area
        if isinstance(values, str):
            values = tuple(sorted(str(row[0]) for row in conn.execute(values)))
        tables[name] = statistics.release_table(counts, values)
    return tables


def _statistics_csv(tables: dict[str, Any]) -> str:
    buffer = io.StringIO()
    buffer.write(CSV_BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["table", "value", "count"])
    for name, table in tables.items():
        for row in table["rows"]:
            writer.writerow([name, redaction.csv_cell(row["value"]), row["count"]])
        writer.writerow([name, "total", table["total"]["count"]])
    return buffer.getvalue()


def bundle_file_name(recipient: str, created: datetime, bundle_id: str) -> str:
    slug = "".join(ch if ch.isalnum() else "-" for ch in recipient.lower()).strip("-") or "recipient"
    return f"tracekit-handover-{slug}-{created:%Y%m%dT%H%M%SZ}-{bundle_id[:8]}.tar.age"


def resolve_since(
    conn: Any, recipient: str, policy: str, *, since: str | date | None, since_last: bool, all_records: bool
) -> str | None:
    """Where this export starts: everything, a date, or the end of the last handover of
    this policy to this recipient (the default; everything if there was none)."""
    chosen = sum(bool(x) for x in (since, since_last, all_records))
    if chosen > 1:
        raise ValidationError(
            "since", "more than one of --since, --since-last and --all was given", expected="one of them"
        )
    if all_records:
        return None
    if since:
        from tracekit.domain.identifiers import parse_date

        return (since if isinstance(since, date) else parse_date(str(since), "since")).isoformat()
    row = conn.execute(
        "SELECT changes_until FROM handovers WHERE recipient = ? AND policy = ? ORDER BY id DESC LIMIT 1",
        (recipient, policy),
    ).fetchone()
    return row[0] if row else None


class _NothingNew(Exception):
    """Raised inside the export to abandon a records bundle that would carry nothing."""


def _carries_nothing(policy: Policy, counts: dict[str, int]) -> bool:
    """A records bundle with no case, contact, referral or recall request: nothing new for
    the recipient. (A statistics bundle always counts the whole store, so it is never empty.)"""
    return policy.kind == "records" and not any(counts.get(k) for k in ("cases", "contacts", "referrals", "recalls"))


def export_handover(
    store: Any,
    recipient_name: str,
    *,
    policy_name: str | None = None,
    since: str | date | None = None,
    since_last: bool = False,
    all_records: bool = False,
    allow_empty: bool = False,
    out_dir: Path | str = ".",
    redact: Redactor = redaction.redact,
) -> ExportResult:
    """Write one bundle for one recipient. ``redact`` is replaceable only to test the guard.

    When a records bundle would carry nothing (no case or contact changed in the window, no
    referral or recall request), nothing is written, not even ``out_dir``, and nothing is
    recorded (the next ``--since-last`` starts where this one did): the result has
    ``written`` False. ``allow_empty`` writes the empty bundle anyway."""
    from pyrage import x25519

    from tracekit.crypto import signing
    from tracekit.records import Casebook
    from tracekit.redaction.pseudonym import make_pseudonymiser, require_key, stored_key

    started = time.perf_counter()
    conn = store.conn
    name, role, public_key = _recipient(conn, recipient_name)
    policy = get_policy(policy_name) if policy_name else default_policy_for(role)
    check_policy_for_recipient(policy, name, role)
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise WriteFailed(f"{out_dir} is not a directory")
    created_out_dir = not out_dir.exists()
    files.ensure_private_dir(out_dir)
    files.remove_leftovers(out_dir)
    if policy.kind == "statistics" and (since or since_last):
        # Tables over a span of changes could be set against whole-store tables to single
        # out the records in between; statistics are only ever released whole.
        raise ValidationError(
            "since", "a statistics policy always counts every record", expected="no --since or --since-last"
        )
    changes_since = (
        None
        if policy.kind == "statistics"
        else resolve_since(conn, name, policy.name, since=since, since_last=since_last, all_records=all_records)
    )
    wants_pseudonyms = policy.scope == "standard" and any("pseudonym" in f for f in policy.fields.values())
    pseudonym_key = (
        (require_key(conn) if policy.pseudonym_needs_key else stored_key(conn)) if wants_pseudonyms else None
    )
    pseudonymise = make_pseudonymiser(pseudonym_key) if pseudonym_key else None
    without_pseudonyms = wants_pseudonyms and pseudonym_key is None

    created = datetime.now(UTC)
    bundle_id = uuid.uuid4().hex
    dest = out_dir / bundle_file_name(name, created, bundle_id)
    temp = files.temp_path_beside(dest, "export")
    report = _Report()
    stub_ids = redaction.StubIds()
    casebook = Casebook(store)
    conn.execute("BEGIN")  # one consistent snapshot for the whole bundle
    try:
        changes_until = _utcnow()
        # The vetted-team bundle is meant to carry these identities (sealed to that team);
        # every other policy must carry none of them.
        guard = LeakGuard(_marked_people(store) if policy.scope == "standard" else [])
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, files.PRIVATE_FILE_MODE)
        with os.fdopen(fd, "wb") as out:
            encryptor = _Encryptor(out, [x25519.Recipient.from_str(public_key)])
            tar: _TarStream | None = None
            try:
                tar = _TarStream(encryptor.sink, created.timestamp())
                if policy.kind == "records":
                    for record_type in ("case", "contact"):
                        if record_type in policy.fields:
                            _record_members(
                                conn,
                                policy,
                                record_type,
                                changes_since,
                                guard,
                                redact,
                                pseudonymise,
                                tar,
                                report,
                                casebook._scrub,
                                stub_ids,
                            )
                else:
                    tables = _statistics(conn, policy)
                    stats_json = json.dumps(tables, indent=1, sort_keys=True).encode()
                    guard.scan(stats_json, "statistics.json")
                    tar.add("statistics.json", stats_json)
                    tar.add("statistics.csv", _statistics_csv(tables).encode())
                referral_refs: list[str] = []
                recall_ids: list[str] = []  # vetted-team bundles only, never a central one
                if policy.scope == "sensitive":
                    where, params = ("WHERE created_at >= ?", (changes_since,)) if changes_since else ("", ())
                    for ref, envelope in conn.execute(
                        f"SELECT ref, envelope FROM referrals {where} ORDER BY id", params
                    ).fetchall():
                        tar.add(f"referrals/{ref}.age", bytes(envelope))
                        referral_refs.append(ref)
                    report.count("referrals", len(referral_refs))
                    for recall_id, member, content in recalls.recall_members(conn, changes_since):
                        tar.add(member, content)
                        recall_ids.append(recall_id)
                    report.count("recalls", len(recall_ids))
                report_doc = {
                    "policy": policy.name,
                    "withheld": {
                        reason: {"count": sum(len(v) for v in by_type.values()), "refs": by_type}
                        for reason, by_type in sorted(report.withheld.items())
                    },
                    "dropped_fields": {
                        record_type: [f for f in RECORD_FIELDS[record_type] if f not in policy.fields[record_type]]
                        for record_type in policy.fields
                    },
                    "note": 'Withheld values appear in the records as {"withheld": reason, "referral": ref}.',
                }
                report_bytes = json.dumps(report_doc, indent=1, sort_keys=True).encode()
                guard.scan(report_bytes, "redaction-report.json")
                tar.add("redaction-report.json", report_bytes)
                signer = signing.public_key_hex(conn)
                last_seq, head_hash = audit._head(conn)
                counts = {k: report.counts.get(k, 0) for k in ("cases", "contacts", "referrals")}
                if recall_ids:
                    counts["recalls"] = len(recall_ids)
                counts.update(
                    {
                        f"withheld_{reason}": sum(len(v) for v in by_type.values())
                        for reason, by_type in report.withheld.items()
                    }
                )
                if not allow_empty and _carries_nothing(policy, counts):
                    raise _NothingNew()
                manifest = {
                    "format": BUNDLE_FORMAT,
                    "version": BUNDLE_VERSION,
                    "bundle_id": bundle_id,
                    "created_at": created.isoformat(timespec="seconds"),
                    "tracekit_version": __version__,
                    "tracer_key": {
                        "algorithm": "ed25519",
                        "public_key": signer,
                        "fingerprint": signing.fingerprint(signer),
                    },
                    "recipient": {"name": name, "role": role},
                    "policy": {
                        "name": policy.name,
                        "sha256": policy.sha256,
                        "kind": policy.kind,
                        "definition": policy.canonical(),
                    },
                    "changes": {"since": changes_since, "until": changes_until},
                    "record_counts": counts,
                    "files": tar.entries,
                    "audit_head": f"{last_seq}:{head_hash}",
                }
                manifest_bytes = json.dumps(manifest, indent=1, sort_keys=True).encode()
                guard.scan(manifest_bytes, "manifest.json")
                guard.raise_if_blocked()  # every hit of the export, in one error
                tar.add("manifest.json", manifest_bytes, listed=False)
                signature = signing.sign(conn, manifest_bytes)
                tar.add("manifest.sig", (signature.hex() + "\n").encode(), listed=False)
                tar.close()
            except BaseException:
                if tar is not None:
                    tar.abandon()
                encryptor.sink.close()
                try:
                    encryptor.finish()
                except TracekitError:
                    pass
                raise
            encryptor.finish()
            out.flush()
            os.fsync(out.fileno())
    except BaseException as exc:
        _rollback(conn)
        _unlink_quietly(temp)
        if isinstance(exc, _NothingNew):
            if created_out_dir:
                _rmdir_quietly(out_dir)
            return ExportResult(
                None,
                None,
                name,
                policy.name,
                counts,
                changes_since,
                changes_until,
                0,
                time.perf_counter() - started,
                without_pseudonyms=without_pseudonyms,
            )
        if isinstance(exc, OSError):  # creating, filling, flushing or closing the file
            raise WriteFailed(f"cannot write {dest}: {files.describe_os_error(exc)}") from None
        raise
    _rollback(conn)  # end the read snapshot
    files.publish(temp, dest)
    with store.transaction() as txn:
        cursor = txn.execute(
            "INSERT INTO handovers(bundle_id, recipient, policy, policy_sha256, created_at, changes_since, changes_until, "
            "file_name, record_counts) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                bundle_id,
                name,
                policy.name,
                policy.sha256,
                created.isoformat(timespec="seconds"),
                changes_since,
                changes_until,
                dest.name,
                json.dumps(counts),
            ),
        )
        report.in_clear.remember(txn, int(cursor.lastrowid))
        audit.append(
            txn,
            "export.handover",
            referral_refs,
            f"bundle {bundle_id} to {name} ({role}), policy {policy.name}, "
            f"{counts['cases']} cases, {counts['contacts']} contacts, {counts['referrals']} referrals"
            + (f", recall requests {', '.join(recall_ids)}" if recall_ids else ""),
        )
    return ExportResult(
        dest,
        bundle_id,
        name,
        policy.name,
        counts,
        changes_since,
        changes_until,
        os.stat(dest).st_size,
        time.perf_counter() - started,
        [e["path"] for e in tar.entries] if tar else [],
        without_pseudonyms=without_pseudonyms,
    )


@dataclass
class Handover:
    bundle_id: str
    recipient: str
    policy: str
    created_at: str
    changes_since: str | None
    changes_until: str
    file_name: str
    record_counts: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle_id": self.bundle_id,
            "recipient": self.recipient,
            "policy": self.policy,
            "created_at": self.created_at,
            "changes_since": self.changes_since,
            "changes_until": self.changes_until,
            "file_name": self.file_name,
            "record_counts": self.record_counts,
        }


def list_handovers(store: Any, recipient: str | None = None, limit: int = 50, offset: int = 0) -> Page:
    """A page of the bundles made from this store, newest first (optionally for one
    recipient), with the count of them all."""
    where, params = _handover_filter(recipient)
    total = store.conn.execute(f"SELECT count(*) FROM handovers {where}", params).fetchone()[0]
    limit = max(1, min(int(limit), MAX_PAGE))
    return Page(list(_handovers(store, where, params, offset, limit)), total, limit, max(0, offset))


def iter_handovers(store: Any, recipient: str | None = None, offset: int = 0) -> Iterator[Handover]:
    """Every bundle of :func:`list_handovers` from ``offset`` on, read one at a time."""
    where, params = _handover_filter(recipient)
    return _handovers(store, where, params, offset, None)


def _handover_filter(recipient: str | None) -> tuple[str, tuple[str, ...]]:
    return ("WHERE recipient = ?", (recipient,)) if recipient else ("", ())


def _handovers(store: Any, where: str, params: tuple[str, ...], offset: int, limit: int | None) -> Iterator[Handover]:
    rows = store.conn.execute(
        "SELECT bundle_id, recipient, policy, created_at, changes_since, changes_until, file_name, record_counts "
        f"FROM handovers {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*params, -1 if limit is None else limit, max(0, offset)),
    )
    for row in rows:
        yield Handover(*row[:7], json.loads(row[7]))  # type: ignore[call-arg]


def _rollback(conn: Any) -> None:
    try:
        conn.execute("ROLLBACK")
    except Exception:
        pass


def _rmdir_quietly(path: Path) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass  # not empty after all (another file appeared): leave it


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
