"""Association by shared identifier and referral that leaves nothing behind (issue 13,
items 2, 3, 4, 8, 12): a household member's shared phone or address is withheld field by
field, a referred person's traces are scrubbed, and re-importing them is refused."""

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
from pyrage import decrypt, x25519

from tests.importers.helpers import CASE_HEADER, case_row, run, write_csv
from tests.plaintext import logical_dump
from tracekit.bundle.writer import export_handover
from tracekit.importers.engine import ImportInvalid
from tracekit.records import Casebook, PersonInput
from tracekit.records.association import ProtectedKeys
from tracekit.records.identity import identifier_keys
from tracekit.records.sensitive import SensitiveRoles

TODAY = date(2020, 11, 1)
OFFICER = {
    "name": "Quintessa Zarkovian",
    "date_of_birth": "1981-03-14",
    "nhs_number": "9990000018",
    "phone": "+447700900321",
    "email": "q.zarkovian@example.org",
    "address": "4 Hawthorn Mews",
    "postcode": "SW1A 2AB",
}
#: The officer's spouse: same landline and address, own name.
SPOUSE = {
    "name": "Ignatius Ploughwright",
    "phone": "07700 900321",
    "address": "4, Hawthorn  Mews.",
    "postcode": "sw1a 2ab",
}
OFFICER_VALUES = [b"Quintessa", b"Zarkovian", b"7700900321", b"7700 900321", b"Hawthorn", b"zarkovian@example"]


@pytest.fixture
def keys():
    return {"central": x25519.Identity.generate(), "vetted": x25519.Identity.generate()}


@pytest.fixture
def world(store, keys, tmp_path):
    book = Casebook(store, today=TODAY)
    roles = SensitiveRoles(book)
    roles.add_recipient("PHE", str(keys["central"].to_public()), "central-team")
    roles.add_recipient("Vetted", str(keys["vetted"].to_public()), "vetted-team")
    officer = book.add_case(person=PersonInput(**OFFICER), test_date="2020-10-20", asymptomatic=True)
    ordinary = book.add_case(
        person=PersonInput(name="Olwen Ordinary", phone="07700 900323"),
        test_date="2020-10-21",
        asymptomatic=True,
        notes="Colleague of Quintessa Zarkovian",
    )
    spouse, _ = book.add_contact(
        ordinary.ref,
        person=PersonInput(**SPOUSE),
        last_exposure="2020-10-20",
        setting="workplace",
        notes="works with Olwen",
        new_person=True,
    )
    out = tmp_path / "out"
    out.mkdir()
    return {
        "store": store,
        "book": book,
        "roles": roles,
        "officer": officer,
        "ordinary": ordinary,
        "spouse": spouse,
        "out": out,
    }


def _content(path: Path, identity) -> bytes:
    return decrypt(path.read_bytes(), [identity])


def _records(path: Path, identity, kind: str) -> list[dict]:
    with tarfile.open(fileobj=io.BytesIO(_content(path, identity))) as tar:
        return [
            json.loads(line)
            for m in tar.getmembers()
            if m.name.startswith(f"records/{kind}s-") and m.name.endswith(".jsonl")
            for line in tar.extractfile(m).read().splitlines()
        ]


def test_identifier_keys_are_normalised_per_kind() -> None:
    officer, spouse = identifier_keys(OFFICER), identifier_keys(SPOUSE)
    assert ("phone", "+447700900321") in officer & spouse
    assert ("address", "SW1A2AB|4 hawthorn mews") in officer & spouse
    assert ("name_dob", "quintessa zarkovian|1981-03-14") in officer
    assert {k for k, _ in officer} == {"phone", "nhs", "email", "address", "name", "name_dob"}


def test_shared_phone_is_withheld_field_by_field_and_the_guard_passes(world, keys) -> None:
    """Item 12: a contact sharing a marked person's phone stopped the central handover."""
    world["roles"].mark(world["officer"].person.ref, "undercover-officer", "operational safety")
    result = export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True)
    content = _content(result.path, keys["central"])
    assert not [v for v in OFFICER_VALUES if v in content]
    [spouse] = [r for r in _records(result.path, keys["central"], "contact") if r["ref"] == world["spouse"].ref]
    assert spouse["phone"] == {"withheld": "sensitive-by-association", "referral": None}
    assert spouse["address"] == spouse["postcode"] == {"withheld": "sensitive-by-association", "referral": None}
    assert spouse["name"] == SPOUSE["name"] and spouse["withheld"] is False


