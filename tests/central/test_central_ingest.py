"""Central ingest into a real PostgreSQL server: bundles from two tracers, the registry,
one transaction per bundle, links through pseudonyms only, stubs kept as stubs."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pyrage import x25519
from typer.testing import CliRunner

from tests.bundle import hostile
from tests.conftest import CHEAP_KDF, PASSPHRASE
from tracekit.crypto import signing
from tracekit.errors import ExitCode

#: The person both tracers have records of, and details that must never reach the database.
SHARED = {"name": "Philippa Dunstable-Moor", "phone": "07700 900456", "nhs_number": "9992000007", "postcode": "LS1 4AP"}
OFFICER = {"name": "Quintessa Zarkovian", "phone": "07700 900321", "nhs_number": "9990000018", "postcode": "SW1A 2AB"}
CLEAR_VALUES = (
    "Philippa",
    "Dunstable",
    "900456",
    "9992000007",
    "LS1 4AP",
    "Quintessa",
    "Zarkovian",
    "900321",
    "9990000018",
    "Olwen",
    "Ordinary",
    "Ned Normal",
)

CENTRAL_WITH_PSEUDONYMS = """
name = "central-with-pseudonyms"
description = "The central handover plus the team pseudonym"
recipient_roles = ["central-team"]

[fields]
case = ["ref", "person", "pseudonym", "name", "date_of_birth", "nhs_number", "phone", "email", "address", "postcode",
        "test_date", "test_type", "test_result", "symptom_onset", "asymptomatic", "status", "infectious_start",
        "infectious_end", "isolation_end", "ruleset", "updated_at"]
contact = ["ref", "case", "person", "pseudonym", "name", "date_of_birth", "nhs_number", "phone", "email", "address",
           "postcode", "last_exposure", "setting", "proximity_m", "duration_min", "face_to_face", "direct_contact",
           "close_contact", "clause", "trace_status", "isolation_end", "ruleset", "updated_at"]
"""


def _tracer_store(
    directory: Path, central_public: str, pseudonym_key: bytes, build, *, default_policy: bool = False
) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A tracer's store and its bundle for the central team, under CENTRAL_WITH_PSEUDONYMS
    (or, with ``default_policy``, the built-in central handover)."""
    from tracekit.bundle.writer import export_handover
    from tracekit.records import Casebook
    from tracekit.records.sensitive import SensitiveRoles
    from tracekit.redaction.pseudonym import KEY_SETTING
    from tracekit.store import create_store

    directory.mkdir()
    policy = directory / "policy.toml"
    policy.write_text(CENTRAL_WITH_PSEUDONYMS)
    with create_store(directory / "case.store", bytearray(PASSPHRASE.encode()), kdf=CHEAP_KDF) as store:
        with store.transaction() as conn:
            conn.execute("INSERT INTO settings(key, value) VALUES(?, ?)", (KEY_SETTING, pseudonym_key.hex()))
        book = Casebook(store, today=date(2020, 11, 1))
        roles = SensitiveRoles(book)
        build(book, roles)
        roles.add_recipient("PHE", central_public, "central-team")
        result = export_handover(
            store,
            "PHE",
            policy_name=None if default_policy else str(policy),
            out_dir=directory / "out",
            all_records=True,
        )
        return {
            "path": result.path,
            "fingerprint": signing.fingerprint(signing.public_key_hex(store.conn)),
            "counts": result.record_counts,
        }


def _tracer_a(book, roles) -> None:  # type: ignore[no-untyped-def]
    from tracekit.records import PersonInput

    shared = book.add_case(person=PersonInput(**SHARED), test_date="2020-10-20", asymptomatic=True)
    book.add_contact(
        shared.ref,
        person=PersonInput(name="Ned Normal", phone="07700 900324"),
        last_exposure="2020-10-19",
        setting="household",
    )
    officer = book.add_case(person=PersonInput(**OFFICER), test_date="2020-10-21", asymptomatic=True)
    book.add_contact(
        officer.ref, person=PersonInput(name="Olwen Ordinary"), last_exposure="2020-10-20", setting="workplace"
    )
    roles.mark(officer.person.ref, "undercover-officer", "operational safety")


