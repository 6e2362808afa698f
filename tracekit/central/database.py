"""The central team's PostgreSQL database: where it is, how to reach it, its schema.

The database is named by a libpq connection string (``postgresql://user@host/db`` or
``host=... dbname=...``), from ``--database`` or ``TRACEKIT_DATABASE_URL``. A password
may be in it, but is better kept off the command line: libpq reads ``PGPASSWORD`` and
``~/.pgpass`` (docs/central-guide.md). tracekit never prints a password: a database is
shown by :func:`describe` (every parameter but the secret ones), and libpq's own error
text is shown only with any secret of the connection string cut out.

The schema is under migrations (:data:`MIGRATIONS`), recorded in ``tracekit_migrations``;
``tracekit central migrate`` applies them, every other command checks that the database
is at the version this tracekit knows.
"""

from __future__ import annotations

import os
from typing import Any

from tracekit.errors import DatabaseError, ValidationError

DATABASE_ENV = "TRACEKIT_DATABASE_URL"
#: Connection parameters never shown (libpq's names).
_SECRET_PARAMETERS = frozenset({"password", "sslpassword", "sslkey"})


def database_url(given: str | None) -> str:
    """The connection string: ``--database``, else ``TRACEKIT_DATABASE_URL``."""
    url = given or os.environ.get(DATABASE_ENV)
    if not url:
        raise ValidationError(
            "database", "no database given", expected=f"--database URL or the {DATABASE_ENV} environment variable"
        )
    return url


def _parameters(url: str) -> dict[str, str]:
    from psycopg.conninfo import conninfo_to_dict

    try:
        return {key: str(value) for key, value in conninfo_to_dict(url).items()}
    except Exception:  # libpq's parse error quotes the string, password and all: never shown
        raise ValidationError(
            "database",
            "is not a PostgreSQL connection string",
            expected="postgresql://USER@HOST:PORT/DBNAME or host=... dbname=... (see docs/central-guide.md)",
        ) from None


def describe(url: str) -> str:
    """The database as it can be shown: its parameters without any secret."""
    shown = {key: value for key, value in _parameters(url).items() if key not in _SECRET_PARAMETERS}
    return " ".join(f"{key}={value}" for key, value in sorted(shown.items())) or "(libpq defaults)"


def scrub(text: str, url: str) -> str:
    """``text`` (an error from libpq or the server) with any secret of ``url`` cut out."""
    try:
        parameters = _parameters(url)
    except ValidationError:
        return "(details withheld: the connection string could not be read)"
    for key in _SECRET_PARAMETERS:
        secret = parameters.get(key)
        if secret:
            text = text.replace(secret, "***")
    return text


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def failure(error: BaseException, url: str, doing: str) -> DatabaseError:
    """A psycopg error as a :class:`DatabaseError` naming the database, never its password."""
    return DatabaseError(f"{doing} failed on the database {describe(url)}: {scrub(_first_line(error), url)}")


def connect(url: str) -> Any:
    """A connection in autocommit mode (every change runs in an explicit transaction), in UTC."""
    import psycopg

    describe(url)  # a string libpq cannot parse is refused before libpq can quote it
    try:
        conn = psycopg.connect(url, autocommit=True, application_name="tracekit", connect_timeout=15)
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot connect to the database {describe(url)}: {scrub(_first_line(exc), url)}",
            hint="check the host, the database name and the role; a password goes in PGPASSWORD or ~/.pgpass",
        ) from None
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


# ---------------------------------------------------------------------------- migrations

