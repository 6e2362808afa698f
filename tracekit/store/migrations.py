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


@migration("casebook")
def _casebook(conn: Connection) -> None:
    """People, cases, exposures (contacts of a case), call attempts, and the search index.

    Computed columns (isolation ends, close-contact clause, risk rank, rule set) are
    written with each change so the worklist and lists are plain index scans.

    The search index is a plain contentless FTS5 table with secure-delete on. Entries are
    removed with the 'delete' command and the exact text that was indexed, kept in
    ``people.search_terms``, so the tokens are erased in place at once. (With
    ``contentless_delete`` a delete only writes a tombstone and the old tokens stay in
    the index segments until a merge: a removed name would stay recoverable.)
    """
    run_statements(
        conn,
        """
        CREATE TABLE people (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            name_key TEXT NOT NULL,
            date_of_birth TEXT,
            nhs_number TEXT,
            phone TEXT,
            email TEXT,
            address TEXT,
            postcode TEXT,
            occupation TEXT,
            search_terms TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX people_nhs ON people(nhs_number) WHERE nhs_number IS NOT NULL;
        CREATE INDEX people_name_dob ON people(name_key, date_of_birth);
        CREATE INDEX people_phone ON people(phone) WHERE phone IS NOT NULL;
        CREATE INDEX people_postcode ON people(postcode) WHERE postcode IS NOT NULL;
        CREATE TABLE person_aliases (
            ref TEXT PRIMARY KEY,
            person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE
        ) WITHOUT ROWID;
        CREATE TABLE cases (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL UNIQUE,
            person_id INTEGER NOT NULL REFERENCES people(id),
            test_date TEXT NOT NULL,
            test_type TEXT NOT NULL,
            test_result TEXT NOT NULL,
            symptom_onset TEXT,
            status TEXT NOT NULL,
            notes TEXT,
            source_exposure_id INTEGER REFERENCES exposures(id),
            ruleset_id TEXT NOT NULL,
            infectious_start TEXT NOT NULL,
            infectious_end TEXT NOT NULL,
            isolation_end TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            closed_at TEXT
        );
        CREATE INDEX cases_person ON cases(person_id);
        CREATE INDEX cases_status_date ON cases(status, test_date);
        CREATE INDEX cases_test_date ON cases(test_date);
        CREATE INDEX cases_source ON cases(source_exposure_id) WHERE source_exposure_id IS NOT NULL;
        CREATE TABLE exposures (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL UNIQUE,
            case_id INTEGER NOT NULL REFERENCES cases(id),
            person_id INTEGER NOT NULL REFERENCES people(id),
            last_exposure TEXT NOT NULL,
            setting TEXT NOT NULL,
            proximity_m REAL,
            duration_min REAL,
            face_to_face INTEGER NOT NULL DEFAULT 0,
            direct_contact INTEGER NOT NULL DEFAULT 0,
            trace_status TEXT NOT NULL,
            notes TEXT,
            ruleset_id TEXT NOT NULL,
            close_contact INTEGER NOT NULL,
            clause TEXT,
            risk_rank INTEGER NOT NULL,
            isolation_end TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (case_id, person_id)
        );
        CREATE INDEX exposures_person ON exposures(person_id);
        CREATE INDEX exposures_worklist ON exposures(trace_status, risk_rank, last_exposure);
        CREATE INDEX exposures_isolation_end ON exposures(isolation_end);
        CREATE INDEX exposures_date ON exposures(last_exposure);
        CREATE TABLE call_attempts (
            id INTEGER PRIMARY KEY,
            exposure_id INTEGER NOT NULL REFERENCES exposures(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            outcome TEXT NOT NULL,
            note TEXT
        );
        CREATE INDEX call_attempts_exposure ON call_attempts(exposure_id);
        CREATE VIRTUAL TABLE people_fts USING fts5(
            terms,
            content = '',
            tokenize = 'trigram remove_diacritics 1'
        );
        INSERT INTO people_fts(people_fts, rank) VALUES ('secure-delete', 1)
        """,
    )


@migration("audit-log")
def _audit_log(conn: Connection) -> None:
    """The hash-chained audit log (see tracekit.audit)."""
    run_statements(
        conn,
        """
        CREATE TABLE audit_log (
            seq INTEGER NOT NULL,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            refs TEXT NOT NULL,
            reason TEXT,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE INDEX audit_log_at ON audit_log(at);
        CREATE INDEX audit_log_action ON audit_log(action)
        """,
    )