def _tracer_b(book, roles) -> None:  # type: ignore[no-untyped-def]
    from tracekit.records import PersonInput

    case = book.add_case(
        person=PersonInput(name="Bartholomew Yelverton", nhs_number="9990000026"),
        test_date="2020-10-22",
        asymptomatic=True,
    )
    book.add_contact(case.ref, person=PersonInput(**SHARED), last_exposure="2020-10-21", setting="social")


@pytest.fixture(scope="module")
def tracers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two tracers of one team (one pseudonym key), each with a bundle for the central team."""
    root = tmp_path_factory.mktemp("tracers")
    central = x25519.Identity.generate()
    identity = root / "central.key"
    identity.write_text(f"{central}\n")
    os.chmod(identity, 0o600)
    team_key = os.urandom(32)
    return {
        "identity": identity,
        "a": _tracer_store(root / "a", str(central.to_public()), team_key, _tracer_a),
        "b": _tracer_store(root / "b", str(central.to_public()), team_key, _tracer_b),
    }


def central(database: str, *args: str):  # type: ignore[no-untyped-def]
    from tracekit.cli import app

    return CliRunner().invoke(app, ["central", *args], env={"TRACEKIT_DATABASE_URL": database}, catch_exceptions=False)


def register(database: str, name: str, fingerprint: str) -> None:
    result = central(database, "tracers", "add", "--name", name, "--signer", fingerprint)
    assert result.exit_code == 0, result.stderr


def ingest(database: str, identity: Path, *bundles: Path):  # type: ignore[no-untyped-def]
    return central(database, "ingest", *map(str, bundles), "--identity", str(identity), "--json")


def query(database: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(database) as conn:
        return conn.execute(sql, params).fetchall()


def snapshot(database: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every tracekit table (the test databases are small)."""
    tables = ("tracers", "bundles", "cases", "contacts", "pseudonym_tracers", "tracekit_migrations")
    return {table: sorted(map(repr, query(database, f"SELECT * FROM {table}"))) for table in tables}  # type: ignore[misc]


def _register_both(database: str, tracers: dict[str, Any]) -> None:
    register(database, "Tracer A", tracers["a"]["fingerprint"])
    register(database, "Tracer B", tracers["b"]["fingerprint"])


def _both_ingested(database: str, tracers: dict[str, Any]) -> None:
    _register_both(database, tracers)
    result = ingest(database, tracers["identity"], tracers["a"]["path"], tracers["b"]["path"])
    assert result.exit_code == 0, result.stderr


def test_ingest_round_trip_and_summary(database, tracers):
    _both_ingested(database, tracers)
    for key, name in (("a", "Tracer A"), ("b", "Tracer B")):
        counts = tracers[key]["counts"]
        ((cases, contacts, withheld),) = query(
            database,
            "SELECT b.cases, b.contacts, b.withheld FROM bundles b JOIN tracers t ON t.id = b.tracer_id WHERE t.name = %s",
            (name,),
        )
        assert (cases, contacts) == (counts["cases"], counts["contacts"])
        assert withheld == sum(v for k, v in counts.items() if k.startswith("withheld_"))
    assert query(database, "SELECT count(*) FROM cases")[0][0] == 3
    assert query(database, "SELECT count(*) FROM contacts")[0][0] == 3
    dates = {row[0].isoformat() for row in query(database, "SELECT test_date FROM cases")}
    assert dates == {"2020-10-20", "2020-10-21", "2020-10-22"}

    summary = central(database, "summary", "--json")
    assert summary.exit_code == 0, summary.stderr
    data = json.loads(summary.stdout)
    assert [(t["name"], t["bundles"], t["cases"], t["contacts"]) for t in data["tracers"]["items"]] == [
        ("Tracer A", 1, 2, 2),
        ("Tracer B", 1, 1, 1),
    ]
    assert {d["tracer"] for d in data["days"]["items"]} == {"Tracer A", "Tracer B"}
    assert data["links"]["linked_people"] == 1
    assert data["links"]["items"][0]["tracers"] == ["Tracer A", "Tracer B"]
    human = central(database, "summary")
    assert (
        human.exit_code == 0
        and "Tracer A" in human.stdout
        and "1 people have records from two or more tracers" in human.stdout
    )


