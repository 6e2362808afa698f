"""Sensitive roles in the library: masking, withholding, reveal, release, referral, purge."""

from __future__ import annotations

import json
from datetime import date

import pytest
from pyrage import x25519

from tests.conftest import PASSPHRASE
from tests.plaintext import decrypted_pages, logical_dump, value_forms
from tracekit import audit
from tracekit.errors import BundleInvalid, Conflict, PolicyError, ValidationError
from tracekit.records import Casebook, PersonInput
from tracekit.records.sensitive import SensitiveRoles, open_envelope
from tracekit.store import open_store

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
ASSOCIATE = {"name": "Bartholomew Yelverton", "phone": "+447700900322", "postcode": "EC1A 1BB"}
ORDINARY = {"name": "Olwen Ordinary", "phone": "+447700900323"}


@pytest.fixture
def book(store):
    return Casebook(store, today=TODAY)


@pytest.fixture
def roles(book):
    return SensitiveRoles(book)


@pytest.fixture
def scenario(book):
    """An officer's case with an associate contact; the officer also a contact of an ordinary case."""
    officer_case = book.add_case(
        person=PersonInput(**OFFICER),
        test_date="2020-10-20",
        symptom_onset="2020-10-18",
        notes="attended briefing at Hawthorn Mews",
    )
    associate, _ = book.add_contact(
        officer_case.ref,
        person=PersonInput(**ASSOCIATE),
        last_exposure="2020-10-19",
        setting="workplace",
        proximity_m=1,
        duration_min=30,
        notes="shares a vehicle with Zarkovian",
    )
    book.log_call(associate.ref, "no-answer", "left message for Yelverton")
    ordinary_case = book.add_case(person=PersonInput(**ORDINARY), test_date="2020-10-21", asymptomatic=True)
    officer_as_contact, _ = book.add_contact(
        ordinary_case.ref,
        person_ref=officer_case.person.ref,
        last_exposure="2020-10-20",
        setting="social",
        notes="met Quintessa at the gym",
    )
    return officer_case, associate, ordinary_case, officer_as_contact


def test_marked_person_is_masked_everywhere(book, roles, scenario):
    officer_case, associate, ordinary_case, officer_as_contact = scenario
    roles.mark(officer_case.person.ref, "undercover-officer", "operational safety")
    shown = [
        book.get_person(officer_case.person.ref).to_json(),
        book.get_case(officer_case.ref).to_json(),
        book.get_contact(officer_as_contact.ref).to_json(),
        book.list_cases().to_json(),
        book.list_contacts().to_json(),
        book.worklist(date(2020, 10, 22)).to_json(),
    ]
    tree, _ = book.case_tree(ordinary_case.ref)
    text = json.dumps(shown) + repr(tree)
    for value in value_forms(OFFICER):
        assert value.decode() not in text
    person = book.get_person(officer_case.person.ref)
    assert person.masked and person.name == "" and person.display_name == "[withheld: sensitive role]"
    assert person.to_json()["name"] == {"withheld": "sensitive-role"}


def test_contacts_of_a_marked_case_are_withheld_by_association(book, roles, scenario):
    officer_case, associate, *_ = scenario
    roles.mark(officer_case.person.ref, "undercover-officer", "operational safety")
    withheld = book.get_contact(associate.ref)
    assert withheld.withheld
    data = withheld.to_json()
    assert data["setting"] == {"withheld": "sensitive-by-association"}
    assert data["contact"]["withheld"] == "sensitive-by-association"
    text = json.dumps(data) + json.dumps(book.list_contacts(case_ref=officer_case.ref).to_json())
    for value in value_forms(ASSOCIATE) + [b"Yelverton", b"workplace"]:
        assert value.decode() not in text


def test_search_does_not_find_marked_people(book, roles, scenario):
    officer_case, *_ = scenario
    assert [p.ref for p in book.search_people("Zarkovian")] == [officer_case.person.ref]
    roles.mark(officer_case.person.ref, "protected-witness", "court order")
    for query in ("Zarkovian", "07700 900321", "999 000 0018", "SW1A 2AB"):
        assert book.search_people(query) == []


def test_reveal_is_audited_and_shows_identity(book, roles, scenario):
    officer_case, *_ = scenario
    roles.mark(officer_case.person.ref, "victim", "lives in a refuge")
    book.reveal([officer_case.person.ref], "confirming identity on call")
    assert book.get_person(officer_case.person.ref).name == OFFICER["name"]
    last = audit.entries(book.store.conn, action="person.reveal")[-1]
    assert last.refs == [officer_case.person.ref] and last.reason == "confirming identity on call"


def test_reveal_needs_a_reason_free_of_identity(book, roles, scenario):
    officer_case, *_ = scenario
    roles.mark(officer_case.person.ref, "victim", "lives in a refuge")
    with pytest.raises(ValidationError, match="reason"):
        book.reveal([officer_case.person.ref], "")
    with pytest.raises(ValidationError, match="contains details"):
        book.reveal([officer_case.person.ref], "calling Zarkovian back")
    assert book.get_person(officer_case.person.ref).masked


