"""Handover bundles end to end: export, verify, open, tampering, since-last, atomicity."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from datetime import date
from pathlib import Path

import pytest
from pyrage import decrypt, encrypt, x25519

from tracekit.bundle import writer as bundle_writer
from tracekit.bundle.reader import load_identities, open_bundle, read_bundle
from tracekit.bundle.writer import export_handover
from tracekit.crypto import signing
from tracekit.domain.rules import SETTINGS
from tracekit.errors import BundleInvalid, LeakBlocked, NotFound, PolicyError, StoreExists, WriteFailed
from tracekit.records import Casebook, PersonInput
from tracekit.records.sensitive import SensitiveRoles

OFFICER = PersonInput(name="Quintessa Zarkovian", phone="07700 900321", nhs_number="9990000018", postcode="SW1A 2AB")


@pytest.fixture
def keys(tmp_path):
    central, vetted = x25519.Identity.generate(), x25519.Identity.generate()
    paths = {}
    for name, identity in (("central", central), ("vetted", vetted)):
        path = tmp_path / f"{name}.key"
        path.write_text(f"# {name}\n{identity}\n")
        os.chmod(path, 0o600)
        paths[name] = path
    return {"central": central, "vetted": vetted, "paths": paths}


@pytest.fixture
def world(store, keys, tmp_path):
    book = Casebook(store, today=date(2020, 11, 1))
    roles = SensitiveRoles(book)
    officer = book.add_case(person=OFFICER, test_date="2020-10-20", asymptomatic=True)
    book.add_contact(
        officer.ref, person=PersonInput(name="Bartholomew Yelverton"), last_exposure="2020-10-19", setting="workplace"
    )
    ordinary = book.add_case(
        person=PersonInput(name="Olwen Ordinary", phone="07700 900323", postcode="EC1A 1BB"),
        test_date="2020-10-21",
        asymptomatic=True,
        notes='=HYPERLINK("http://x")',
    )
    book.add_contact(
        ordinary.ref,
        person=PersonInput(name="Ned Normal", phone="07700 900324"),
        last_exposure="2020-10-20",
        setting="household",
    )
    book.add_contact(
        ordinary.ref,
        person_ref=officer.person.ref,
        last_exposure="2020-10-20",
        setting="social",
        notes="met at the gym",
    )
    roles.mark(officer.person.ref, "undercover-officer", "operational safety")
    roles.add_recipient("PHE", str(keys["central"].to_public()), "central-team")
    roles.add_recipient("Vetted", str(keys["vetted"].to_public()), "vetted-team")
    out = tmp_path / "out"
    out.mkdir()
    return {"store": store, "book": book, "roles": roles, "officer": officer, "ordinary": ordinary, "out": out}


def members(path: Path, identity) -> dict[str, bytes]:
    plain = decrypt(path.read_bytes(), [identity])
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_central_handover_carries_ordinary_records_and_stubs_only(world, keys):
    result = export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True)
    assert result.path.stat().st_mode & 0o777 == 0o600
    content = members(result.path, keys["central"])
    everything = b"".join(content.values())
    for secret in (b"Zarkovian", b"Quintessa", b"900321", b"9990000018", b"SW1A 2AB", b"Yelverton", b"gym"):
        assert secret not in everything
    cases = [json.loads(line) for line in content["records/cases-00001.jsonl"].splitlines()]
    stub = next(c for c in cases if c["withheld"])
    assert stub["withheld"] == "sensitive-role" and stub["name"] == {"withheld": "sensitive-role", "referral": None}
    assert stub["test_date"] == "2020-10-20"
    assert stub["ref"].startswith("W-") and world["officer"].ref.encode() not in everything  # a stub id, not C-...
    olwen = next(c for c in cases if c["ref"] == world["ordinary"].ref)
    assert olwen["name"] == "Olwen Ordinary" and "notes" not in olwen
    report = json.loads(content["redaction-report.json"])
    assert report["withheld"]["sensitive-role"]["refs"]["case"] == [stub["ref"]]
    assert report["withheld"]["sensitive-by-association"]["count"] == 1
    manifest = json.loads(content["manifest.json"])
    assert manifest["record_counts"]["cases"] == 2 and manifest["record_counts"]["contacts"] == 3
    assert manifest["policy"]["name"] == "central-handover"
    assert signing.verify(
        manifest["tracer_key"]["public_key"], content["manifest.json"], bytes.fromhex(content["manifest.sig"].decode())
    )
    assert manifest["audit_head"].split(":")[0].isdigit()


def test_csv_neutralises_formulas(world, keys):
    policy = world["out"].parent / "with-notes.toml"
    policy.write_text('name = "with-notes"\n[fields]\ncase = ["ref", "phone", "notes"]\n')
    result = export_handover(world["store"], "PHE", policy_name=str(policy), out_dir=world["out"], all_records=True)
    csv_text = members(result.path, keys["central"])["records/cases-00001.csv"].decode()
    assert "'=HYPERLINK" in csv_text and ",+447700900323," in csv_text  # a formula is defused; a phone is a number
    assert "\n=" not in csv_text and ",=" not in csv_text


def test_vetted_bundle_has_full_sensitive_records_and_referrals(world, keys):
    world["roles"].refer(world["officer"].person.ref)
    result = export_handover(world["store"], "Vetted", out_dir=world["out"], all_records=True)
    content = members(result.path, keys["vetted"])
    referral_files = [n for n in content if n.startswith("referrals/")]
    assert len(referral_files) == 1
    from tracekit.records.sensitive import open_envelope

    payload = open_envelope(content[referral_files[0]], [keys["vetted"]])
    assert payload["person"]["name"] == "Quintessa Zarkovian"
    assert b"Olwen" not in b"".join(v for k, v in content.items() if k.startswith("records/"))


def test_referrals_never_go_to_a_central_team(world, keys):
    world["roles"].refer(world["officer"].person.ref)
    result = export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True)
    assert not [n for n in members(result.path, keys["central"]) if n.startswith("referrals/")]


def test_policy_must_suit_the_recipient(world):
    with pytest.raises(PolicyError, match="may not be sent to PHE"):
        export_handover(world["store"], "PHE", policy_name="vetted-team", out_dir=world["out"])
    with pytest.raises(NotFound, match="no recipient"):
        export_handover(world["store"], "Nobody", out_dir=world["out"])
    assert list(world["out"].iterdir()) == []


def test_leak_guard_stops_a_smuggled_value_and_leaves_no_file(world):
    def smuggling_redact(record_type, record, policy, pseudonymise=None, stub_ids=None):
        out = bundle_writer.redaction.redact(record_type, record, policy, pseudonymise, stub_ids)
        if out is not None and record.get("self_role"):
            out["name"] = record["name"]  # a buggy or malicious redaction
        return out

    with pytest.raises(LeakBlocked, match=world["officer"].person.ref):
        export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True, redact=smuggling_redact)
    assert list(world["out"].iterdir()) == []


def test_leak_guard_catches_a_note_naming_a_marked_person(world, monkeypatch):
    policy = world["out"].parent / "notes.toml"
    policy.write_text('name = "notes"\n[fields]\ncontact = ["ref", "notes"]\n')
    monkeypatch.setattr("tracekit.records.casebook.Casebook._scrub", lambda self, text: text)  # scrubbing off
    world["book"].add_contact(
        world["ordinary"].ref,
        person=PersonInput(name="Tess Teller"),
        last_exposure="2020-10-20",
        setting="social",
        notes="says she saw Quintessa Zarkovian there",
    )
    with pytest.raises(LeakBlocked):
        export_handover(world["store"], "PHE", policy_name=str(policy), out_dir=world["out"], all_records=True)
    assert list(world["out"].iterdir()) == []


def test_notes_are_scrubbed_before_the_guard(world, keys):
    policy = world["out"].parent / "notes.toml"
    policy.write_text('name = "notes"\n[fields]\ncontact = ["ref", "notes"]\n')
    world["book"].add_contact(
        world["ordinary"].ref,
        person=PersonInput(name="Tess Teller"),
        last_exposure="2020-10-20",
        setting="social",
        notes="says she saw Quintessa Zarkovian there",
    )
    result = export_handover(world["store"], "PHE", policy_name=str(policy), out_dir=world["out"], all_records=True)
    text = members(result.path, keys["central"])["records/contacts-00001.jsonl"].decode()
    assert "says she saw [withheld] there" in text  # the full name, one marker


def test_notes_are_not_scrubbed_when_the_policy_drops_them(world, keys, monkeypatch):
    """central-handover carries no notes: the (costly) scrubber is not run, and the note,
    which names a marked person, goes nowhere."""
    world["book"].add_contact(
        world["ordinary"].ref,
        person=PersonInput(name="Tess Teller"),
        last_exposure="2020-10-20",
        setting="social",
        notes="says she saw Quintessa Zarkovian there",
    )

    def no_scrub(self, text):
        raise AssertionError("notes scrubbed for a policy without notes")

    monkeypatch.setattr("tracekit.records.casebook.Casebook._scrub", no_scrub)
    result = export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True)
    content = b"".join(members(result.path, keys["central"]).values())
    assert b"says she saw" not in content and b"Zarkovian" not in content


def test_a_household_postcode_with_someone_else_s_birthday_does_not_stop_an_export(world, keys):
    """Postcode and date of birth count together only within one record (line): a
    20,000-record chunk holds the marked person's postcode (their household) and their
    birthday (someone else's) far apart without carrying their details."""
    witness = world["book"].add_case(
        person=PersonInput(name="Wilhelmina Witherspoon", postcode="N1 9GU", date_of_birth=date(1981, 3, 14)),
        test_date="2020-10-22",
        asymptomatic=True,
    )
    world["roles"].mark(witness.person.ref, "protected-witness", "safety")
    world["book"].add_contact(
        world["ordinary"].ref,
        person=PersonInput(name="Hal Housemate", postcode="N1 9GU"),
        last_exposure="2020-10-20",
        setting="household",
    )
    world["book"].add_contact(
        world["ordinary"].ref,
        person=PersonInput(name="Bea Birthday", date_of_birth=date(1981, 3, 14)),
        last_exposure="2020-10-21",
        setting="social",
    )
    result = export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True)
    text = members(result.path, keys["central"])["records/contacts-00001.jsonl"].decode()
    assert "N1 9GU" in text and "1981-03-14" in text
    assert "Witherspoon" not in text
    # On one line they would stop it.
    guard = bundle_writer.LeakGuard(bundle_writer._marked_people(world["store"]))
    assert guard.find('{"postcode":"N1 9GU","date_of_birth":"1981-03-14"}\n') is not None