#: (version, what it does, SQL). Never edit an applied migration: add the next one.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "tracer registry, bundles, case and contact records, pseudonym links",
        """
        CREATE TABLE tracers (
            id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name text NOT NULL,
            fingerprint text NOT NULL CHECK (fingerprint ~ '^[0-9a-f]{4}(:[0-9a-f]{4}){7}$'),
            added_at timestamptz NOT NULL DEFAULT now(),
            removed_at timestamptz
        );
        -- One active tracer per name and per key; a removed one stays for the bundles it sent.
        CREATE UNIQUE INDEX tracers_active_name ON tracers (name) WHERE removed_at IS NULL;
        CREATE UNIQUE INDEX tracers_active_fingerprint ON tracers (fingerprint) WHERE removed_at IS NULL;

        CREATE TABLE bundles (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            bundle_id uuid NOT NULL UNIQUE,          -- re-ingesting a bundle changes nothing
            tracer_id integer NOT NULL REFERENCES tracers (id),
            created_at timestamptz NOT NULL,
            changes_since timestamptz,
            changes_until timestamptz NOT NULL,
            policy text NOT NULL,
            policy_sha256 text NOT NULL,
            audit_head text NOT NULL,
            cases integer NOT NULL,
            contacts integer NOT NULL,
            withheld integer NOT NULL,
            ingested_at timestamptz NOT NULL DEFAULT now()
        );
        -- summary: per tracer and day
        CREATE INDEX bundles_by_tracer_and_time ON bundles (tracer_id, created_at);

        -- Records: one row per record per bundle (a record at a window's boundary may come
        -- in two bundles; the latest is the one of the newest bundle). No clear identifier
        -- and no free text is ever stored: see docs/central-guide.md. No foreign key to
        -- bundles: it would fire a trigger per row of a COPY; rows are only ever written
        -- in the transaction that writes their bundle.
        CREATE TABLE cases (
            bundle bigint NOT NULL,
            line integer NOT NULL,
            tracer_id integer NOT NULL,
            ref text NOT NULL,
            person text,
            pseudonym bytea,
            withheld text CHECK (withheld IN ('sensitive-role', 'sensitive-by-association')),
            referral text,
            withheld_fields text[],
            role text,
            test_date date,
            test_type text,
            test_result text,
            symptom_onset date,
            asymptomatic boolean,
            status text,
            infectious_start date,
            infectious_end date,
            isolation_end date,
            ruleset text,
            source_exposure text,
            updated_at timestamptz,
            PRIMARY KEY (bundle, line)
        );
        CREATE TABLE contacts (
            bundle bigint NOT NULL,
            line integer NOT NULL,
            tracer_id integer NOT NULL,
            ref text NOT NULL,
            case_ref text,
            person text,
            pseudonym bytea,
            withheld text CHECK (withheld IN ('sensitive-role', 'sensitive-by-association')),
            referral text,
            withheld_fields text[],
            role text,
            last_exposure date,
            setting text,
            proximity_m double precision,
            duration_min double precision,
            face_to_face boolean,
            direct_contact boolean,
            close_contact boolean,
            clause text,
            trace_status text,
            isolation_end date,
            ruleset text,
            updated_at timestamptz,
            PRIMARY KEY (bundle, line)
        );
        -- a person's records across tracers; a record's versions from one tracer
        CREATE INDEX cases_by_pseudonym ON cases (pseudonym) WHERE pseudonym IS NOT NULL;
        CREATE INDEX contacts_by_pseudonym ON contacts (pseudonym) WHERE pseudonym IS NOT NULL;
        CREATE INDEX cases_by_ref ON cases (tracer_id, ref);
        CREATE INDEX contacts_by_ref ON contacts (tracer_id, ref);

        -- Which tracers have records of which pseudonym: kept per bundle, so the
        -- cross-tracer links are read from one row per person and tracer, not from every record.
        CREATE TABLE pseudonym_tracers (
            pseudonym bytea NOT NULL,
            tracer_id integer NOT NULL REFERENCES tracers (id),
            records bigint NOT NULL,
            first_seen timestamptz NOT NULL,
            last_seen timestamptz NOT NULL,
            PRIMARY KEY (pseudonym, tracer_id)
        );
        """,
    ),
    (
        2,
        "pseudonym links without a per-row foreign key check",
        """
        -- The foreign key fired a trigger for every link row an ingest writes (about 40% of
        -- linking a bundle). Its tracer_id comes from the registry lookup in the same
        -- transaction, and tracers are never deleted (only marked removed), as for the records.
        ALTER TABLE pseudonym_tracers DROP CONSTRAINT pseudonym_tracers_tracer_id_fkey;
        """,
    ),
)
LATEST_VERSION = MIGRATIONS[-1][0]
_MIGRATION_LOCK = 0x7472_6163  # an advisory lock: one migrating process at a time


def _applied(conn: Any) -> list[int]:
    exists = conn.execute("SELECT to_regclass('tracekit_migrations') IS NOT NULL").fetchone()[0]
    if not exists:
        return []
    return [row[0] for row in conn.execute("SELECT version FROM tracekit_migrations ORDER BY version")]


def migrate(conn: Any, url: str) -> list[int]:
    """Apply the migrations this database lacks, each in its own transaction; the versions applied."""
    import psycopg

    done: list[int] = []
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS tracekit_migrations (version integer PRIMARY KEY, "
                "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            applied = set(_applied(conn))
            _refuse_newer(applied, url)
            for version, description, sql in MIGRATIONS:
                if version in applied:
                    continue
                conn.execute(sql)
                conn.execute(
                    "INSERT INTO tracekit_migrations (version, description) VALUES (%s, %s)", (version, description)
                )
                done.append(version)
    except psycopg.Error as exc:
        raise failure(exc, url, "migrating") from None
    return done


def _refuse_newer(applied: set[int], url: str) -> None:
    if applied and max(applied) > LATEST_VERSION:
        raise DatabaseError(
            f"the database {describe(url)} is at schema version {max(applied)}, made by a newer tracekit "
            f"(this one knows up to {LATEST_VERSION})"
        )


def require_current(conn: Any, url: str) -> None:
    """Refuse a database whose schema is not the one this tracekit writes."""
    applied = set(_applied(conn))
    _refuse_newer(applied, url)
    if LATEST_VERSION not in applied:
        raise DatabaseError(
            f"the database {describe(url)} is at schema version {max(applied, default=0)}; this tracekit needs {LATEST_VERSION}",
            hint="run tracekit central migrate --database URL (as the role that owns the schema)",
        )