@pytest.mark.parametrize(
    "reason",
    [
        "Quintessa asked",
        "call 07700 900321",
        "nhs 999 000 0018",
        "email q.zarkovian@example.org",
        "sw1a 2ab",
        "born 14/03/1981",
    ],
)
def test_mark_refuses_reasons_containing_the_persons_details(book, roles, scenario, reason):
    officer_case, *_ = scenario
    before = len(audit.entries(book.store.conn))
    with pytest.raises(ValidationError, match="contains details"):
        roles.mark(officer_case.person.ref, "other", reason)
    assert len(audit.entries(book.store.conn)) == before
    assert not book.get_person(officer_case.person.ref).masked


def test_mark_requires_known_role_and_reason(book, roles, scenario):
    officer_case, *_ = scenario
    with pytest.raises(ValidationError, match="role"):
        roles.mark(officer_case.person.ref, "spy", "x")
    with pytest.raises(ValidationError, match="reason"):
        roles.mark(officer_case.person.ref, "other", "  ")


def test_release_shows_one_contact(book, roles, scenario):
    officer_case, associate, *_ = scenario
    roles.mark(officer_case.person.ref, "undercover-officer", "operational safety")
    roles.release_contact(associate.ref, "neighbour, plainly unrelated")
    released = book.get_contact(associate.ref)
    assert not released.withheld and released.contact.name == ASSOCIATE["name"]
    assert audit.entries(book.store.conn, action="contact.release")[-1].refs == sorted(
        [associate.ref, officer_case.ref]
    )
    with pytest.raises(Conflict):
        roles.release_contact(associate.ref, "again")


def test_unmark_restores_search_and_display(book, roles, scenario):
    officer_case, *_ = scenario
    roles.mark(officer_case.person.ref, "other", "mistaken identity check")
    roles.unmark(officer_case.person.ref, "marked in error")
    assert book.search_people("Zarkovian")[0].name == OFFICER["name"]


def test_refer_without_vetted_recipient_changes_nothing(book, roles, scenario, store_path):
    officer_case, *_ = scenario
    roles.mark(officer_case.person.ref, "undercover-officer", "operational safety")
    roles.add_recipient("Central", str(x25519.Identity.generate().to_public()), "central-team")
    before = logical_dump(book.store)
    with pytest.raises(PolicyError, match="no vetted-team recipient"):
        roles.refer(officer_case.person.ref)
    assert logical_dump(book.store) == before


def test_refer_requires_a_mark(book, roles, scenario):
    officer_case, *_ = scenario
    roles.add_recipient("Vetted", str(x25519.Identity.generate().to_public()), "vetted-team")
    with pytest.raises(Conflict, match="not marked"):
        roles.refer(officer_case.person.ref)


def test_referral_seals_to_vetted_team_only(book, roles, scenario):
    officer_case, associate, *_ = scenario
    vetted, central = x25519.Identity.generate(), x25519.Identity.generate()
    roles.add_recipient("Vetted", str(vetted.to_public()), "vetted-team")
    roles.add_recipient("Central", str(central.to_public()), "central-team")
    roles.mark(officer_case.person.ref, "undercover-officer", "operational safety")
    referral = roles.refer(officer_case.person.ref, "per protocol")
    sealed = roles.referral_envelope(referral.ref)
    payload = open_envelope(sealed, [vetted])
    assert payload["person"]["name"] == OFFICER["name"]
    assert payload["cases"][0]["contacts"][0]["contact"]["name"] == ASSOCIATE["name"]
    assert payload["cases"][0]["notes"] == "attended briefing at Hawthorn Mews"
    assert payload["role"] == "undercover-officer" and payload["mark_reason"] == "operational safety"
    with pytest.raises(BundleInvalid, match="cannot be decrypted"):
        open_envelope(sealed, [central])


def test_referral_envelope_decrypts_with_the_age_tool(book, roles, scenario, tmp_path):
    import shutil
    import subprocess

    if shutil.which("age") is None:
        pytest.skip("the age command-line tool is not installed (CI installs it: .ci/run)")
    officer_case, *_ = scenario
    vetted = x25519.Identity.generate()
    roles.add_recipient("Vetted", str(vetted.to_public()), "vetted-team")
    roles.mark(officer_case.person.ref, "undercover-officer", "operational safety")
    referral = roles.refer(officer_case.person.ref)
    [path] = roles.export_referrals(tmp_path)
    assert path.name == f"{referral.ref}.age" and (path.stat().st_mode & 0o777) == 0o600
    identity = tmp_path / "vetted.key"
    identity.write_text(str(vetted) + "\n")
    result = subprocess.run(["age", "--decrypt", "-i", str(identity), str(path)], capture_output=True, check=True)
    envelope = json.loads(result.stdout)
    assert envelope["format"] == "tracekit-referral"