def test_interrupted_export_leaves_no_file(world, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("disk unplugged")

    monkeypatch.setattr("tracekit.crypto.signing.sign", crash)  # fails after most of the tar is written
    with pytest.raises(RuntimeError):
        export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True)
    assert list(world["out"].iterdir()) == []
    assert world["store"].query("SELECT count(*) FROM handovers")[0][0] == 0


def test_export_creates_a_private_output_directory(world, tmp_path):
    result = export_handover(world["store"], "PHE", out_dir=tmp_path / "new" / "outbox")
    assert result.path.parent == tmp_path / "new" / "outbox"
    assert (tmp_path / "new" / "outbox").stat().st_mode & 0o777 == 0o700


def test_export_to_a_file_path_is_refused(world, tmp_path):
    target = tmp_path / "a-file"
    target.write_text("x")
    with pytest.raises(WriteFailed, match="not a directory"):
        export_handover(world["store"], "PHE", out_dir=target)


def test_since_last_exports_only_changes(world, keys):
    first = export_handover(world["store"], "PHE", out_dir=world["out"])
    assert first.changes_since is None and first.record_counts["cases"] == 2
    world["store"].conn.execute("UPDATE cases SET updated_at = '2000-01-01T00:00:00+00:00'")
    world["store"].conn.execute("UPDATE exposures SET updated_at = '2000-01-01T00:00:00+00:00'")
    world["store"].conn.execute("UPDATE people SET updated_at = '2000-01-01T00:00:00+00:00'")
    world["book"].add_contact(
        world["ordinary"].ref, person=PersonInput(name="New Contact"), last_exposure="2020-10-21", setting="other"
    )
    second = export_handover(world["store"], "PHE", out_dir=world["out"], since_last=True)
    assert second.changes_since == first.changes_until
    assert second.record_counts["contacts"] == 1 and second.record_counts["cases"] == 0
    stats = export_handover(world["store"], "PHE", policy_name="statistics", out_dir=world["out"])
    assert stats.changes_since is None  # its own watermark, per policy