@migration("sensitive-roles")
def _sensitive_roles(conn: Connection) -> None:
    """Sensitive roles, released contacts, recipients, referrals, the signing key."""
    run_statements(
        conn,
        """
        CREATE TABLE person_roles (
            person_id INTEGER PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            reason TEXT,
            marked_at TEXT NOT NULL,
            referral_id INTEGER REFERENCES referrals(id)
        );
        CREATE TABLE released_exposures (
            exposure_id INTEGER PRIMARY KEY REFERENCES exposures(id) ON DELETE CASCADE,
            reason TEXT NOT NULL,
            released_at TEXT NOT NULL
        );
        CREATE TABLE recipients (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            public_key TEXT NOT NULL,
            added_at TEXT NOT NULL
        );
        CREATE TABLE referrals (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            created_at TEXT NOT NULL,
            recipients TEXT NOT NULL,
            envelope BLOB NOT NULL,
            exported_at TEXT
        );
        ALTER TABLE people ADD COLUMN referral_id INTEGER REFERENCES referrals(id)
        """,
    )
    from tracekit.crypto import signing

    signing.ensure_signing_key(conn)


@migration("imports")
def _imports(conn: Connection) -> None:
    """External ids from source systems (idempotent re-import) and the import log."""
    run_statements(
        conn,
        """
        CREATE TABLE external_ids (
            kind TEXT NOT NULL,
            external_id TEXT NOT NULL,
            record_id INTEGER NOT NULL,
            import_id INTEGER REFERENCES imports(id),
            PRIMARY KEY (kind, external_id)
        ) WITHOUT ROWID;
        CREATE INDEX external_ids_record ON external_ids(kind, record_id);
        CREATE TABLE imports (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            file_name TEXT NOT NULL,
            input_sha256 TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            summary TEXT
        )
        """,
    )


@migration("handovers")
def _handovers(conn: Connection) -> None:
    """Handover bundles made, per recipient (for --since-last), and the pseudonym key."""
    run_statements(
        conn,
        """
        CREATE TABLE handovers (
            id INTEGER PRIMARY KEY,
            bundle_id TEXT NOT NULL UNIQUE,
            recipient TEXT NOT NULL,
            policy TEXT NOT NULL,
            policy_sha256 TEXT NOT NULL,
            created_at TEXT NOT NULL,
            changes_since TEXT,
            changes_until TEXT NOT NULL,
            file_name TEXT NOT NULL,
            record_counts TEXT NOT NULL
        );
        CREATE INDEX handovers_recipient ON handovers(recipient, created_at);
        CREATE INDEX cases_updated ON cases(updated_at);
        CREATE INDEX exposures_updated ON exposures(updated_at)
        """,
    )


@migration("performance-indexes")
def _performance_indexes(conn: Connection) -> None:
    """Indexes shaped like the queries of the worklist, the contact list and the audit log,
    measured on a 1,000,000-person store (docs/performance.md)."""
    run_statements(
        conn,
        """
        CREATE INDEX audit_log_seq ON audit_log(seq);
        CREATE INDEX exposures_status_date ON exposures(trace_status, last_exposure);
        DROP INDEX exposures_worklist;
        CREATE INDEX exposures_worklist ON exposures(trace_status, risk_rank, last_exposure DESC);
        CREATE INDEX exposures_pending ON exposures(trace_status, isolation_end, person_id);
        DROP INDEX exposures_isolation_end;
        CREATE INDEX exposures_isolation_end ON exposures(isolation_end, risk_rank);
        DROP INDEX cases_person;
        CREATE INDEX cases_person ON cases(person_id, status)
        """,
    )


@migration("people-updated-index")
def _people_updated_index(conn: Connection) -> None:
    """People by when they last changed: a handover ``--since-last`` finds the records
    whose person changed by index instead of reading every person (docs/performance.md)."""
    conn.execute("CREATE INDEX people_updated ON people(updated_at)")


@migration("handover-records-and-recalls")
def _handover_records_and_recalls(conn: Connection) -> None:
    """Which records each bundle carried in clear, so that marking someone says which
    bundles already had them; and the recall requests that marking then writes for the
    vetted team (tracekit.bundle.recalls, docs/sensitive-roles.md).

    Records are kept as runs of consecutive row ids per record type, no content: a full
    export of a million contacts is a handful of runs, a delta one run per scattered
    change. (A row per record cost 16 bytes and 25 us each: 25 s on a million-record
    export.) Runs of one bundle never overlap, so the run that may hold a record is the
    one with the greatest ``first_id`` at or below it: one index seek per bundle."""
    run_statements(
        conn,
        """
        CREATE TABLE handover_records (
            handover_id INTEGER NOT NULL REFERENCES handovers(id),
            kind TEXT NOT NULL,
            first_id INTEGER NOT NULL,
            last_id INTEGER NOT NULL,
            PRIMARY KEY (handover_id, kind, first_id)
        ) WITHOUT ROWID;
        CREATE TABLE recalls (
            id INTEGER PRIMARY KEY,
            recall_id TEXT NOT NULL UNIQUE,
            person_ref TEXT NOT NULL,
            created_at TEXT NOT NULL,
            content TEXT NOT NULL
        );
        CREATE INDEX recalls_created ON recalls(created_at)
        """,
    )


