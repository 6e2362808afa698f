"""Property: a marked person's details appear in no output of any command without --reveal.

Hypothesis builds stores with random people, random marks, random exposures between them
and notes that mention the marked people; every listing, show, search, tree and worklist
command is run in human and --json form, and stdout and stderr are searched for every
written form of every marked person's details. With --reveal and a reason they appear,
and the reveal is audited.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.conftest import CHEAP_KDF, PASSPHRASE
from tracekit.cli import app
from tracekit.records import Casebook, PersonInput
from tracekit.records.sensitive import ROLES, SensitiveRoles
from tracekit.store import create_store

SURNAMES = ["Zarkovian", "Vexley", "Quorridge", "Umbergast", "Hollowmere", "Fenwright"]
FIRST = ["Quilla", "Oberon", "Ysolde", "Thaddeus", "Perpetua", "Barnaby"]


def forms(person: dict) -> list[str]:
    digits = person["phone"][3:]
    return [person["name"], person["surname"], person["phone"], "0" + digits, digits[-6:], person["nhs"]]


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    marks=st.lists(st.sampled_from([None, *ROLES]), min_size=2, max_size=5),
    links=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=6),
)
def test_no_masked_value_in_any_output(tmp_path_factory, marks, links):
    folder = tmp_path_factory.mktemp("masking")
    path = folder / "m.store"
    nhs_numbers = ["9990000018", "9990000026", "9990000034", "9990000042", "9990000050"]
    people = []
    with create_store(path, bytearray(PASSPHRASE.encode()), kdf=CHEAP_KDF) as store:
        book = Casebook(store, today=date(2020, 12, 1))
        for i, role in enumerate(marks):
            person = {
                "name": f"{FIRST[i]} {SURNAMES[i]}",
                "surname": SURNAMES[i],
                "phone": f"+4477009002{i:02d}",
                "nhs": nhs_numbers[i],
                "role": role,
            }
            case = book.add_case(
                person=PersonInput(name=person["name"], phone=person["phone"], nhs_number=person["nhs"]),
                test_date=date(2020, 11, 1) + timedelta(days=i),
                asymptomatic=True,
                new_person=True,
            )
            person["case"], person["ref"] = case.ref, case.person.ref
            people.append(person)
        for source, target in links:
            if source < len(people) and target < len(people) and source != target:
                other = people[target]
                try:
                    book.add_contact(
                        people[source]["case"],
                        person_ref=other["ref"],
                        last_exposure="2020-10-31",
                        setting="social",
                        notes=f"met {other['name']}, phone {other['phone']}",
                    )
                except Exception:
                    pass
        roles = SensitiveRoles(book)
        marked = [p for p in people if p["role"]]
        for person in marked:
            roles.mark(person["ref"], person["role"], "property test")
    runner = CliRunner()
    env = {"TRACEKIT_STORE": str(path), "TRACEKIT_PASSPHRASE": PASSPHRASE, "NO_COLOR": "1", "COLUMNS": "200"}

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.stderr)
        return result.stdout + result.stderr

    outputs = []
    commands = [("case", "list"), ("contact", "list"), ("today", "--date", "2020-11-02"), ("role", "list")]
    for person in people:
        commands += [
            ("case", "show", person["case"]),
            ("person", "show", person["ref"]),
            ("case", "tree", person["case"]),
        ]
        for query in (person["surname"], person["phone"], person["nhs"]):
            commands.append(("person", "search", query))
    contacts = json.loads(run("--json", "contact", "list"))["items"]
    commands += [("contact", "show", c["ref"]) for c in contacts]
    for command in commands:
        outputs.append(run(*command))
        outputs.append(run("--json", *command))
    text = "\n".join(outputs)
    for person in marked:
        for form in forms(person):
            assert form not in text, (person["role"], form)
    # The control: revealing shows the identity, and is audited.
    if marked:
        person = marked[0]
        shown = run("person", "show", person["ref"], "--reveal", "--reason", "identity check on call")
        assert person["name"] in shown
        audit = json.loads(run("--json", "audit", "show", "--action", "person.reveal"))["items"]
        assert audit and audit[-1]["refs"] == [person["ref"]]