def test_released_household_member_does_not_carry_the_marked_address(world, keys) -> None:
    """Item 8: a household contact released with a reason carried the marked person's address."""
    book, roles = world["book"], world["roles"]
    household, _ = book.add_contact(
        world["officer"].ref,
        person=PersonInput(name="Hester Lodger", address="4 Hawthorn Mews", postcode="SW1A 2AB"),
        last_exposure="2020-10-19",
        setting="household",
    )
    roles.mark(world["officer"].person.ref, "undercover-officer", "operational safety")
    roles.release_contact(household.ref, "plainly unrelated to the role")
    result = export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True)
    assert b"Hawthorn" not in _content(result.path, keys["central"])
    [record] = [r for r in _records(result.path, keys["central"], "contact") if r["ref"] == household.ref]
    assert record["address"] == {"withheld": "sensitive-by-association", "referral": None}
    assert record["name"] == "Hester Lodger"


def test_promoted_associate_case_and_their_other_contacts_are_withheld(world, keys) -> None:
    """A withheld contact of a marked case, promoted to a case, went out in full, its
    source contact linking it to the marked case; so did their contact on an ordinary case."""
    book, roles = world["book"], world["roles"]
    associate, _ = book.add_contact(
        world["officer"].ref,
        person=PersonInput(name="Bartholomew Yelverton"),
        last_exposure="2020-10-19",
        setting="workplace",
    )
    elsewhere, _ = book.add_contact(
        world["ordinary"].ref, person_ref=associate.contact.ref, last_exposure="2020-10-20", setting="social"
    )
    promoted = book.promote_contact(associate.contact.ref, test_date="2020-10-25", asymptomatic=True)
    roles.mark(world["officer"].person.ref, "undercover-officer", "operational safety")
    result = export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True)
    assert b"Yelverton" not in _content(result.path, keys["central"])
    # Withheld records are stubs under a fresh id (W-...), never their own reference.
    cases = _records(result.path, keys["central"], "case")
    contacts = _records(result.path, keys["central"], "contact")
    assert promoted.ref not in {r["ref"] for r in cases}
    assert elsewhere.ref not in {r["ref"] for r in contacts}
    marker = {"withheld": "sensitive-by-association", "referral": None}
    assert [
        r
        for r in cases
        if r["withheld"] == "sensitive-by-association" and r["name"] == marker and r["test_date"] == "2020-10-25"
    ]
    assert [r for r in contacts if r["withheld"] == "sensitive-by-association" and r["last_exposure"] == "2020-10-20"]


def test_after_referral_a_shared_phone_does_not_go_out(world, keys) -> None:
    """Item 2: after referral the guard no longer knew the person; the spouse's record
    carried their phone to the central team."""
    roles = world["roles"]
    roles.mark(world["officer"].person.ref, "undercover-officer", "operational safety")
    roles.refer(world["officer"].person.ref)
    book = world["book"]
    book.add_contact(
        world["ordinary"].ref,
        person=PersonInput(name="Later Lodger", phone="+44 7700 900321"),
        last_exposure="2020-10-20",
        setting="household",
        new_person=True,
    )
    result = export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True)
    content = _content(result.path, keys["central"])
    assert not [v for v in OFFICER_VALUES if v in content]