def test_reingesting_a_bundle_changes_nothing(database, tracers):
    _both_ingested(database, tracers)
    before = snapshot(database)
    again = ingest(database, tracers["identity"], tracers["a"]["path"])
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["items"][0]["status"] == "already-ingested"
    assert snapshot(database) == before


def test_a_bundle_from_an_unregistered_signer_is_refused_and_nothing_changes(database, tracers):
    register(database, "Tracer A", tracers["a"]["fingerprint"])
    before = snapshot(database)
    result = ingest(database, tracers["identity"], tracers["b"]["path"])
    assert result.exit_code == ExitCode.BUNDLE_INVALID
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "unknown-signer" and tracers["b"]["fingerprint"] in error["message"]
    assert "tracers add" in error["hint"]
    assert snapshot(database) == before


def test_a_removed_tracer_s_next_bundle_is_refused(database, tracers):
    register(database, "Tracer A", tracers["a"]["fingerprint"])
    assert central(database, "tracers", "remove", "--name", "Tracer A").exit_code == 0
    listed = json.loads(central(database, "tracers", "list", "--all", "--json").stdout)["items"]
    assert [(t["name"], t["removed_at"] is not None) for t in listed] == [("Tracer A", True)]
    result = ingest(database, tracers["identity"], tracers["a"]["path"])
    assert result.exit_code == ExitCode.BUNDLE_INVALID
    assert query(database, "SELECT count(*) FROM bundles")[0][0] == 0