def test_statistics_bundle_has_counts_only(world, keys):
    result = export_handover(world["store"], "PHE", policy_name="statistics", out_dir=world["out"], all_records=True)
    content = members(result.path, keys["central"])
    assert not [n for n in content if n.startswith("records/")]
    stats = json.loads(content["statistics.json"])
    assert [r["value"] for r in stats["cases_by_test_date"]["rows"]] == [
        "2020-10-20",
        "2020-10-21",
    ]  # the stub's date too
    assert stats["cases_by_test_date"]["total"] == {"count": "0-10", "low": 0, "high": 10}
    assert [r["value"] for r in stats["contacts_by_setting"]["rows"]] == list(SETTINGS)  # every setting, "other" last
    assert all(r["count"] == "0-5" for r in stats["contacts_by_setting"]["rows"])
    assert b"Olwen" not in b"".join(content.values())
    csv_lines = content["statistics.csv"].decode("utf-8-sig").splitlines()
    assert content["statistics.csv"].startswith(b"\xef\xbb\xbf")  # a BOM, as every CSV member
    assert csv_lines[0] == "table,value,count" and "contacts_by_setting,travel,0-5" in csv_lines


# -- the receiving side ----------------------------------------------------------------


@pytest.fixture
def bundle(world, keys):
    result = export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True)
    signer = signing.public_key_hex(world["store"].conn)
    return result.path, signer


