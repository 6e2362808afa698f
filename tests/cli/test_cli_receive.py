"""CLI: ``referrals receive``, the vetted team's side of a referral.

A tracer refers a marked person; the vetted team takes the sealed referral into its own
store, traces the case there, and its handovers to central carry nothing of them.
"""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
import tempfile
from datetime import date
from pathlib import Path

import pytest
from pyrage import decrypt, encrypt, x25519

from tests.conftest import CHEAP_KDF, PASSPHRASE, TracekitRunner
from tracekit.errors import ExitCode
from tracekit.records import Casebook, PersonInput
from tracekit.records.sensitive import SensitiveRoles

#: What identifies the referred person and their contacts: none of it may reach central.
IDENTIFYING = (
    "Dana Confidential",
    "Confidential",
    "7700900190",
    "9990000026",
    "Eli Partner",
    "7700900191",
    "Fay Colleague",
    "7700900192",
)


def _key_file(path: Path) -> tuple[Path, x25519.Identity]:
    identity = x25519.Identity.generate()
    path.write_text(str(identity) + "\n")
    os.chmod(path, 0o600)
    return path, identity


@pytest.fixture
def world(store, tmp_path):
    """The tracer's store with one referral made and exported; the vetted team's empty store."""
    from tracekit.crypto import signing
    from tracekit.store import create_store

    book = Casebook(store, today=date(2020, 10, 15))
    roles = SensitiveRoles(book)
    vetted_key, vetted_identity = _key_file(tmp_path / "vetted.key")
    roles.add_recipient("Vetted Team", str(vetted_identity.to_public()), "vetted-team")
    case = book.add_case(
        person=PersonInput(name="Dana Confidential", phone="07700 900190", nhs_number="999 000 0026"),
        test_date="2020-10-12",
        symptom_onset="2020-10-11",
        notes="works shifts",
    )
    eli, _ = book.add_contact(
        case.ref,
        person=PersonInput(name="Eli Partner", phone="07700 900191"),
        last_exposure="2020-10-11",
        setting="household",
    )
    fay, _ = book.add_contact(
        case.ref,
        person=PersonInput(name="Fay Colleague", phone="07700 900192"),
        last_exposure="2020-10-10",
        setting="workplace",
        proximity_m="1",
        duration_min="30",
    )
    book.log_call(fay.ref, "no-answer", "try after six")
    roles.mark(case.person.ref, "undercover-officer", "operational safety")
    referral = roles.refer(case.person.ref, "per protocol")
    outbox = tmp_path / "outbox"
    [referral_file] = roles.export_referrals(outbox)
    signer = signing.public_key_hex(store.conn)
    tracer_store = store.path
    store.close()

    vetted_path = tmp_path / "vetted" / "vetted.store"
    with create_store(vetted_path, bytearray(PASSPHRASE.encode()), kdf=CHEAP_KDF) as vetted_store:
        central_key, central_identity = _key_file(tmp_path / "central.key")
        vetted_book = Casebook(vetted_store, today=date(2020, 10, 15))
        SensitiveRoles(vetted_book).add_recipient("PHE North", str(central_identity.to_public()), "central-team")
        # one ordinary case of the vetted team's own, so a handover to central has something in it
        vetted_book.add_case(
            person=PersonInput(name="Olwen Ordinary", phone="07700 900401"), test_date="2020-10-13", asymptomatic=True
        )
    return {
        "tracer": TracekitRunner(tracer_store),
        "vetted": TracekitRunner(vetted_path),
        "vetted_path": vetted_path,
        "file": referral_file,
        "referral": referral.ref,
        "signer": signer,
        "key": vetted_key,
        "central_key": central_key,
        "central_identity": central_identity,
        "tmp": tmp_path,
        "tracer_case": case.ref,
        "tracer_contacts": (eli.ref, fay.ref),
    }


def _receive(world, *files, extra=()):
    files = files or (world["file"],)
    return world["vetted"](
        "referrals",
        "receive",
        *map(str, files),
        "--identity",
        str(world["key"]),
        *extra,
    )


def _snapshot(path: Path) -> tuple:
    """Everything a receive could change in the vetted store: record counts and the audit head."""
    from tracekit.store import open_store

    with open_store(path, bytearray(PASSPHRASE.encode())) as store:
        counts = tuple(
            store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in (
                "people",
                "cases",
                "exposures",
                "call_attempts",
                "person_roles",
                "received_referrals",
                "audit_log",
            )
        )
        head = store.conn.execute("SELECT value FROM settings WHERE key = 'audit.head'").fetchone()
    return counts, head