def test_a_tampered_bundle_is_refused_and_nothing_changes(database, tracers, tmp_path):
    register(database, "Tracer A", tracers["a"]["fingerprint"])
    data = bytearray(tracers["a"]["path"].read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = tmp_path / "tampered.tar.age"
    tampered.write_bytes(bytes(data))
    before = snapshot(database)
    result = ingest(database, tracers["identity"], tampered)
    assert result.exit_code == ExitCode.BUNDLE_INVALID
    assert json.loads(result.stderr)["error"]["code"] == "bundle-invalid"
    assert snapshot(database) == before


def test_bundles_load_in_order_and_a_later_one_failing_verification_leaves_the_earlier_loaded(
    database, tracers, tmp_path
):
    """The next bundle is verified while the one before it loads: its failure still comes
    after the earlier bundle is committed, and nothing after it is loaded."""
    _register_both(database, tracers)
    data = bytearray(tracers["a"]["path"].read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered = tmp_path / "tampered.tar.age"
    tampered.write_bytes(bytes(data))
    result = ingest(database, tracers["identity"], tracers["b"]["path"], tampered, tracers["a"]["path"])
    assert result.exit_code == ExitCode.BUNDLE_INVALID
    assert json.loads(result.stderr)["error"]["code"] == "bundle-invalid"
    assert query(database, "SELECT t.name FROM bundles b JOIN tracers t ON t.id = b.tracer_id") == [("Tracer B",)]
    assert query(database, "SELECT count(*) FROM cases")[0][0] == 1


def test_tracers_are_linked_through_pseudonyms_and_no_clear_identifier_is_stored(database, tracers):
    _both_ingested(database, tracers)
    ((pseudonym, names),) = query(
        database,
        "SELECT pt.pseudonym, array_agg(t.name ORDER BY t.name) FROM pseudonym_tracers pt JOIN tracers t ON t.id = pt.tracer_id "
        "GROUP BY pt.pseudonym HAVING count(*) > 1",
    )
    assert names == ["Tracer A", "Tracer B"]
    # The same pseudonym on tracer A's case and tracer B's contact: the shared person.
    assert query(database, "SELECT count(*) FROM cases WHERE pseudonym = %s", (pseudonym,))[0][0] == 1
    assert query(database, "SELECT count(*) FROM contacts WHERE pseudonym = %s", (pseudonym,))[0][0] == 1
    patterns = [f"%{value}%" for value in CLEAR_VALUES]
    with psycopg.connect(database) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' "
            "AND data_type IN ('text', 'bytea', 'ARRAY', 'character varying', 'uuid')"
        ).fetchall()
        assert len(columns) > 20
        control = conn.execute(
            "SELECT count(*) FROM tracers WHERE name::text ILIKE ANY(%s)", (["%racer%"],)
        ).fetchone()[0]
        assert control == 2  # the search finds what is there
        for table, column, data_type in columns:
            as_text = f"encode({column}, 'escape')" if data_type == "bytea" else f"{column}::text"
            found = conn.execute(f"SELECT count(*) FROM {table} WHERE {as_text} ILIKE ANY(%s)", (patterns,)).fetchone()[
                0
            ]
            assert found == 0, (table, column)


def test_the_default_central_policy_links_tracers_who_share_the_team_key(database, tmp_path):
    """Two tracers sharing the team pseudonym key, both exporting with the built-in policy
    (no --policy): the central summary shows the person they both know as one link."""
    central_key = x25519.Identity.generate()
    identity = tmp_path / "central.key"
    identity.write_text(f"{central_key}\n")
    os.chmod(identity, 0o600)
    team_key = os.urandom(32)
    bundles = [
        _tracer_store(tmp_path / name, str(central_key.to_public()), team_key, build, default_policy=True)
        for name, build in (("a", _tracer_a), ("b", _tracer_b))
    ]
    for name, bundle in zip(("Tracer A", "Tracer B"), bundles, strict=True):
        register(database, name, bundle["fingerprint"])
    result = ingest(database, identity, *(bundle["path"] for bundle in bundles))
    assert result.exit_code == 0, result.stderr
    assert {row[0] for row in query(database, "SELECT policy FROM bundles")} == {"central-handover"}
    links = json.loads(central(database, "summary", "--json").stdout)["links"]
    assert links["linked_people"] == 1
    assert links["items"][0]["tracers"] == ["Tracer A", "Tracer B"]


def test_a_withheld_stub_stays_withheld_and_links_to_nothing(database, tracers):
    _both_ingested(database, tracers)
    stubs = query(
        database,
        "SELECT ref, withheld, person, pseudonym, withheld_fields, test_date FROM cases WHERE withheld IS NOT NULL",
    )
    assert len(stubs) == 1
    ref, reason, person, pseudonym, withheld_fields, test_date = stubs[0]
    assert ref.startswith("W-") and reason == "sensitive-role"
    assert person is None and pseudonym is None
    assert {"person", "pseudonym", "name", "phone", "nhs_number"} <= set(withheld_fields)
    assert test_date.isoformat() == "2020-10-21"  # the epidemiological picture stays
    contact_stubs = query(
        database, "SELECT withheld, case_ref, person, pseudonym FROM contacts WHERE withheld IS NOT NULL"
    )
    assert contact_stubs == [("sensitive-by-association", contact_stubs[0][1], None, None)]
    assert contact_stubs[0][1] == ref  # grouped with its case's stub, within the bundle
    # A: the shared person (Ned Normal has no NHS number or birth date: no pseudonym); B: two people, one shared
    assert query(database, "SELECT count(*) FROM pseudonym_tracers")[0][0] == 3


# ---------------------------------------------------------------------------- hostile or wrong bundles


def _hostile_bundle(
    tmp_path: Path, members: dict[str, bytes], *, fields: dict[str, list[str]] | None = None, role: str = "central-team"
) -> Path:
    manifest = hostile.valid_manifest(members)
    manifest["policy"]["definition"]["fields"] = fields or {"case": ["ref", "test_date"]}
    manifest["recipient"]["role"] = role
    path = tmp_path / "hostile.tar.age"
    path.write_bytes(hostile.seal(hostile.tar_bytes(hostile.signed_members(members, manifest))))
    identity = tmp_path / "hostile.key"
    identity.write_text(f"{hostile.IDENTITY}\n")
    os.chmod(identity, 0o600)
    return path


def _ingest_hostile(database: str, tmp_path: Path, members: dict[str, bytes], **kwargs: Any):  # type: ignore[no-untyped-def]
    register(database, "Mallory", signing.fingerprint(hostile.SIGNER_PUBLIC))
    path = _hostile_bundle(tmp_path, members, **kwargs)
    before = snapshot(database)
    result = ingest(database, tmp_path / "hostile.key", path)
    assert snapshot(database) == before
    return result


GOOD = b'{"ref": "C-7K2M9Q", "test_date": "2020-10-20", "withheld": false}\n'


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (b'{"ref": "C-7K2M9Q", "test_date": "yesterday", "withheld": false}\n', "test_date: a date"),
        (b'{"ref": "C-7K2M9Q", "notes": "smuggled", "withheld": false}\n', "only the fields its policy lists"),
        (b'{"ref": "W-0123456789ABCDEF", "test_date": "2020-10-20", "withheld": false}\n', "ref: a reference"),
        (b'{"ref": "C-7K2M9Q", "test_date": "2020-10-20", "withheld": "sensitive-role"}\n', "stub id"),
        (
            b'{"ref": "C-7K2M9Q", "test_date": {"withheld": "x", "referral": null}, "withheld": false}\n',
            "withheld marker",
        ),
        (b"[1, 2]\n", "a JSON object"),
        (b'{"ref": "C-7K2M9Q\\u0000", "withheld": false}\n', "ref: a reference"),
    ],
)
def test_a_bad_record_in_a_later_member_leaves_nothing_of_the_bundle(database, tmp_path, bad, problem):
    """The first member was COPY-ed already when the second fails: the transaction takes it back."""
    members = {"records/cases-00001.jsonl": GOOD * 3, "records/cases-00002.jsonl": GOOD + bad}
    result = _ingest_hostile(database, tmp_path, members)
    assert result.exit_code == ExitCode.BUNDLE_INVALID, result.stderr
    message = json.loads(result.stderr)["error"]["message"]
    assert "records/cases-00002.jsonl, line 2" in message and problem in message