def test_verify_and_open(bundle, keys, tmp_path):
    path, signer = bundle
    identities = load_identities(keys["paths"]["central"])
    verified = read_bundle(path, identities, signer=signer)
    assert verified.manifest["record_counts"]["contacts"] == 3 and verified.signer_checked
    result, folder = open_bundle(path, identities, tmp_path / "opened", signer=signer)
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json",
        "manifest.sig",
        "records",
        "redaction-report.json",
    ]
    assert signing.verify(
        signer, (folder / "manifest.json").read_bytes(), bytes.fromhex((folder / "manifest.sig").read_text())
    )
    with pytest.raises(StoreExists):
        open_bundle(path, identities, tmp_path / "opened", signer=signer)


def test_identity_file_must_be_private(bundle, keys):
    os.chmod(keys["paths"]["central"], 0o644)
    with pytest.raises(Exception, match="chmod 600"):
        load_identities(keys["paths"]["central"])


def test_age_tool_decrypts_a_bundle(bundle, keys, tmp_path):
    if shutil.which("age") is None:
        pytest.skip("the age command-line tool is not installed (CI installs it: .ci/run)")
    path, _ = bundle
    result = subprocess.run(
        ["age", "--decrypt", "-i", str(keys["paths"]["central"]), str(path)], capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(result.stdout)) as tar:
        assert "manifest.json" in tar.getnames()


def _expect_invalid(path, keys, message, **kwargs):
    with pytest.raises(BundleInvalid, match=message):
        read_bundle(path, load_identities(keys["paths"]["central"]), **kwargs)