@migration("referral-tombstones")
def _referral_tombstones(conn: Connection) -> None:
    """Keyed digests of referred people's identifiers, so a later import or entry of them
    (or of someone sharing their phone or address) is recognised without the store keeping
    their details; and the random key they are made with (tracekit.records.association)."""
    conn.execute(
        "CREATE TABLE referral_tombstones (kind TEXT NOT NULL, digest BLOB NOT NULL, "
        "referral_id INTEGER NOT NULL REFERENCES referrals(id), PRIMARY KEY (kind, digest, referral_id)) WITHOUT ROWID"
    )
    import secrets

    # The key's setting name is tracekit.records.association.TOMBSTONE_KEY_SETTING (the
    # store layer does not import the records layer).
    conn.execute("INSERT INTO settings(key, value) VALUES(?, ?)", ("referral.tombstone_key", secrets.token_hex(32)))


@migration("person-former-details")
def _person_former_details(conn: Connection) -> None:
    """Details a person no longer carries because a merge or an update replaced them (the
    other record's phone, the old address). Protection must not drop with them: while the
    person is marked, notes and shared identifiers are still matched against these, and a
    referral purges them with the rest (tracekit.records.casebook.marked_people)."""
    conn.execute(
        "CREATE TABLE person_former_details (person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE, "
        "field TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (person_id, field, value)) WITHOUT ROWID"
    )


@migration("received-referrals")
def _received_referrals(conn: Connection) -> None:
    """The vetted team's side of a referral (tracekit.records.receive): each referral taken
    in, keyed by the sending tracer's signing key and the referral's reference (receiving
    it again changes nothing), and the records it became, with the tracer's own references.
    The exposures in which the person was a contact of another tracer's case are kept as
    received (JSON): their index case stays with the tracer."""
    run_statements(
        conn,
        """
        CREATE TABLE received_referrals (
            id INTEGER PRIMARY KEY,
            ref TEXT NOT NULL,
            signer_public_key TEXT NOT NULL,
            signer_pinned INTEGER NOT NULL,
            payload_sha256 TEXT NOT NULL,
            role TEXT NOT NULL,
            sealed_at TEXT NOT NULL,
            received_at TEXT NOT NULL,
            person_id INTEGER NOT NULL REFERENCES people(id),
            exposures_as_contact TEXT NOT NULL,
            UNIQUE (signer_public_key, ref)
        );
        CREATE TABLE received_records (
            kind TEXT NOT NULL,
            record_id INTEGER NOT NULL,
            received_id INTEGER NOT NULL REFERENCES received_referrals(id),
            source_ref TEXT NOT NULL,
            PRIMARY KEY (kind, record_id)
        ) WITHOUT ROWID;
        CREATE INDEX received_records_referral ON received_records(received_id)
        """,
    )


@migration("drop-unused-indexes")
def _drop_unused_indexes(conn: Connection) -> None:
    """Indexes no query uses (checked with EXPLAIN QUERY PLAN, tests/test_indexes.py): each
    cost a b-tree write per row written, one per imported record for ``external_ids_record``.
    ``audit show --since``/``--action`` walk the log in ``seq`` order; a referral's purge
    of external ids finds them by their primary key's ``kind``; recall requests are read
    in id order."""
    run_statements(
        conn,
        """
        DROP INDEX IF EXISTS external_ids_record;
        DROP INDEX IF EXISTS audit_log_at;
        DROP INDEX IF EXISTS audit_log_action;
        DROP INDEX IF EXISTS recalls_created
        """,
    )


@migration("search-index-by-part")
def _search_index_by_part(conn: Connection) -> None:
    """The search index made again (tracekit.store.search_index): one column per part of
    a person's indexed text, so no trigram spans two parts; no per-person size table
    (``columnsize=0``: only ranking reads it, and searches are ordered by person id); a
    larger pending buffer; then merged into one segment, since each removal (a person
    marked) seeks every trigram in every segment. Filled again from
    ``people.search_terms``, which holds exactly what the index holds (NULL for marked and
    referred people). The old index's pages are overwritten when dropped
    (``secure_delete``)."""
    from tracekit.store import search_index

    conn.execute("DROP TABLE people_fts")
    conn.execute(search_index.CREATE_SQL)
    for statement in search_index.SETTINGS_SQL:
        conn.execute(statement)
    search_index.add_people_from(conn, 1)
    search_index.merge(conn)


@migration("search-index-residue")
def _search_index_residue(conn: Connection) -> None:
    """No table changes: from this version a bulk import takes the people it marks out of
    the search index by delete markers, and records in ``settings``
    (``search_index.residue``) that the index's pages still hold their trigrams, which the
    next referral merges away (tracekit.store.search_index.clear_residue). A tracekit
    before this version would refer someone without that merge, so the schema version
    rises: such a tracekit refuses the store as made by a newer one."""