def test_a_value_postgresql_refuses_mid_bundle_leaves_nothing(database, tmp_path):
    """A date of the right shape that does not exist: refused by PostgreSQL inside the COPY."""
    bad = b'{"ref": "C-7K2M9Q", "test_date": "2020-02-30", "withheld": false}\n'
    members = {"records/cases-00001.jsonl": GOOD * 3, "records/cases-00002.jsonl": GOOD + bad}
    result = _ingest_hostile(database, tmp_path, members)
    assert result.exit_code == ExitCode.BUNDLE_INVALID, result.stderr
    message = json.loads(result.stderr)["error"]["message"]
    assert "PostgreSQL refuses" in message and "2020-02-30" not in message


def test_a_vetted_team_bundle_is_never_ingested(database, tmp_path):
    result = _ingest_hostile(database, tmp_path, {"records/cases-00001.jsonl": GOOD}, role="vetted-team")
    assert result.exit_code == ExitCode.BUNDLE_INVALID
    assert "only bundles for a central team" in json.loads(result.stderr)["error"]["message"]


# ---------------------------------------------------------------------------- the database itself


def test_the_schema_is_under_versioned_migrations(empty_database):
    refused = central(empty_database, "summary", "--json")
    assert refused.exit_code == ExitCode.DATABASE
    assert "central migrate" in json.loads(refused.stderr)["error"]["hint"]
    first = central(empty_database, "migrate", "--json")
    assert first.exit_code == 0 and json.loads(first.stdout)["applied"] == [1, 2]
    again = central(empty_database, "migrate", "--json")
    assert json.loads(again.stdout)["applied"] == []
    assert [row[0] for row in query(empty_database, "SELECT version FROM tracekit_migrations")] == [1, 2]


