"""Property: protection is monotone under random sequences of commands.

A Hypothesis state machine drives a small store through random steps (add a case, add a
contact whose notes mention someone, mark, merge either way round, promote, update a
person or a contact, release a contact, refer, re-import people from a spreadsheet with
new external ids, export a handover to the central team, run a view command through the
CLI) and after every step checks every output a tracer sees without --reveal:

* no view (person show and search, case list/show/tree, contact list/show, today; in human
  and JSON form) carries a marked person's name, phone, NHS number, date of birth or
  postcode, in any written form;
* no view that carries no free text shows an associate's (a contact of a marked person's
  case, not released) details either (notes are scrubbed of marked people only);
* the decrypted central handover bundle carries no marked person's details;
* once a person is referred, none of their details (as they were at referral) is found
  in any view or handover again, whatever is imported or added afterwards.

Who is marked and who is associated is read from the store's tables with SQL of this
test's own, not through the code under test.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from pyrage import decrypt, x25519
from rich.console import Console
from typer.testing import CliRunner

from tests.conftest import CHEAP_KDF, PASSPHRASE
from tests.importers.helpers import CASE_HEADER, case_row, run, write_csv
from tracekit.bundle.writer import export_handover
from tracekit.cli import app, render
from tracekit.domain.identifiers import format_nhs_number
from tracekit.errors import TracekitError
from tracekit.records import Casebook, PersonInput
from tracekit.records.sensitive import ROLES, SensitiveRoles
from tracekit.store import create_store

TODAY = date(2020, 12, 1)
#: Distinct, unusual name parts (none a part of another), so a part alone identifies.
PEOPLE = [
    {
        "name": "Quilla Zarkovian",
        "phone": "+447700900201",
        "nhs_number": "9990000018",
        "date_of_birth": "1979-02-03",
        "postcode": "SW1A 1AA",
    },
    {
        "name": "Oberon Vexley",
        "phone": "+447700900202",
        "nhs_number": "9990000026",
        "date_of_birth": "1980-04-05",
        "postcode": "EC1A 1BB",
    },
    {
        "name": "Ysolde Umbergast",
        "phone": "+447700900203",
        "nhs_number": "9990000034",
        "date_of_birth": "1981-06-07",
        "postcode": "W1A 0AX",
    },
    {
        "name": "Thaddeus Hollowmere",
        "phone": "+447700900204",
        "nhs_number": "9990000042",
        "date_of_birth": "1982-08-09",
        "postcode": "CR2 6XH",
    },
    {
        "name": "Perpetua Fenwright",
        "phone": "+447700900205",
        "nhs_number": "9990000050",
        "date_of_birth": "1983-10-11",
        "postcode": "B33 8TH",
    },
]
#: A person update gives the person at index i this phone (one per index, so two people
#: never share a number: that would be the other person's own detail, not a leak).
NEW_PHONE = "+4477009003{:02d}"

MARKED_SQL = (
    "SELECT p.name, p.phone, p.nhs_number, p.date_of_birth, p.postcode FROM person_roles r "
    "JOIN people p ON p.id = r.person_id WHERE p.referral_id IS NULL"
)
ASSOCIATED_SQL = (
    "SELECT DISTINCT p.name, p.phone, p.nhs_number, p.date_of_birth, p.postcode FROM exposures e "
    "JOIN cases c ON c.id = e.case_id JOIN person_roles r ON r.person_id = c.person_id "
    "JOIN people p ON p.id = e.person_id "
    "WHERE e.id NOT IN (SELECT exposure_id FROM released_exposures) "
    "AND p.id NOT IN (SELECT person_id FROM person_roles)"
)


def written_forms(row: tuple) -> list[str]:
    """Every way a person's details may be written out: raw, national, grouped, parts."""
    name, phone, nhs, dob, postcode = row
    forms = []
    if name:
        forms += [name, *(part for part in name.split() if len(part) >= 4)]
    if phone:
        national = "0" + phone[3:]
        forms += [phone, phone[1:], national, f"{national[:5]} {national[5:]}"]
    if nhs:
        forms += [nhs, format_nhs_number(nhs)]
    if dob:
        day = date.fromisoformat(dob)
        forms += [dob, f"{day.day} {day:%b %Y}"]
    if postcode:
        forms += [postcode, postcode.replace(" ", "")]
    return forms


def rendered(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=200, no_color=True)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


class ProtectionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = tempfile.TemporaryDirectory()
        self.path = Path(self.folder.name) / "p.store"
        self.central = x25519.Identity.generate()
        self.runner = CliRunner()
        self.env = {
            "TRACEKIT_STORE": str(self.path),
            "TRACEKIT_PASSPHRASE": PASSPHRASE,
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
        self.store = create_store(self.path, bytearray(PASSPHRASE.encode()), kdf=CHEAP_KDF)
        self.book = Casebook(self.store, today=TODAY)
        self.roles = SensitiveRoles(self.book)
        self.roles.add_recipient("Central", str(self.central.to_public()), "central-team")
        self.roles.add_recipient("Vetted", str(x25519.Identity.generate().to_public()), "vetted-team")
        self.referred: list[str] = []  # written forms of referred people, as they were at referral
        self.imports = 0
        self.people: list[str] = []  # person refs (merged-away ones stay valid as aliases)
        self.cases: list[str] = []
        self.contacts: list[str] = []
        # A small chain to start from: each of the first three a contact of the one before.
        for index in range(4):
            self._new_case(index)
        for index in range(1, 3):
            self.add_contact(index - 1, index, index + 1)

    def teardown(self) -> None:
        self.store.close()
        self.folder.cleanup()

    # -- helpers ---------------------------------------------------------------------------
    def _new_case(self, index: int) -> None:
        case = self.book.add_case(
            person=PersonInput(**PEOPLE[index]),
            test_date="2020-11-20",
            asymptomatic=True,
            new_person=True,
            notes=f"lives with {PEOPLE[(index + 1) % len(PEOPLE)]['name']}",
        )
        self.people.append(case.person.ref)
        self.cases.append(case.ref)

    def _attempt(self, action) -> None:  # type: ignore[no-untyped-def]
        """Run a step; refusals (conflicts, validation) are fine, anything else is a bug."""
        try:
            action()
        except TracekitError:
            pass

    def _protected(self, sql: str) -> list[str]:
        forms = [form for row in self.store.query(sql) for form in written_forms(row)]
        return forms + self.referred if sql == MARKED_SQL else forms

    def _assert_clean(self, text: str, forms: list[str], where: object) -> None:
        for form in forms:
            assert form not in text, (where, form)

    # -- steps -----------------------------------------------------------------------------
    @precondition(lambda self: len(self.people) < len(PEOPLE))
    @rule()
    def add_case(self) -> None:
        self._new_case(len(self.people))

    @rule(case=st.integers(0, 9), person=st.integers(0, 9), mention=st.integers(0, len(PEOPLE) - 1))
    def add_contact(self, case: int, person: int, mention: int) -> None:
        def add() -> None:
            exposure, _ = self.book.add_contact(
                self.cases[case % len(self.cases)],
                person_ref=self.people[person % len(self.people)],
                last_exposure="2020-11-19",
                setting="workplace",
                proximity_m=1,
                duration_min=20,
                notes=f"met {PEOPLE[mention]['name']} on {PEOPLE[mention]['phone']}",
            )
            self.contacts.append(exposure.ref)

        self._attempt(add)

    @rule(person=st.integers(0, 9), role=st.sampled_from(sorted(ROLES)))
    def mark(self, person: int, role: str) -> None:
        self._attempt(lambda: self.roles.mark(self.people[person % len(self.people)], role, "property test"))
        self.book.forget_marks()

    @rule(keep=st.integers(0, 9), other=st.integers(0, 9))
    def merge(self, keep: int, other: int) -> None:
        self._attempt(
            lambda: self.book.merge_people(self.people[keep % len(self.people)], self.people[other % len(self.people)])
        )

    @rule(person=st.integers(0, 9))
    def promote(self, person: int) -> None:
        def promote() -> None:
            case = self.book.promote_contact(
                self.people[person % len(self.people)], test_date="2020-11-25", asymptomatic=True
            )
            self.cases.append(case.ref)

        self._attempt(promote)

    @rule(person=st.integers(0, 9))
    def update_person(self, person: int) -> None:
        index = person % len(self.people)
        self._attempt(lambda: self.book.update_person(self.people[index], PersonInput(phone=NEW_PHONE.format(index))))

    @precondition(lambda self: self.contacts)
    @rule(contact=st.integers(0, 9), mention=st.integers(0, len(PEOPLE) - 1))
    def update_contact(self, contact: int, mention: int) -> None:
        self._attempt(
            lambda: self.book.update_contact(
                self.contacts[contact % len(self.contacts)],
                notes=f"called {PEOPLE[mention]['name']}",
                trace_status="reached",
            )
        )

    @precondition(lambda self: self.contacts)
    @rule(contact=st.integers(0, 9))
    def release(self, contact: int) -> None:
        self._attempt(
            lambda: self.roles.release_contact(self.contacts[contact % len(self.contacts)], "property test release")
        )
        self.book.forget_marks()

    @rule(person=st.integers(0, 9))
    def refer(self, person: int) -> None:
        ref = self.people[person % len(self.people)]
        row = self.store.query(
            "SELECT p.name, p.phone, p.nhs_number, p.date_of_birth, p.postcode FROM people p "
            "JOIN person_roles r ON r.person_id = p.id WHERE p.referral_id IS NULL AND p.id IN "
            "(SELECT id FROM people WHERE ref = ? UNION SELECT person_id FROM person_aliases WHERE ref = ?)",
            (ref, ref),
        )
        try:
            self.roles.refer(ref)
        except TracekitError:
            return
        assert row, f"{ref} was referred but is not a marked person"  # (by its reference or a merged-away alias)
        self.referred += written_forms(row[0])
        self.book.forget_marks()

    @rule(people=st.lists(st.integers(0, len(PEOPLE) - 1), min_size=1, max_size=3, unique=True), role=st.booleans())
    def reimport(self, people: list[int], role: bool) -> None:
        """The same people again from a spreadsheet, with new external ids (the role column kept or blank)."""
        self.imports += 1
        rows = []
        for index in people:
            p = PEOPLE[index]
            day = date.fromisoformat(p["date_of_birth"])
            rows.append(
                case_row(
                    f"RE-{self.imports}-{index}",
                    p["name"],
                    Date_of_birth=f"{day:%d/%m/%Y}",
                    NHS_number=p["nhs_number"],
                    Mobile="0" + p["phone"][3:],
                    Postcode=p["postcode"],
                    Role="protected-witness" if role else "",
                    Specimen_date="20/11/2020",
                    Onset_date="",
                    Asymptomatic="yes",
                )
            )
        with tempfile.TemporaryDirectory() as folder:
            path = write_csv(Path(folder) / "again.csv", CASE_HEADER, rows)
            self._attempt(lambda: run(self.store, "cases", path, skip_invalid=True, today=TODAY))
        self.book.forget_marks()

    @rule()
    def export_central_handover(self) -> None:
        with tempfile.TemporaryDirectory() as out:
            result = export_handover(
                self.store, "Central", policy_name="central-handover", out_dir=out, all_records=True
            )
            plain = decrypt(result.path.read_bytes(), [self.central])
        with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
            content = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()).decode("utf-8")
        self._assert_clean(content, self._protected(MARKED_SQL), "central handover")

    @rule(data=st.data())
    def cli_view(self, data: st.DataObject) -> None:
        """One view command through the CLI, as a tracer runs it, in human or JSON form."""
        commands = [("case", "list"), ("contact", "list"), ("today", "--date", "2020-11-26")]
        commands += [("person", "show", ref) for ref in self.people] + [("case", "tree", ref) for ref in self.cases]
        commands += [("case", "show", ref) for ref in self.cases] + [("contact", "show", ref) for ref in self.contacts]
        commands += [("person", "search", p["name"].split()[1]) for p in PEOPLE]
        command = data.draw(st.sampled_from(commands), label="command")
        json_flag = data.draw(st.sampled_from([(), ("--json",)]), label="json")
        result = self.runner.invoke(app, [*json_flag, *command], env=self.env, catch_exceptions=False)
        assert result.exit_code == 0, (command, result.stderr)
        text = result.stdout + result.stderr
        self._assert_clean(text, self._protected(MARKED_SQL), command)
        carries_notes = command[0] in ("case", "contact") and (command[1] == "show" or json_flag)
        if not carries_notes:
            self._assert_clean(text, self._protected(ASSOCIATED_SQL), command)

    # -- after every step: every library view, as the CLI renders it ----------------------
    @invariant()
    def no_protected_value_in_any_view(self) -> None:
        book = Casebook(self.store, today=TODAY)  # a fresh one: no reveal, nothing cached
        marked, associated = self._protected(MARKED_SQL), self._protected(ASSOCIATED_SQL)
        people = [book.get_person(ref) for ref in self.people]
        found = [person for p in PEOPLE for person in book.search_people(p["name"].split()[1])]
        cases, contacts = book.list_cases(limit=100), book.list_contacts(limit=100)
        trees = [book.case_tree(ref) for ref in self.cases]
        work = book.worklist(date(2020, 11, 26))
        # JSON here (rendering every view after every step costs seconds); cli_view checks
        # the rendered forms, and the trees are rendered because their labels are built apart.
        without_notes = "\n".join(
            [
                json.dumps([p.to_json() for p in people + found]),
                *(rendered(render.case_tree(root, asked)) for root, asked in trees),
                json.dumps([[e.contact.to_json(), e.withheld] for e in contacts.items]),
                json.dumps([c.person.to_json() for c in cases.items]),
                json.dumps([e.contact.to_json() for e in work.to_call + work.isolation_ends_today]),
            ]
        )
        with_notes = "\n".join(
            [
                json.dumps(cases.to_json()),
                json.dumps(contacts.to_json()),
                json.dumps(work.to_json()),
                *(json.dumps(render.tree_json(root, asked)) for root, asked in trees),
            ]
        )
        self._assert_clean(without_notes + with_notes, marked, "library views")
        self._assert_clean(without_notes, associated, "library views without free text")


ProtectionMachine.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_protection_is_monotone = ProtectionMachine.TestCase