def test_flipped_byte_is_detected(bundle, keys, tmp_path):
    path, _ = bundle
    data = bytearray(path.read_bytes())
    for offset in (len(data) // 2, len(data) - 20, 300):
        damaged = bytearray(data)
        damaged[offset] ^= 0x01
        target = tmp_path / f"flip-{offset}.age"
        target.write_bytes(bytes(damaged))
        with pytest.raises(BundleInvalid):
            read_bundle(target, load_identities(keys["paths"]["central"]))


def test_truncation_and_appending_are_detected(bundle, keys, tmp_path):
    path, _ = bundle
    data = path.read_bytes()
    short = tmp_path / "short.age"
    short.write_bytes(data[: len(data) - 100])
    _expect_invalid(short, keys, "altered, truncated or extended|damaged")
    longer = tmp_path / "long.age"
    longer.write_bytes(data + b"extra bytes")
    _expect_invalid(longer, keys, "altered, truncated or extended|damaged")


def test_wrong_identity_is_refused(bundle, keys):
    path, _ = bundle
    with pytest.raises(BundleInvalid, match="not encrypted to the given identity"):
        read_bundle(path, load_identities(keys["paths"]["vetted"]))


def _rebuild(path: Path, keys, tmp_path, edit) -> Path:
    """Decrypt, change the tar with ``edit(members) -> members``, re-encrypt to the same recipient."""
    content = members(path, keys["central"])
    content = edit(dict(content))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in content.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    target = tmp_path / "rebuilt.age"
    target.write_bytes(encrypt(buffer.getvalue(), [keys["central"].to_public()]))
    return target


def test_altered_record_is_detected_by_hash(bundle, keys, tmp_path):
    path, _ = bundle

    def edit(m):
        m["records/cases-00001.jsonl"] = m["records/cases-00001.jsonl"].replace(b"Olwen", b"Owain")
        return m

    _expect_invalid(_rebuild(path, keys, tmp_path, edit), keys, "does not match its hash")


def test_swapped_signature_is_detected(bundle, keys, tmp_path):
    path, _ = bundle
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    def edit(m):
        m["manifest.sig"] = (Ed25519PrivateKey.generate().sign(m["manifest.json"]).hex() + "\n").encode()
        return m

    _expect_invalid(_rebuild(path, keys, tmp_path, edit), keys, "signature does not verify")


def test_resigned_by_another_key_fails_the_signer_check(bundle, keys, tmp_path):
    path, signer = bundle
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forger = Ed25519PrivateKey.generate()
    forger_public = forger.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()

    def edit(m):
        manifest = json.loads(m["manifest.json"])
        manifest["tracer_key"]["public_key"] = forger_public
        manifest["tracer_key"]["fingerprint"] = signing.fingerprint(forger_public)
        m["manifest.json"] = json.dumps(manifest).encode()
        m["manifest.sig"] = (forger.sign(m["manifest.json"]).hex() + "\n").encode()
        return m

    forged = _rebuild(path, keys, tmp_path, edit)
    read_bundle(forged, load_identities(keys["paths"]["central"]))  # self-consistent...
    _expect_invalid(forged, keys, "signed by a different key", signer=signer)  # ...but not the tracer's


def test_added_and_removed_files_are_detected(bundle, keys, tmp_path):
    path, _ = bundle

    def add(m):
        m = {k: v for k, v in m.items() if not k.startswith("manifest")} | {"records/cases-00099.jsonl": b"{}\n"}
        return m | {k: v for k, v in members(path, keys["central"]).items() if k.startswith("manifest")}

    _expect_invalid(_rebuild(path, keys, tmp_path, add), keys, "not in the manifest")

    def remove(m):
        del m["redaction-report.json"]
        return m

    _expect_invalid(_rebuild(path, keys, tmp_path, remove), keys, "missing from the bundle")


def test_not_a_bundle(tmp_path, keys):
    junk = tmp_path / "junk.age"
    junk.write_bytes(b"not age at all")
    _expect_invalid(junk, keys, "junk.age is not an age-encrypted file")