def test_the_database_password_is_never_shown(postgres):
    url = f"postgresql://nobody:s3cret-Pw0rd@/no_such_db?host={postgres.directory}"
    for args in (["summary"], ["summary", "--json"], ["migrate"]):
        result = central(url, *args)
        assert result.exit_code == ExitCode.DATABASE
        assert "s3cret-Pw0rd" not in result.stdout + result.stderr
        assert "no_such_db" in result.stderr  # the database is still named
    unparsable = central("host=x password=s3cret-Pw0rd 'unterminated", "summary")
    assert unparsable.exit_code == ExitCode.VALIDATION
    assert "s3cret-Pw0rd" not in unparsable.stdout + unparsable.stderr


def test_the_registry_refuses_a_second_tracer_with_the_same_key(database):
    register(database, "Tracer A", "ab" * 32)
    again = central(database, "tracers", "add", "--name", "Someone", "--signer", "ab" * 32)
    assert again.exit_code == ExitCode.CONFLICT
    missing = central(database, "tracers", "remove", "--name", "Nobody")
    assert missing.exit_code == ExitCode.NOT_FOUND


def _guide_sql_block(starting: str) -> str:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "central-guide.md").read_text()
    blocks = [block.split("```", 1)[0] for block in guide.split("```sql\n")[1:]]
    return next(block for block in blocks if block.startswith(starting))


def test_the_guide_s_roles_can_do_their_jobs_and_no_more(database, tracers):
    """The roles and grants of docs/central-guide.md, run as written (the test server's
    superuser stands in for the owner)."""
    with psycopg.connect(database, autocommit=True) as conn:
        for statement in _guide_sql_block("-- as a superuser").split(";"):
            if statement.strip().split("\n")[-1].startswith("CREATE ROLE"):
                try:
                    conn.execute(statement)
                except psycopg.errors.DuplicateObject:
                    pass  # one server for the whole session: made by an earlier run of this test
        conn.execute(_guide_sql_block("REVOKE ALL ON SCHEMA public"))
    register(database, "Tracer A", tracers["a"]["fingerprint"])
    as_ingest = database.replace("user=postgres", "user=tracekit_ingest")
    as_analyst = database.replace("user=postgres", "user=tracekit_analyst")
    result = ingest(as_ingest, tracers["identity"], tracers["a"]["path"])
    assert result.exit_code == 0, result.stderr
    assert (
        json.loads(ingest(as_ingest, tracers["identity"], tracers["a"]["path"]).stdout)["items"][0]["status"]
        == "already-ingested"
    )
    summary = central(as_analyst, "summary", "--json")
    assert summary.exit_code == 0 and json.loads(summary.stdout)["tracers"]["items"][0]["cases"] == 2
    refused = central(as_ingest, "tracers", "add", "--name", "Mallory", "--signer", "cd" * 32)
    assert refused.exit_code == ExitCode.DATABASE and "permission denied" in refused.stderr
    with psycopg.connect(as_analyst) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM cases")


def test_the_same_bundle_ingested_twice_at_once_is_stored_once(database, tracers):
    """Two ingest jobs racing on one bundle: the unique bundle id makes the second wait, then find it there."""
    from concurrent.futures import ThreadPoolExecutor

    from tracekit.bundle.reader import load_identities
    from tracekit.central.database import connect
    from tracekit.central.ingest import ingest_bundle

    register(database, "Tracer A", tracers["a"]["fingerprint"])
    identities = load_identities(tracers["identity"])
    connections = [connect(database), connect(database)]
    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(lambda conn: ingest_bundle(conn, database, tracers["a"]["path"], identities), connections)
            )
    finally:
        for conn in connections:
            conn.close()
    assert sorted(result.already for result in results) == [False, True]
    assert query(database, "SELECT count(*) FROM bundles")[0][0] == 1
    assert query(database, "SELECT count(*) FROM cases")[0][0] == 2
