"""CLI: protection holds under real use (merge, person show/tree/search of associates, contact reveal)."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import date

import pytest
from pyrage import decrypt, x25519

from tracekit.records import Casebook, PersonInput
from tracekit.records.sensitive import SensitiveRoles

MARKED = {
    "name": "Perpetua Quillfeather",
    "phone": "+447700900555",
    "nhs_number": "9990000026",
    "date_of_birth": "1979-02-03",
    "postcode": "SW1A 2AB",
}
ASSOCIATE = {"name": "Barnaby Fenwright", "phone": "+447700900556", "date_of_birth": "1985-07-08"}
#: Every written form of the marked person's and the associate's details.
MARKED_FORMS = [
    "Perpetua",
    "Quillfeather",
    "900555",
    "9990000026",
    "999 000 0026",
    "1979-02-03",
    "3 Feb 1979",
    "SW1A 2AB",
    "SW1A2AB",
]
ASSOCIATE_FORMS = ["Barnaby", "Fenwright", "900556", "1985-07-08", "8 Jul 1985"]


@pytest.fixture
def world(store, tmp_path):
    """A marked person (case with an associate contact) and an unmarked duplicate record of them."""
    book = Casebook(store, today=date(2020, 11, 1))
    roles = SensitiveRoles(book)
    case = book.add_case(person=PersonInput(**MARKED), test_date="2020-10-20", asymptomatic=True)
    contact, _ = book.add_contact(
        case.ref,
        person=PersonInput(**ASSOCIATE),
        last_exposure="2020-10-19",
        setting="workplace",
        notes="gives Quillfeather lifts",
    )
    duplicate = book.add_case(
        person=PersonInput(name="Pet Quill", phone="07700 900557"), test_date="2020-10-21", asymptomatic=True
    )
    roles.mark(case.person.ref, "protected-witness", "court order")
    identity = x25519.Identity.generate()
    roles.add_recipient("PHE", str(identity.to_public()), "central-team")
    store.close()
    out = tmp_path / "out"
    out.mkdir()
    return {"case": case, "contact": contact, "duplicate": duplicate, "identity": identity, "out": out}


def _absent(forms: list[str], *texts: str) -> None:
    for text in texts:
        for form in forms:
            assert form not in text, form


def _handover_content(cli, world) -> str:
    exported = cli("export", "handover", "--to", "PHE", "--all", "--out", str(world["out"]), "--json")
    assert exported.exit_code == 0, exported.stderr
    sealed = open(json.loads(exported.stdout)["path"], "rb").read()
    with tarfile.open(fileobj=io.BytesIO(decrypt(sealed, [world["identity"]]))) as tar:
        return b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()).decode("utf-8")


def test_merging_the_marked_person_into_a_duplicate_keeps_the_mark(world, cli_with_store):
    marked_ref, duplicate_ref = world["case"].person.ref, world["duplicate"].person.ref
    merged = cli_with_store("person", "merge", duplicate_ref, marked_ref, "--yes")
    assert merged.exit_code == 0, merged.stderr
    _absent(MARKED_FORMS, merged.stdout, merged.stderr)

    marks = json.loads(cli_with_store("role", "list", "--json").stdout)["items"]
    assert [(m["person"], m["role"]) for m in marks] == [(duplicate_ref, "protected-witness")]
    for query in ("Quillfeather", "07700 900555", "9990000026"):
        found = cli_with_store("person", "search", query)
        assert found.exit_code == 0 and "no matches" in found.stdout
    carried = json.loads(cli_with_store("audit", "show", "--action", "role.merge", "--json").stdout)["items"]
    assert [e["refs"] for e in carried] == [sorted([duplicate_ref, marked_ref])]
    content = _handover_content(cli_with_store, world)
    _absent(MARKED_FORMS + ASSOCIATE_FORMS, content)


def test_person_show_search_tree_and_lists_mask_an_associate(world, cli_with_store):
    associate_ref = world["contact"].contact.ref
    promoted = cli_with_store("contact", "promote", associate_ref, "--test-date", "2020-10-22", "--asymptomatic")
    assert promoted.exit_code == 0, promoted.stderr
    outputs = [promoted.stdout, promoted.stderr]
    for command in (
        ("person", "show", associate_ref),
        ("case", "tree", world["case"].ref),
        ("person", "search", "Fenwright"),
        ("person", "search", "07700 900556"),
        ("case", "list"),
        ("contact", "list"),
        ("contact", "show", world["contact"].ref),
    ):
        for json_flag in ((), ("--json",)):
            result = cli_with_store(*json_flag, *command)
            assert result.exit_code == 0, (command, result.stderr)
            outputs += [result.stdout, result.stderr]
    _absent(MARKED_FORMS + ASSOCIATE_FORMS, *outputs)
    shown = cli_with_store("person", "show", associate_ref).stdout
    assert "[withheld: sensitive by association]" in shown


def test_contact_reveal_reveals_the_contact_only(world, cli_with_store):
    contact_ref = world["contact"].ref
    shown = cli_with_store("contact", "show", contact_ref, "--reveal", "--reason", "household check")
    assert shown.exit_code == 0, shown.stderr
    assert "Barnaby Fenwright" in shown.stdout and "workplace" in shown.stdout
    assert "gives [withheld] lifts" in shown.stdout
    _absent(MARKED_FORMS, shown.stdout, shown.stderr)
    entries = json.loads(cli_with_store("audit", "show", "--json").stdout)["items"]
    assert entries[-1]["action"] == "contact.reveal"
    assert entries[-1]["refs"] == sorted([contact_ref, world["contact"].contact.ref])
    assert not [e for e in entries if e["action"] == "person.reveal"]
