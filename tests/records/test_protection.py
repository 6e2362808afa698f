"""Protection is monotone: no command lowers a person's protection as a side effect.

Merging keeps the strongest status of the two records; every view of a person applies
the same masking (own mark, or sensitive by association); revealing a contact reveals
that contact only.
"""

from __future__ import annotations

import json
from datetime import date

import pytest

from tests.plaintext import value_forms
from tracekit import audit
from tracekit.records import Casebook, PersonInput
from tracekit.records.models import WITHHELD_ASSOCIATION, WITHHELD_ASSOCIATION_TEXT
from tracekit.records.sensitive import SensitiveRoles

TODAY = date(2020, 11, 1)
OFFICER = {
    "name": "Quintessa Zarkovian",
    "date_of_birth": "1981-03-14",
    "nhs_number": "9990000018",
    "phone": "+447700900321",
    "postcode": "SW1A 2AB",
}
DUPLICATE = {"name": "Q Zarkovian", "phone": "+447700900331"}
ASSOCIATE = {
    "name": "Bartholomew Yelverton",
    "date_of_birth": "1975-06-02",
    "phone": "+447700900322",
    "postcode": "EC1A 1BB",
}
ORDINARY = {"name": "Olwen Ordinary", "phone": "+447700900323"}


@pytest.fixture
def book(store):
    return Casebook(store, today=TODAY)


@pytest.fixture
def roles(book):
    return SensitiveRoles(book)


@pytest.fixture
def officer(book):
    """A case whose person will be marked, with an associate as contact (noted by name)."""
    case = book.add_case(person=PersonInput(**OFFICER), test_date="2020-10-20", symptom_onset="2020-10-18")
    contact, _ = book.add_contact(
        case.ref,
        person=PersonInput(**ASSOCIATE),
        last_exposure="2020-10-19",
        setting="workplace",
        notes="drives Zarkovian to briefings",
    )
    return case, contact


def _shown(*values: object) -> str:
    return json.dumps([v.to_json() if hasattr(v, "to_json") else v for v in values], default=str)


def _assert_absent(text: str, details: dict[str, str]) -> None:
    for form in value_forms(details):
        assert form.decode() not in text, form


# -- 1. merge keeps the strongest protection ------------------------------------------------
@pytest.mark.parametrize("marked_is_kept", [False, True], ids=["marked-merged-away", "marked-kept"])
def test_merge_keeps_the_mark_in_either_direction(book, roles, officer, marked_is_kept):
    case, contact = officer
    marked_ref = case.person.ref
    duplicate = book.add_case(person=PersonInput(**DUPLICATE), test_date="2020-10-21", asymptomatic=True)
    roles.mark(marked_ref, "undercover-officer", "operational safety")
    keep, other = (marked_ref, duplicate.person.ref) if marked_is_kept else (duplicate.person.ref, marked_ref)

    merged = book.merge_people(keep, other)

    assert merged.masked and merged.role == "undercover-officer"
    assert [(m.person_ref, m.role) for m in roles.list_marks()] == [(keep, "undercover-officer")]
    assert book.get_person(marked_ref).masked and book.get_person(duplicate.person.ref).masked
    for query in ("Zarkovian", "07700 900321", "9990000018", "SW1A 2AB", "07700 900331"):
        assert book.search_people(query) == []
    assert book.get_contact(contact.ref).withheld
    shown = _shown(book.list_cases(), book.list_contacts(), book.get_case(case.ref), book.get_case(duplicate.ref))
    _assert_absent(shown, OFFICER)
    _assert_absent(shown, DUPLICATE)
    if not marked_is_kept:
        carried = audit.entries(book.store.conn, action="role.merge")
        assert [(e.refs, e.reason) for e in carried] == [
            (sorted([keep, other]), f"undercover-officer: carried over from {other}")
        ]