def test_vetted_round_trip_trace_and_nothing_back_to_central(world):
    received = _receive(world, extra=("--signer", world["signer"], "--json"))
    assert received.exit_code == 0, received.stderr
    [item] = json.loads(received.stdout)["items"]
    assert item["referral"] == world["referral"] and item["role"] == "undercover-officer" and item["signer_checked"]
    # decrypted in memory only: no temporary file anywhere, nothing beside the store
    assert not list(Path(tempfile.gettempdir()).rglob("*"))
    assert [p.name for p in world["vetted_path"].parent.iterdir()] == [world["vetted_path"].name]
    assert [c["tracer_ref"] for c in item["cases"]] == [world["tracer_case"]]
    assert sorted(c["tracer_ref"] for c in item["contacts"]) == sorted(world["tracer_contacts"])
    case_ref = item["cases"][0]["ref"]
    vetted = world["vetted"]

    # linked to the referral and the tracer's key
    [listed] = json.loads(vetted("referrals", "received", "--json").stdout)["items"]
    assert (listed["referral"], listed["person"], listed["cases"], listed["contacts"]) == (
        world["referral"],
        item["person"],
        [case_ref],
        2,
    )
    assert listed["signer_fingerprint"] == item["signer_fingerprint"] and listed["signer_checked"]

    # marked with their role: masked in ordinary views
    marks = json.loads(vetted("role", "list", "--json").stdout)["items"]
    assert [(m["person"], m["role"]) for m in marks] == [(item["person"], "undercover-officer")]
    masked = vetted("case", "show", case_ref)
    assert masked.exit_code == 0 and "Dana" not in masked.stdout
    # today: the two contacts not yet reached, household first
    today = json.loads(vetted("today", "--date", "2020-10-15", "--json").stdout)
    to_call = [e["ref"] for e in today["items"]]
    contacts = {c["tracer_ref"]: c["ref"] for c in item["contacts"]}
    eli, fay = (contacts[ref] for ref in world["tracer_contacts"])
    assert to_call == [eli, fay]
    # case show --reveal: the case in full, the tracer's notes and the call log kept
    shown = vetted("case", "show", case_ref, "--reveal", "--reason", "tracing the referred case", "--json")
    assert shown.exit_code == 0, shown.stderr
    case = json.loads(shown.stdout)
    assert case["person"]["name"] == "Dana Confidential" and case["person"]["nhs_number"] == "9990000026"
    assert case["notes"] == "works shifts" and case["test_date"] == "2020-10-12" and case["status"] == "open"
    fay_shown = json.loads(vetted("contact", "show", fay, "--reveal", "--reason", "calling", "--json").stdout)
    assert fay_shown["contact"]["phone"] == "+447700900192" and fay_shown["setting"] == "workplace"
    assert [(c["outcome"], c["note"]) for c in fay_shown["calls"]] == [("no-answer", "try after six")]
    # contact call works on them
    called = vetted("contact", "call", eli, "--outcome", "reached", "--json")
    assert called.exit_code == 0, called.stderr
    assert json.loads(called.stdout)["trace_status"] == "reached"

    # audited, by reference: linked to the referral and the tracer's key, no details
    entries = json.loads(vetted("audit", "show", "--json", "--limit", "100").stdout)["items"]
    [entry] = [e for e in entries if e["action"] == "referral.receive"]
    assert world["referral"] in entry["refs"] and item["person"] in entry["refs"] and case_ref in entry["refs"]
    from tracekit.crypto.signing import fingerprint

    assert fingerprint(world["signer"]) in entry["reason"]
    audit_text = json.dumps(entries)
    assert not [word for word in IDENTIFYING if word in audit_text]
    assert vetted("audit", "verify").exit_code == 0
    assert vetted("store", "check").exit_code == 0

    # a contact of the referred case tests positive: their case is the vetted team's too
    promoted = vetted("contact", "promote", fay, "--test-date", "2020-10-14", "--asymptomatic", "--json")
    assert promoted.exit_code == 0, promoted.stderr
    fay_case = json.loads(promoted.stdout)["ref"]

    # the vetted store's handover to central: only its own ordinary case, nothing of the referral
    exported = vetted(
        "export", "handover", "--to", "PHE North", "--all", "--out", str(world["tmp"] / "to-central"), "--json"
    )
    assert exported.exit_code == 0, exported.stderr
    result = json.loads(exported.stdout)
    assert result["record_counts"]["cases"] == 1 and result["record_counts"]["contacts"] == 0
    assert not any(k.startswith("withheld_") for k in result["record_counts"])
    plain = decrypt(Path(result["path"]).read_bytes(), [world["central_identity"]])
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        text = "".join(tar.extractfile(m).read().decode() for m in tar.getmembers())
    assert "Olwen Ordinary" in text
    found = [
        word
        for word in (*IDENTIFYING, world["referral"], case_ref, fay_case, eli, fay, item["person"], "W-", "withheld:")
        if word in text
    ]
    assert not found
    # statistics to central leave them out too, also a contact who became a case here
    from tracekit.bundle.source import count_rows
    from tracekit.bundle.writer import _STATISTICS_QUERIES
    from tracekit.store import open_store

    with open_store(world["vetted_path"], bytearray(PASSPHRASE.encode())) as store:
        for name in ("cases_by_status", "cases_by_test_date", "contacts_by_setting"):
            counted = count_rows(store.conn, _STATISTICS_QUERIES[name][0])
            assert sum(counted.values()) == (1 if name.startswith("cases") else 0), (name, counted)


