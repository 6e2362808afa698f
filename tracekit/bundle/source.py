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
from tracekit.records.casebook import ASSOCIATED_SQL, marked_people
from tracekit.records.derived import CASE_ISOLATION_END_SQL, EXPOSURE_ISOLATION_END_SQL
from tracekit.records.tables import CASES, EXPOSURES, PEOPLE, View

BATCH = 5000

#: Whether a record is about people the vetted team received in a referral (the person
#: or one of their cases' contacts, tracekit.records.receive): such records never leave
#: in a standard handover, not even as stubs.
RECEIVED_SQL = "EXISTS (SELECT 1 FROM received_records WHERE kind = 'person' AND record_id IN ({people}))"

#: The record's person (``p``, their mark ``r``): their identity and their own
#: sensitivity facts.
_PERSON = [
    ("person", "p.ref"),
    *PEOPLE.select("p", (*PEOPLE.identity, "name_key")),
    ("self_role", "r.role"),
    ("self_referral", "(SELECT ref FROM referrals WHERE id = p.referral_id)"),
    ("self_associated", ASSOCIATED_SQL),
]

CASE_VIEW = View(
    [
        *CASES.select(
            "c",
            (
                "id",
                "ref",
                "test_date",
                "test_type",
                "test_result",
                "symptom_onset",
                "status",
                "infectious_start",
                "infectious_end",
            ),
        ),
        ("isolation_end", CASE_ISOLATION_END_SQL),
        ("ruleset", "c.ruleset_id"),
        ("source_exposure", "(SELECT ref FROM exposures WHERE id = c.source_exposure_id)"),
        *CASES.select("c", ("notes", "updated_at")),
        *_PERSON,
        ("received", RECEIVED_SQL.format(people="c.person_id")),
    ]
)
CASE_SQL = (
    f"SELECT {CASE_VIEW.sql} "
    "FROM cases c JOIN people p ON p.id = c.person_id LEFT JOIN person_roles r ON r.person_id = p.id "
    "{where} ORDER BY c.id"
)

CONTACT_VIEW = View(
    [
        *EXPOSURES.select("e", ("id", "ref")),
        ("case", "c.ref"),
        *EXPOSURES.select(
            "e",
            (
                "last_exposure",
                "setting",
                "proximity_m",
                "duration_min",
                "face_to_face",
                "direct_contact",
                "close_contact",
                "clause",
                "trace_status",
            ),
        ),
        ("isolation_end", EXPOSURE_ISOLATION_END_SQL),
        ("ruleset", "e.ruleset_id"),
        *EXPOSURES.select("e", ("notes", "updated_at")),
        *_PERSON,
        ("case_role", "cr.role"),
        ("case_referral", "(SELECT ref FROM referrals WHERE id = cp.referral_id)"),
        ("released", "EXISTS (SELECT 1 FROM released_exposures WHERE exposure_id = e.id)"),
        ("received", RECEIVED_SQL.format(people="e.person_id, c.person_id")),
    ]
)
CONTACT_SQL = (
    f"SELECT {CONTACT_VIEW.sql} "
    "FROM exposures e JOIN cases c ON c.id = e.case_id JOIN people p ON p.id = e.person_id "
    "JOIN people cp ON cp.id = c.person_id LEFT JOIN person_roles r ON r.person_id = p.id "
    "LEFT JOIN person_roles cr ON cr.person_id = cp.id {where} ORDER BY e.id"
)
_BOOLEAN = ("face_to_face", "direct_contact", "close_contact", "released", "self_associated", "received")


def _stream(conn: Any, sql: str, params: tuple[Any, ...], view: View) -> Iterator[dict[str, Any]]:
    """Records with their sensitivity facts. Besides the person's own role and referral:
    ``self_associated`` (the person is a contact of a marked person's case, not released:
    their own cases and contacts elsewhere are withheld too), and what their identifiers
    share with a protected person (tracekit.records.association): ``shared_identity``
    (the record is of the protected person themself) or ``shared_fields`` (withheld
    field by field)."""
    protected = ProtectedKeys(conn, marked=marked_people(conn))
    keys = view.names
    booleans = [name for name in _BOOLEAN if name in keys]
    cursor = conn.execute(sql, params)
    while True:
        rows = cursor.fetchmany(BATCH)
        if not rows:
            return
        for row in rows:
            record = dict(zip(keys, row))
            for name in booleans:
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
        conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {name} WHERE updated_at >= ? LIMIT ?)", (since, LOOKUP_UP_TO + 1)
        ).fetchone()[0]
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
    where: str = ""
    params: tuple[str, ...] = ()
    if since:
        where, params = _changed_since(conn, "c", "cases", since), (since, since)
    return _stream(conn, CASE_SQL.format(where=where), params, CASE_VIEW)


def contacts(conn: Any, since: str | None = None) -> Iterator[dict[str, Any]]:
    where: str = ""
    params: tuple[str, ...] = ()
    if since:
        where, params = _changed_since(conn, "e", "exposures", since), (since, since)
    return _stream(conn, CONTACT_SQL.format(where=where), params, CONTACT_VIEW)


def count_rows(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> dict[str, int]:
    return {str(k): int(v) for k, v in conn.execute(sql, params).fetchall()}