def test_referral_leaves_nothing_behind(world) -> None:
    """Item 3: notes naming the person, a relative's copy of their phone and address, and
    external ids stayed in the store after referral."""
    store, book, roles = world["store"], world["book"], world["roles"]
    officer_ref = world["officer"].person.ref
    store.conn.execute(
        "INSERT INTO external_ids(kind, external_id, record_id) SELECT 'person', 'SRC-77', id FROM people WHERE ref = ?",
        (officer_ref,),
    )
    roles.mark(officer_ref, "undercover-officer", "operational safety")
    roles.refer(officer_ref)
    dump = logical_dump(store)
    for value in ("Quintessa", "Zarkovian Q", "7700900321", "Hawthorn", "zarkovian@example", "SW1A 2AB", "SRC-77"):
        assert value not in dump, value
    assert book.get_case(world["ordinary"].ref).notes == "Colleague of [withheld]"  # the full name, one marker
    spouse = book.get_person(world["spouse"].contact.ref)
    assert spouse.name == SPOUSE["name"] and spouse.phone is None and spouse.address is None
    tombstones = store.conn.execute("SELECT count(*) FROM referral_tombstones").fetchone()[0]
    assert tombstones == len(identifier_keys(OFFICER))


def test_referred_person_keys_are_recognised_without_their_plaintext(world) -> None:
    world["roles"].mark(world["officer"].person.ref, "undercover-officer", "operational safety")
    world["roles"].refer(world["officer"].person.ref)
    protected = ProtectedKeys(world["store"].conn, marked=[])  # only the tombstones are left
    assert protected.withheld_fields({"name": "Someone Else", "phone": "+447700900321"}) == (
        False,
        frozenset({"phone"}),
    )
    assert protected.withheld_fields({"name": OFFICER["name"], "date_of_birth": "1981-03-14"})[0] is True


@pytest.mark.parametrize("role", ["", "undercover-officer"])
def test_reimport_of_a_referred_person_is_refused(world, tmp_path, role) -> None:
    """Item 4: re-importing referred people (new external ids) brought them back in clear,
    or (role kept) as new marked people with their details in the store again."""
    store, roles = world["store"], world["roles"]
    roles.mark(world["officer"].person.ref, "undercover-officer", "operational safety")
    roles.refer(world["officer"].person.ref)
    path = write_csv(
        tmp_path / "again.csv",
        CASE_HEADER,
        [
            case_row("NEW-1", "Quintessa ZARKOVIAN", Date_of_birth="14/03/1981", Mobile="07700 900329", Role=role),
            case_row("NEW-2", "Ursula Unrelated", Mobile="07700 900321"),
        ],
    )
    with pytest.raises(ImportInvalid) as raised:
        run(store, "cases", path)
    message = str(raised.value)
    assert "line 2" in message and "referred to the vetted team" in message and "send it to the vetted team" in message
    assert "Quintessa" not in message and "1981" not in message
    summary = run(store, "cases", path, skip_invalid=True)
    assert summary.imported == 1 and summary.invalid == 1
    assert "Quintessa" not in logical_dump(store) and "7700900321" not in logical_dump(store)
    unrelated = store.conn.execute("SELECT name, phone FROM people WHERE name = 'Ursula Unrelated'").fetchone()
    assert unrelated == ("Ursula Unrelated", None)  # the referred person's phone is not stored again


# -- the "how we will know", at a smaller scale -----------------------------------------

FIRST = ["John", "Mary", "David", "Sarah", "James", "Emma", "Michael", "Laura"]
LAST = ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans"]
STREETS = ["Oak Road", "High Street", "Mill Lane", "Church Walk", "Station Road"]
HEADER = [
    "Case ID",
    "Full name",
    "Date of birth",
    "Mobile",
    "Address",
    "Postcode",
    "Role",
    "Specimen date",
    "Asymptomatic",
    "Notes",
]
CONTACTS = [
    "Contact ID",
    "Case ID",
    "First name",
    "Surname",
    "DOB",
    "Tel",
    "Address",
    "Postcode",
    "Date of last contact",
    "Setting",
    "Notes",
]