def test_after_referral_the_passphrase_no_longer_recovers_the_identity(book, roles, scenario, store_path):
    """Open with the passphrase, dump every table and decrypt every page: nothing left."""
    officer_case, associate, ordinary_case, officer_as_contact = scenario
    roles.add_recipient("Vetted", str(x25519.Identity.generate().to_public()), "vetted-team")
    roles.mark(officer_case.person.ref, "undercover-officer", "operational safety")
    referral = roles.refer(officer_case.person.ref)
    book.store.close()
    secrets = (
        value_forms(OFFICER)
        + value_forms(ASSOCIATE)
        + [
            b"Hawthorn",
            b"briefing",
            b"at the gym",
            b"shares a vehicle",
            b"left message",  # long enough that random bytes never match
        ]
    )
    with open_store(store_path, bytearray(PASSPHRASE.encode())) as reopened:
        dump = logical_dump(reopened).encode()
        key = bytes(reopened.key)
        assert reopened.check().ok
        # The stub: reference, role category, dates, status referred.
        stub = Casebook(reopened, today=TODAY).get_case(officer_case.ref)
        assert stub.status == "referred" and stub.test_date == date(2020, 10, 20)
        assert stub.person.display_name == f"[withheld: sensitive role, referred {referral.ref}]"
        # The search index's own vocabulary: trigrams of the referred name must be gone.
        reopened.conn.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, people_fts, row)")
        vocabulary = {row[0] for row in reopened.conn.execute("SELECT term FROM temp.vocab").fetchall()}
    pages = decrypted_pages(store_path, key)
    for value in secrets:
        assert value not in dump, value
        assert value not in pages, value
    assert "olw" in vocabulary  # the ordinary person is still indexed
    assert not {"zar", "ark", "kov", "ovi", "via"} & vocabulary
    assert b"Olwen" in pages  # ordinary data is still there: the scan can see plaintext


def test_referral_cuts_a_contact_known_elsewhere_from_the_referred_case(book, roles, scenario):
    """The associate is also a contact of the ordinary case: they keep their record, and
    the referred case's contact becomes a new empty stub person of the referral."""
    officer_case, associate, ordinary_case, _ = scenario
    book.add_contact(ordinary_case.ref, person_ref=associate.contact.ref, last_exposure="2020-10-21", setting="social")
    vetted = x25519.Identity.generate()
    roles.add_recipient("Vetted", str(vetted.to_public()), "vetted-team")
    roles.mark(officer_case.person.ref, "undercover-officer", "operational safety")
    referral = roles.refer(officer_case.person.ref, "per protocol")
    conn = book.store.conn
    stub = conn.execute(
        "SELECT p.ref, p.name, p.name_key, p.phone, r.ref FROM exposures e JOIN people p ON p.id = e.person_id "
        "JOIN referrals r ON r.id = p.referral_id WHERE e.ref = ?",
        (associate.ref,),
    ).fetchone()
    assert stub is not None and stub[0] != associate.contact.ref
    assert stub[1:] == ("", "", None, referral.ref)
    kept = book.get_person(associate.contact.ref)
    assert (kept.name, kept.phone) == (ASSOCIATE["name"], ASSOCIATE["phone"])


def test_referred_person_cannot_be_revealed_or_unmarked(book, roles, scenario):
    officer_case, *_ = scenario
    roles.add_recipient("Vetted", str(x25519.Identity.generate().to_public()), "vetted-team")
    roles.mark(officer_case.person.ref, "undercover-officer", "operational safety")
    roles.refer(officer_case.person.ref)
    book.reveal([officer_case.person.ref], "trying anyway")
    assert book.get_person(officer_case.person.ref).masked
    with pytest.raises(Conflict, match="referred"):
        roles.unmark(officer_case.person.ref, "no")
    with pytest.raises(Conflict, match="referred"):
        book.add_contact(
            officer_case.ref, person=PersonInput(name="New Person"), last_exposure="2020-10-19", setting="other"
        )


def test_audit_entries_never_hold_identity(book, roles, scenario):
    officer_case, associate, *_ = scenario
    roles.add_recipient("Vetted", str(x25519.Identity.generate().to_public()), "vetted-team")
    roles.mark(officer_case.person.ref, "undercover-officer", "operational safety")
    book.reveal([officer_case.person.ref], "identity check on call")
    roles.release_contact(associate.ref, "plainly unrelated")
    roles.refer(officer_case.person.ref, "per protocol")
    text = json.dumps([e.to_json() for e in audit.entries(book.store.conn)])
    for value in value_forms(OFFICER) + value_forms(ASSOCIATE):
        assert value.decode() not in text
    actions = [e.action for e in audit.entries(book.store.conn)]
    for expected in ("role.mark", "person.reveal", "contact.release", "referral.create", "recipient.add"):
        assert expected in actions
    assert audit.verify(book.store.conn).ok


def test_recipient_keys_are_validated(roles):
    with pytest.raises(ValidationError, match="age public key"):
        roles.add_recipient("Bad", "age1notakey", "vetted-team")
    with pytest.raises(ValidationError, match="role"):
        roles.add_recipient("Bad", str(x25519.Identity.generate().to_public()), "friends")