def test_merging_two_marked_people_keeps_both_marks_facts(book, roles, officer):
    case, _ = officer
    duplicate = book.add_case(person=PersonInput(**DUPLICATE), test_date="2020-10-21", asymptomatic=True)
    roles.mark(case.person.ref, "protected-witness", "court order")
    roles.mark(duplicate.person.ref, "victim", "lives in a refuge")

    merged = book.merge_people(case.person.ref, duplicate.person.ref)

    assert merged.masked and merged.role == "protected-witness"
    assert [(m.person_ref, m.role) for m in roles.list_marks()] == [(case.person.ref, "protected-witness")]
    reason = book.store.query("SELECT reason FROM person_roles")[0][0]
    assert reason == f"court order; {duplicate.person.ref} (merged in) was marked victim: lives in a refuge"
    entry = audit.entries(book.store.conn, action="role.merge")[-1]
    assert entry.refs == sorted([case.person.ref, duplicate.person.ref])
    assert entry.reason == f"protected-witness kept; victim recorded from {duplicate.person.ref}"


def test_merging_an_associate_into_a_duplicate_keeps_them_withheld_by_association(book, roles, officer):
    case, contact = officer
    duplicate = book.add_case(person=PersonInput(name="Bart Yelverton"), test_date="2020-10-21", asymptomatic=True)
    roles.mark(case.person.ref, "undercover-officer", "operational safety")
    merged = book.merge_people(duplicate.person.ref, contact.contact.ref)
    assert merged.masked and merged.protection == WITHHELD_ASSOCIATION
    assert book.get_case(duplicate.ref).person.masked and book.search_people("Yelverton") == []
    _assert_absent(_shown(merged, book.list_cases(), book.get_person(contact.contact.ref)), ASSOCIATE)


def test_merge_rebuilds_the_note_scrubber(book, roles, officer):
    """The merged person's details (from either record) are scrubbed from notes at once."""
    case, _ = officer
    duplicate = book.add_case(
        person=PersonInput(name="Quintessa Zarkovian", email="qz@example.org"),
        test_date="2020-10-21",
        asymptomatic=True,
        new_person=True,
        notes="call qz@example.org",
    )
    roles.mark(case.person.ref, "undercover-officer", "operational safety")
    assert "qz@example.org" in (book.get_case(duplicate.ref).notes or "")  # the duplicate is not marked yet
    book.merge_people(case.person.ref, duplicate.person.ref)
    assert "qz@example.org" not in (book.get_case(duplicate.ref).notes or "")


# -- 5. every view of a person applies association ------------------------------------------
def test_an_associate_is_masked_in_every_view_of_the_person(book, roles, officer):
    case, contact = officer
    ordinary = book.add_case(person=PersonInput(**ORDINARY), test_date="2020-10-21", asymptomatic=True)
    other_exposure, _ = book.add_contact(
        ordinary.ref, person_ref=contact.contact.ref, last_exposure="2020-10-20", setting="social"
    )
    roles.mark(case.person.ref, "undercover-officer", "operational safety")

    person = book.get_person(contact.contact.ref)
    assert person.masked and person.display_name == WITHHELD_ASSOCIATION_TEXT
    assert person.to_json()["name"] == {"withheld": WITHHELD_ASSOCIATION}
    assert book.search_people("Yelverton") == [] and book.search_people("07700 900322") == []
    promoted = book.promote_contact(contact.contact.ref, test_date="2020-10-22", asymptomatic=True)
    tree, _ = book.case_tree(case.ref)
    shown = _shown(
        person,
        book.get_contact(other_exposure.ref),
        book.list_contacts(),
        book.list_cases(),
        book.get_case(promoted.ref),
        book.worklist(date(2020, 10, 22)),
    ) + repr(tree)
    _assert_absent(shown, ASSOCIATE)
    assert book.get_case(promoted.ref).person.masked


def test_an_associate_is_shown_once_every_link_is_released_or_the_mark_is_lifted(book, roles, officer):
    case, contact = officer
    roles.mark(case.person.ref, "victim", "lives in a refuge")
    assert book.get_person(contact.contact.ref).masked
    roles.release_contact(contact.ref, "household member")
    assert book.get_person(contact.contact.ref).name == ASSOCIATE["name"]