def _spreadsheets(tmp_path: Path, cases: int = 300, every: int = 30) -> tuple[Path, Path, list[dict[str, str]]]:
    """Cases with common names; each case's household contact shares the family phone and
    address; every ``every``-th case is an undercover officer whose spouse is also a
    workplace contact of the next case, and whose colleagues' notes name them."""
    case_rows, contact_rows, officers = [], [], []
    for i in range(cases):
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        phone = f"07700 900{i:03d}" if i < 1000 else f"01632 960{i - 1000:03d}"  # Ofcom's drama ranges
        address, postcode = f"{i:04d} {STREETS[i % len(STREETS)]}", f"EC{1 + i % 4}A {1 + i % 9}BB"
        dob = f"{1 + i % 28:02d}/{1 + i % 12:02d}/{1950 + i % 50}"
        marked = i % every == 0
        name = f"{first} {last}"
        if marked:
            officers.append({"name": name, "phone": phone, "address": address})
        note = f"Colleague of {officers[-1]['name']}" if officers and not marked and i % every == 1 else ""
        case_rows.append(
            [
                f"C{i}",
                name,
                dob,
                phone,
                address,
                postcode,
                "undercover-officer" if marked else "",
                "20/10/2020",
                "yes",
                note,
            ]
        )
        contact_rows.append(
            [
                f"H{i}",
                f"C{i}",
                FIRST[(i + 3) % len(FIRST)],
                last,
                "",
                phone,
                address,
                postcode,
                "19/10/2020",
                "household",
                "",
            ]
        )
        if marked and i + 1 < cases:  # the officer's spouse, met at work by the next case
            contact_rows.append(
                [f"S{i}", f"C{i + 1}", "Partner", f"Of{i}", "", phone, address, postcode, "19/10/2020", "workplace", ""]
            )
    cases_csv = write_csv(tmp_path / "cases.csv", HEADER, case_rows)
    contacts_csv = write_csv(tmp_path / "contacts.csv", CONTACTS, contact_rows)
    return cases_csv, contacts_csv, officers


def _decrypt_with_age(path: Path, identity, tmp_path: Path) -> bytes:
    age = shutil.which("age")
    if age is None:
        return _content(path, identity)
    key = tmp_path / "central.key"
    key.write_text(f"{identity}\n")
    os.chmod(key, 0o600)
    return subprocess.run([age, "--decrypt", "-i", str(key), str(path)], capture_output=True, check=True).stdout


@pytest.mark.parametrize("cases", [300, pytest.param(2000, marks=pytest.mark.slow)])
def test_realistic_import_hands_over_on_the_first_try(world, keys, tmp_path, cases) -> None:
    """Issue 13: a spreadsheet-style import (2,000 cases at full size) with shared family
    phones, relatives at the same address and notes naming marked colleagues: the central
    handover goes out on the first try and holds no protected value; the vetted one does."""
    store = world["store"]
    cases_csv, contacts_csv, officers = _spreadsheets(tmp_path, cases)
    run(store, "cases", cases_csv)
    run(store, "contacts", contacts_csv)
    assert store.conn.execute("SELECT count(*) FROM person_roles").fetchone()[0] == len(officers) + 0
    result = export_handover(store, "PHE", out_dir=world["out"], all_records=True)
    tar_bytes = _decrypt_with_age(result.path, keys["central"], tmp_path)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        content = b"".join(tar.extractfile(m).read() for m in tar.getmembers())
    for officer in officers:
        digits = officer["phone"].replace(" ", "")
        for value in (officer["name"], digits, "+44" + digits[1:], officer["address"]):
            assert value.encode() not in content, value
    assert content.count(b"sensitive-by-association") > len(officers)
    vetted = export_handover(store, "Vetted", out_dir=world["out"], all_records=True)
    vetted_content = _content(vetted.path, keys["vetted"])
    assert all(o["name"].encode() in vetted_content for o in officers)


def test_views_withhold_the_shared_details_but_show_the_rest(world) -> None:
    """The tracer's views: the spouse's shared landline and address are withheld markers,
    their name shown; a revealed officer shows them again."""
    book = world["book"]
    world["roles"].mark(world["officer"].person.ref, "undercover-officer", "operational safety")
    spouse = book.get_contact(world["spouse"].ref).contact
    assert spouse.name == SPOUSE["name"] and spouse.phone is None and spouse.address is None
    assert spouse.to_json()["phone"] == {"withheld": "sensitive-by-association"}
    book.reveal([world["officer"].person.ref], "incident review")
    assert book.get_contact(world["spouse"].ref).contact.phone == "+447700900321"