def test_receiving_again_changes_nothing(world):
    first = _receive(world, extra=("--signer", world["signer"]))
    assert first.exit_code == 0, first.stderr
    before = _snapshot(world["vetted_path"])
    again = _receive(world, extra=("--signer", world["signer"]))
    assert again.exit_code == 0, again.stderr
    assert "already received" in again.stdout and "nothing changed" in again.stdout
    assert _snapshot(world["vetted_path"]) == before
    # the same referral inside the tracer's vetted-team bundle: also already received
    bundle = json.loads(
        world["tracer"]("export", "handover", "--to", "Vetted Team", "--out", str(world["tmp"] / "b"), "--json").stdout
    )
    from_bundle = _receive(world, bundle["path"], extra=("--signer", world["signer"], "--json"))
    assert from_bundle.exit_code == 0, from_bundle.stderr
    assert [i["already_received"] for i in json.loads(from_bundle.stdout)["items"]] == [True]
    assert _snapshot(world["vetted_path"]) == before


def test_receive_from_a_vetted_bundle(world):
    bundle = json.loads(
        world["tracer"]("export", "handover", "--to", "Vetted Team", "--out", str(world["tmp"] / "b"), "--json").stdout
    )
    fingerprint_only = json.loads(world["tracer"]("keys", "show", "--json").stdout)["fingerprint"]
    received = _receive(world, bundle["path"], extra=("--signer", fingerprint_only, "--json"))
    assert received.exit_code == 0, received.stderr
    [item] = json.loads(received.stdout)["items"]
    assert item["referral"] == world["referral"] and not item["already_received"] and len(item["contacts"]) == 2


def test_unknown_or_unpinned_signer_refused(world):
    before = _snapshot(world["vetted_path"])
    other = _receive(world, extra=("--signer", "ab" * 32))
    assert other.exit_code == ExitCode.BUNDLE_INVALID, other.stderr
    assert "signed by a different key" in other.stderr and "nothing was received" in other.stderr
    # the team's trusted signers file decides the same way (the shared signer check)
    trusted = world["tmp"] / "trusted_signers"
    trusted.write_text(f"{'ab' * 32} Someone Else\n")
    trusted.chmod(0o600)
    not_listed = _receive(world, extra=("--trusted-signers", str(trusted)))
    assert not_listed.exit_code == ExitCode.BUNDLE_INVALID, not_listed.stderr
    assert "not in your trusted signers file" in not_listed.stderr
    unpinned = _receive(world)
    assert unpinned.exit_code == ExitCode.POLICY, unpinned.stderr
    assert "no --signer" in unpinned.stderr
    assert _snapshot(world["vetted_path"]) == before
    allowed = _receive(world, extra=("--allow-unpinned-signer",))
    assert allowed.exit_code == 0, allowed.stderr
    assert "NOT checked" in allowed.stderr
    entries = json.loads(world["vetted"]("audit", "show", "--json").stdout)["items"]
    assert any(e["action"] == "referral.receive" and "NOT checked" in e["reason"] for e in entries)