def test_revealing_an_associate_shows_them_and_is_audited(book, roles, officer):
    case, contact = officer
    roles.mark(case.person.ref, "victim", "lives in a refuge")
    assert book.get_person(contact.contact.ref).masked
    book.reveal([contact.contact.ref], "identity check on call")
    assert book.get_person(contact.contact.ref).name == ASSOCIATE["name"]
    assert book.get_person(case.person.ref).masked
    assert audit.entries(book.store.conn, action="person.reveal")[-1].refs == [contact.contact.ref]


# -- 13. revealing a contact reveals the contact only -----------------------------------------
def test_revealing_a_contact_leaves_the_marked_case_person_masked(book, roles, officer):
    case, contact = officer
    roles.mark(case.person.ref, "undercover-officer", "operational safety")

    book.reveal_contact(contact.ref, "household check")

    shown = book.get_contact(contact.ref)
    assert not shown.withheld and shown.contact.name == ASSOCIATE["name"] and shown.setting == "workplace"
    assert shown.notes == "drives [withheld] to briefings"
    assert book.get_person(case.person.ref).masked and book.get_case(case.ref).person.masked
    _assert_absent(_shown(shown, book.get_case(case.ref), book.list_cases()), OFFICER)
    entry = audit.entries(book.store.conn)[-1]
    assert (entry.action, entry.refs, entry.reason) == (
        "contact.reveal",
        sorted([contact.ref, contact.contact.ref]),
        "household check",
    )


def test_a_detail_replaced_by_a_merge_or_an_update_stays_protected(book, roles, officer, store, tmp_path):
    """A merge keeps one phone; an update replaces the address. The marked person's other
    phone and old address used to stop being protected at once: notes naming them showed
    in clear, and a household member sharing them went out in full. Both are remembered."""
    from pyrage import decrypt, x25519

    from tracekit.bundle.writer import export_handover

    case, _ = officer
    duplicate = book.add_case(person=PersonInput(**DUPLICATE), test_date="2020-10-21", asymptomatic=True)
    ordinary = book.add_case(
        person=PersonInput(**ORDINARY),
        test_date="2020-10-20",
        asymptomatic=True,
        notes="was given 07700 900331 and 1 Old Mill Lane to call",
    )
    book.update_person(case.person.ref, PersonInput(address="1 Old Mill Lane"))
    lodger, _ = book.add_contact(
        ordinary.ref,
        person=PersonInput(name="Larkin Lodger", phone="07700 900331", address="1 Old Mill Lane", postcode="SW1A 2AB"),
        last_exposure="2020-10-19",
        setting="household",
        new_person=True,
    )
    roles.mark(case.person.ref, "undercover-officer", "operational safety")
    book.merge_people(case.person.ref, duplicate.person.ref)  # keeps +447700900321; 900331 is replaced
    book.update_person(case.person.ref, PersonInput(address="2 New Road"))  # the old address is replaced
    book.forget_marks()
    note = book.get_case(ordinary.ref).notes
    assert "900331" not in note and "Old Mill" not in note, note
    shown = book.get_contact(lodger.ref).contact
    assert shown.phone is None and shown.address is None  # shared with the marked person: withheld

    central = x25519.Identity.generate()
    roles.add_recipient("Central", str(central.to_public()), "central-team")
    (tmp_path / "out").mkdir()
    bundle = export_handover(store, "Central", out_dir=tmp_path / "out", all_records=True)
    content = decrypt(bundle.path.read_bytes(), [central])
    assert b"900331" not in content and b"Old Mill" not in content

    roles.add_recipient("Vetted", str(x25519.Identity.generate().to_public()), "vetted-team")
    roles.refer(case.person.ref)
    assert store.conn.execute("SELECT count(*) FROM person_former_details").fetchone()[0] == 0
    from tracekit.records.association import ProtectedKeys

    assert ProtectedKeys(store.conn, marked=[]).withheld_fields({"name": "X", "phone": "+447700900331"})[1] == {"phone"}
