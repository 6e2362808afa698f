"""Raw records for export, streamed from the store as plain dicts with sensitivity facts.

One SQL statement per record type, read in batches, so a million contacts stream in
constant memory. Records are "changed since" a time when the record or its person was
updated at or after it (inclusive: a record at the boundary may come twice, never zero
times; recipients de-duplicate by ``ref``). ``id`` is the record's row id, for the store's
own bookkeeping (:mod:`tracekit.bundle.recalls`); no policy can name it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracekit.records.association import ProtectedKeys
from tracekit.records.casebook import (
    ASSOCIATED_SQL,
    CASE_ISOLATION_END_SQL,
    EXPOSURE_ISOLATION_END_SQL,
    marked_people,
)

BATCH = 5000

#: Whether a record is about people the vetted team received in a referral (the person
#: or one of their cases' contacts, tracekit.records.receive): such records never leave
#: in a standard handover, not even as stubs.
RECEIVED_SQL = "EXISTS (SELECT 1 FROM received_records WHERE kind = 'person' AND record_id IN ({people}))"

_PERSON = (
    "{p}.ref, {p}.name, {p}.name_key, {p}.date_of_birth, {p}.nhs_number, {p}.phone, {p}.email, "
    "{p}.address, {p}.postcode, {r}.role, (SELECT ref FROM referrals WHERE id = {p}.referral_id), "
    + ASSOCIATED_SQL.replace("p.id", "{p}.id")
)
_PERSON_KEYS = (
    "person", "name", "name_key", "date_of_birth", "nhs_number", "phone", "email", "address", "postcode",
    "self_role", "self_referral", "self_associated",
)

CASE_SQL = (
    "SELECT c.id, c.ref, c.test_date, c.test_type, c.test_result, c.symptom_onset, c.status, c.infectious_start, "
    "c.infectious_end, " + CASE_ISOLATION_END_SQL + ", c.ruleset_id, (SELECT ref FROM exposures WHERE id = c.source_exposure_id), "
    "c.notes, c.updated_at, " + _PERSON.format(p="p", r="r") + ", "
    + RECEIVED_SQL.format(people="c.person_id") + " "
    "FROM cases c JOIN people p ON p.id = c.person_id LEFT JOIN person_roles r ON r.person_id = p.id "
    "{where} ORDER BY c.id"
)
_CASE_KEYS = (
    "id", "ref", "test_date", "test_type", "test_result", "symptom_onset", "status", "infectious_start",
    "infectious_end", "isolation_end", "ruleset", "source_exposure", "notes", "updated_at", *_PERSON_KEYS, "received",
)

CONTACT_SQL = (
    "SELECT e.id, e.ref, c.ref, e.last_exposure, e.setting, e.proximity_m, e.duration_min, e.face_to_face, "
    "e.direct_contact, e.close_contact, e.clause, e.trace_status, "
    + EXPOSURE_ISOLATION_END_SQL + ", e.ruleset_id, e.notes, "
    "e.updated_at, " + _PERSON.format(p="p", r="r") + ", cr.role, "
    "(SELECT ref FROM referrals WHERE id = cp.referral_id), "
    "EXISTS (SELECT 1 FROM released_exposures WHERE exposure_id = e.id), "
    + RECEIVED_SQL.format(people="e.person_id, c.person_id") + " "
    "FROM exposures e JOIN cases c ON c.id = e.case_id JOIN people p ON p.id = e.person_id "
    "JOIN people cp ON cp.id = c.person_id LEFT JOIN person_roles r ON r.person_id = p.id "
    "LEFT JOIN person_roles cr ON cr.person_id = cp.id {where} ORDER BY e.id"
)
_CONTACT_KEYS = (
    "id", "ref", "case", "last_exposure", "setting", "proximity_m", "duration_min", "face_to_face", "direct_contact",
    "close_contact", "clause", "trace_status", "isolation_end", "ruleset", "notes", "updated_at", *_PERSON_KEYS,
    "case_role", "case_referral", "released", "received",
)
_BOOLEAN = ("face_to_face", "direct_contact", "close_contact", "released", "self_associated", "received")


def _stream(conn: Any, sql: str, params: tuple[Any, ...], keys: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """Records with their sensitivity facts. Besides the person's own role and referral:
    ``self_associated`` (the person is a contact of a marked person's case, not released:
    their own cases and contacts elsewhere are withheld too), and what their identifiers
    share with a protected person (tracekit.records.association): ``shared_identity``
    (the record is of the protected person themself) or ``shared_fields`` (withheld
    field by field)."""
    protected = ProtectedKeys(conn, marked=marked_people(conn))
    cursor = conn.execute(sql, params)
    while True:
        rows = cursor.fetchmany(BATCH)
        if not rows:
            return
        for row in rows:
            record = dict(zip(keys, row))
            for name in _BOOLEAN:
                if name in record:
                    record[name] = bool(record[name])
            if "symptom_onset" in record:
                record["asymptomatic"] = record["symptom_onset"] is None
            if not protected.empty and not (record["self_role"] or record["self_referral"]):
                record["shared_identity"], record["shared_fields"] = protected.withheld_fields(record)
            yield record


#: Up to this many changed records are looked up by index and sorted by id (in memory:
#: a few megabytes); more are found by reading every record in id order, which streams
#: in constant memory however many changed.
LOOKUP_UP_TO = 50_000


def _changed_since(conn: Any, alias: str, table: str, since: str) -> str:
    """The WHERE clause for records of ``table`` changed at or after ``since``: the record
    itself or its person (``?`` twice, both ``since``).

    Written as ``x.updated_at >= ? OR p.updated_at >= ?`` across the join, SQLite reads
    every record (76 s for a few changes among 5,000,000 contacts). As two id lists OR-ed
    it looks each up by index ("MULTI-INDEX OR"): used when they are few."""
    lookup = (
        f"WHERE {alias}.id IN (SELECT id FROM {table} WHERE updated_at >= ?) "
        f"OR {alias}.person_id IN (SELECT id FROM people WHERE updated_at >= ?)"
    )
    scan = f"WHERE {alias}.updated_at >= ? OR p.updated_at >= ?"
    changed, people = (
        conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM {name} WHERE updated_at >= ? LIMIT ?)",
                     (since, LOOKUP_UP_TO + 1)).fetchone()[0]
        for name in (table, "people")
    )
    if changed > LOOKUP_UP_TO or people > LOOKUP_UP_TO:  # (SQLite lists the changed people in memory)
        return scan
    by_person = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM people p JOIN {table} x ON x.person_id = p.id "
        "WHERE p.updated_at >= ? LIMIT ?)",
        (since, LOOKUP_UP_TO + 1),
    ).fetchone()[0]
    return lookup if changed + by_person <= LOOKUP_UP_TO else scan


def cases(conn: Any, since: str | None = None) -> Iterator[dict[str, Any]]:
    where, params = "", ()
    if since:
        where, params = _changed_since(conn, "c", "cases", since), (since, since)
    return _stream(conn, CASE_SQL.format(where=where), params, _CASE_KEYS)


def contacts(conn: Any, since: str | None = None) -> Iterator[dict[str, Any]]:
    where, params = "", ()
    if since:
        where, params = _changed_since(conn, "e", "exposures", since), (since, since)
    return _stream(conn, CONTACT_SQL.format(where=where), params, _CONTACT_KEYS)


def count_rows(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> dict[str, int]:
    return {str(k): int(v) for k, v in conn.execute(sql, params).fetchall()}