def test_tampered_referral_refused_store_unchanged(world):
    before = _snapshot(world["vetted_path"])
    data = bytearray(world["file"].read_bytes())
    data[len(data) // 2] ^= 1
    damaged = world["tmp"] / "damaged" / world["file"].name
    damaged.parent.mkdir()
    damaged.write_bytes(bytes(data))
    refused = _receive(world, damaged, extra=("--signer", world["signer"]))
    assert refused.exit_code == ExitCode.BUNDLE_INVALID, refused.stderr
    # Anyone with the vetted team's public key can seal a new envelope: a changed payload
    # under the tracer's signer fails the signature.
    vetted_identity = x25519.Identity.from_str(world["key"].read_text().strip())
    envelope = json.loads(decrypt(world["file"].read_bytes(), [vetted_identity]))
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["person"]["phone"] = "+447700900999"
    envelope["payload"] = base64.b64encode(json.dumps(payload, sort_keys=True).encode()).decode()
    forged = world["tmp"] / "forged.age"
    forged.write_bytes(encrypt(json.dumps(envelope).encode(), [vetted_identity.to_public()]))
    refused = _receive(world, forged, extra=("--signer", world["signer"]))
    assert refused.exit_code == ExitCode.BUNDLE_INVALID, refused.stderr
    assert "signature does not verify" in refused.stderr
    # a good file and a bad one together: nothing is received at all
    refused = _receive(world, world["file"], forged, extra=("--signer", world["signer"]))
    assert refused.exit_code == ExitCode.BUNDLE_INVALID
    assert _snapshot(world["vetted_path"]) == before
    assert not [p for p in world["vetted_path"].parent.iterdir() if p.name != world["vetted_path"].name]


def test_referral_for_another_identity_refused(world):
    before = _snapshot(world["vetted_path"])
    refused = world["vetted"](
        "referrals",
        "receive",
        str(world["file"]),
        "--identity",
        str(world["central_key"]),
        "--signer",
        world["signer"],
    )
    assert refused.exit_code == ExitCode.BUNDLE_INVALID, refused.stderr
    assert "cannot be decrypted with the given identity" in refused.stderr
    assert _snapshot(world["vetted_path"]) == before


def _resigned(world, change, name="crafted.age") -> Path:
    """The referral with its payload changed by ``change`` and signed again with the
    tracer's own key: what a tracer's damaged or hand-made tracekit could send."""
    from tracekit.crypto import signing
    from tracekit.store import open_store

    vetted_identity = x25519.Identity.from_str(world["key"].read_text().strip())
    envelope = json.loads(decrypt(world["file"].read_bytes(), [vetted_identity]))
    payload = json.loads(base64.b64decode(envelope["payload"]))
    change(payload)
    payload_bytes = json.dumps(payload, sort_keys=True).encode()
    with open_store(world["tracer"].store_path, bytearray(PASSPHRASE.encode())) as tracer:
        signature = signing.sign(tracer.conn, payload_bytes)
    envelope.update(payload=base64.b64encode(payload_bytes).decode(), signature=base64.b64encode(signature).decode())
    crafted = world["tmp"] / name
    crafted.write_bytes(encrypt(json.dumps(envelope).encode(), [vetted_identity.to_public()]))
    return crafted


def test_signed_but_invalid_values_refused(world):
    """Signed by the pinned tracer and still checked: a value no entry would accept is refused, by field."""

    def bad_phone(payload):
        payload["cases"][0]["contacts"][0]["contact"]["phone"] = "call the desk"

    crafted = _resigned(world, bad_phone)
    before = _snapshot(world["vetted_path"])
    refused = _receive(world, crafted, extra=("--signer", world["signer"]))
    assert refused.exit_code == ExitCode.BUNDLE_INVALID, refused.stderr
    assert "case 1 contact 1.contact: phone" in refused.stderr and "call the desk" not in refused.stderr
    # the same reference with different content, once the first is in: a conflict, nothing changes
    assert _receive(world, extra=("--signer", world["signer"])).exit_code == 0
    before = _snapshot(world["vetted_path"])
    changed = _resigned(world, lambda payload: payload["cases"][0].update(notes="changed"), "changed.age")
    conflict = _receive(world, changed, extra=("--signer", world["signer"]))
    assert conflict.exit_code == ExitCode.CONFLICT and "different content" in conflict.stderr
    assert _snapshot(world["vetted_path"]) == before


def test_mark_reason_is_kept_without_anyones_details(world):
    crafted = _resigned(world, lambda payload: payload.update(mark_reason="ring Eli on 07700 900191 first"))
    assert _receive(world, crafted, extra=("--signer", world["signer"])).exit_code == 0
    from tracekit.store import open_store

    with open_store(world["vetted_path"], bytearray(PASSPHRASE.encode())) as store:
        [(reason,)] = store.conn.execute("SELECT reason FROM person_roles").fetchall()
    assert "07700 900191" not in reason and "[withheld]" in reason


def test_merging_a_received_person_keeps_them_from_central(world):
    item = json.loads(_receive(world, extra=("--signer", world["signer"], "--json")).stdout)["items"][0]
    vetted = world["vetted"]
    eli = next(c["ref"] for c in item["contacts"] if c["tracer_ref"] == world["tracer_contacts"][0])
    eli_person = json.loads(vetted("contact", "show", eli, "--json").stdout)["contact"]["ref"]
    olwen = json.loads(vetted("case", "list", "--json").stdout)["items"]
    olwen_person = next(c["person"]["ref"] for c in olwen if c["person"].get("name") == "Olwen Ordinary")
    merged = vetted("person", "merge", olwen_person, eli_person, "--yes")
    assert merged.exit_code == 0, merged.stderr
    exported = vetted("export", "handover", "--to", "PHE North", "--all", "--out", str(world["tmp"] / "c"), "--json")
    assert exported.exit_code == 0, exported.stderr
    counts = json.loads(exported.stdout)["record_counts"]
    assert counts["cases"] == 0 and counts["contacts"] == 0


def test_a_referral_in_a_bundle_signed_by_another_tracer_is_refused(world):
    """A vetted-team bundle vouches only for its own tracer's referrals."""
    from tracekit.store import create_store, open_store

    vetted_identity = x25519.Identity.from_str(world["key"].read_text().strip())
    with create_store(world["tmp"] / "other.store", bytearray(PASSPHRASE.encode()), kdf=CHEAP_KDF) as other:
        book = Casebook(other, today=date(2020, 10, 15))
        roles = SensitiveRoles(book)
        roles.add_recipient("Vetted Team", str(vetted_identity.to_public()), "vetted-team")
        case = book.add_case(
            person=PersonInput(name="Gil Hidden", phone="07700 900193"), test_date="2020-10-12", asymptomatic=True
        )
        roles.mark(case.person.ref, "victim", "lives in a refuge")
        foreign = roles.refer(case.person.ref, "per protocol")
        envelope = roles.referral_envelope(foreign.ref)
    with open_store(world["tracer"].store_path, bytearray(PASSPHRASE.encode())) as tracer, tracer.transaction() as conn:
        conn.execute(
            "INSERT INTO referrals(ref, role, created_at, recipients, envelope) VALUES(?, 'victim', ?, '[]', ?)",
            (foreign.ref, "2020-10-15T10:00:00+00:00", envelope),
        )
    bundle = json.loads(
        world["tracer"]("export", "handover", "--to", "Vetted Team", "--out", str(world["tmp"] / "b"), "--json").stdout
    )
    before = _snapshot(world["vetted_path"])
    refused = _receive(world, bundle["path"], extra=("--signer", world["signer"]))
    assert refused.exit_code == ExitCode.BUNDLE_INVALID, refused.stderr
    assert f"referrals/{foreign.ref}.age" in refused.stderr and "different tracer key" in refused.stderr
    assert _snapshot(world["vetted_path"]) == before


def test_exposures_as_a_contact_are_kept_and_the_unreached_ones_said(world):
    exposures = [
        {
            "ref": "E-0000A1",
            "case": "C-0000A1",
            "last_exposure": "2020-10-09",
            "close_contact": True,
            "trace_status": "not-yet-reached",
        },
        {
            "ref": "E-0000A2",
            "case": "C-0000A2",
            "last_exposure": "2020-10-08",
            "close_contact": False,
            "trace_status": "not-yet-reached",
        },
    ]
    crafted = _resigned(world, lambda payload: payload.update(exposures_as_contact=exposures))
    received = _receive(world, crafted, extra=("--signer", world["signer"]))
    assert received.exit_code == 0, received.stderr
    assert "2 exposure(s) in which they were a contact" in received.stdout and "in 1 of them" in received.stdout
    from tracekit.store import open_store

    with open_store(world["vetted_path"], bytearray(PASSPHRASE.encode())) as store:
        [(kept,)] = store.conn.execute("SELECT exposures_as_contact FROM received_referrals").fetchall()
    assert json.loads(kept) == exposures
