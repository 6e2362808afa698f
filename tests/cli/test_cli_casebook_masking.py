"""Masking in the case-book commands: a person in a sensitive role shows as reference and
marker only, everywhere; their contacts are withheld by association. Also: the help texts
list the values the library accepts."""

from __future__ import annotations

import json
from datetime import date

import pytest

from tests.cli.casebook_helpers import NHS, add_case, add_contact, answers, as_json, ok, out_json, phone
from tracekit.errors import ExitCode
from tracekit.records.models import WITHHELD_ASSOCIATION_TEXT, WITHHELD_MATCH_TEXT, WITHHELD_TEXT

SECRETS = ("Val Secret", "07700 900066", "+447700900066", "999 000 0042", "9990000042", "SE1 7PB", "Safe House Road")


def _assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


@pytest.fixture
def marked(cli_with_store):
    """An undercover officer who is a case with a contact, and who was a contact of another case."""
    other = add_case(cli_with_store, "Ada Example", n=1)
    officer_contact = add_contact(
        cli_with_store,
        other["ref"],
        "Val Secret",
        "--nhs-number",
        NHS[3],
        "--postcode",
        "SE1 7PB",
        "--address",
        "1 Safe House Road",
        "--proximity",
        "1",
        "--duration",
        "30",
        n=66,
    )
    officer = officer_contact["contact"]["ref"]
    case = as_json(cli_with_store, "contact", "promote", officer, "--test-date", "2020-10-14", "--asymptomatic")
    household = add_contact(cli_with_store, case["ref"], "Hal Example", n=67, last="2020-10-13", setting="household")
    ok(cli_with_store, "role", "mark", officer, "--role", "undercover-officer", "--reason", "operational security")
    return {
        "person": officer,
        "case": case["ref"],
        "other_case": other["ref"],
        "as_contact": officer_contact["ref"],
        "household": household["ref"],
    }


def test_marked_person_is_masked_in_every_human_output(cli_with_store, marked):
    outputs = {
        "case show": ok(cli_with_store, "case", "show", marked["case"]).stdout,
        "case list": ok(cli_with_store, "case", "list").stdout,
        "case tree": ok(cli_with_store, "case", "tree", marked["case"]).stdout,
        "contact list": ok(cli_with_store, "contact", "list").stdout,
        "contact show": ok(cli_with_store, "contact", "show", marked["as_contact"]).stdout,
        "person show": ok(cli_with_store, "person", "show", marked["person"]).stdout,
        "today": ok(cli_with_store, "today", "--date", "2020-10-23").stdout,
    }
    for name, text in outputs.items():
        _assert_no_secrets(text)
        assert marked["person"] in text, name
        assert WITHHELD_TEXT in text or WITHHELD_ASSOCIATION_TEXT in " ".join(text.split()) or "withheld" in text, name
    shown = outputs["case show"]
    assert WITHHELD_TEXT in shown and "details are not shown" in shown
    assert "NHS number" not in shown and "phone" not in shown.split("Contacts")[0]
    assert "infectious period" in shown  # the dates are not identity: still shown


def test_marked_person_is_masked_in_json(cli_with_store, marked):
    case = as_json(cli_with_store, "case", "show", marked["case"])
    assert case["person"]["masked"] is True and case["person"]["name"] != "Val Secret"
    for document in (
        case,
        as_json(cli_with_store, "case", "list"),
        as_json(cli_with_store, "contact", "list"),
        as_json(cli_with_store, "case", "tree", marked["case"]),
        as_json(cli_with_store, "today", "--date", "2020-10-23"),
        as_json(cli_with_store, "person", "show", marked["person"]),
    ):
        _assert_no_secrets(json.dumps(document, ensure_ascii=False))


def test_contacts_of_a_marked_case_are_withheld_by_association(cli_with_store, marked):
    shown = ok(cli_with_store, "contact", "show", marked["household"]).stdout
    assert "Hal Example" not in shown and "07700 900067" not in shown
    assert WITHHELD_ASSOCIATION_TEXT in " ".join(shown.split())
    assert "household" not in shown  # the setting, and a clause that names it, are withheld
    assert "close" in shown
    data = as_json(cli_with_store, "contact", "show", marked["household"])
    assert data["closeness"] == {"withheld": "sensitive-by-association"}
    assert "Hal Example" not in json.dumps(data)
    tree = ok(cli_with_store, "case", "tree", marked["case"]).stdout
    assert "Hal Example" not in tree and "household" not in tree
    today = ok(cli_with_store, "today", "--date", "2020-10-23").stdout
    assert "Hal Example" not in today and "07700 900067" not in today
    assert "household:" not in today  # no legend for a clause that is not shown


def _withheld_match_entries(cli_with_store) -> list[dict]:
    return as_json(cli_with_store, "audit", "show", "--action", "duplicate.withheld-match")["items"]


def _assert_withheld_match_shown(text: str, marked: dict) -> None:
    assert WITHHELD_MATCH_TEXT in text
    for hint in (marked["person"], marked["household"], WITHHELD_TEXT, "undercover", "same phone", "possible match"):
        assert hint not in text, hint
    _assert_no_secrets(text.replace("07700 900066", ""))  # the tracer typed the phone themselves
    assert "Val" not in text and "Hal" not in text


def test_duplicate_prompt_hides_a_marked_match_and_audits_it(cli_with_store, marked, monkeypatch):
    """Issue 13 item 11: the prompt must not confirm that a typed phone is a marked person's."""
    monkeypatch.setattr("tracekit.cli.context.interactive", lambda: True)
    result = cli_with_store(
        "--json",
        "case",
        "add",
        "--name",
        "Someone Else",
        "--phone",
        "07700 900066",
        "--test-date",
        "2020-10-20",
        "--asymptomatic",
        input=answers("1", marked["person"], "new"),
    )
    added = out_json(result)
    _assert_withheld_match_shown(result.stderr, marked)
    assert result.stderr.count("answer 'new' or 'cancel'") == 2  # no way to link from the prompt
    assert added["person"]["ref"] != marked["person"]
    entries = _withheld_match_entries(cli_with_store)
    # The prompt's disclosure (no record yet), then the new person (their reference only).
    assert [e["refs"] for e in entries] == [[], [added["person"]["ref"]]]
    for entry in entries:
        _assert_no_secrets(entry["reason"] or "")
        assert marked["person"] not in (entry["reason"] or "")


def test_duplicate_prompt_hides_a_contact_withheld_by_association(cli_with_store, marked, monkeypatch):
    monkeypatch.setattr("tracekit.cli.context.interactive", lambda: True)
    result = cli_with_store(
        "--json",
        "case",
        "add",
        "--name",
        "Someone Else",
        "--phone",
        phone(67),
        "--test-date",
        "2020-10-20",
        "--asymptomatic",
        input=answers("cancel"),
    )
    assert result.exit_code == ExitCode.INTERRUPTED, result.stderr
    _assert_withheld_match_shown(result.stderr, marked)
    assert "Hal Example" not in result.stdout + result.stderr
    assert [e["refs"] for e in _withheld_match_entries(cli_with_store)] == [[]]


def test_duplicate_prompt_lists_visible_matches_and_hides_the_withheld_one(cli_with_store, marked, monkeypatch):
    monkeypatch.setattr("tracekit.cli.context.interactive", lambda: True)
    visible = add_case(cli_with_store, "Ada Twin", "--nhs-number", NHS[4], n=70)
    ok(cli_with_store, "case", "close", visible["ref"])
    result = cli_with_store(
        "--json",
        "case",
        "add",
        "--name",
        "Someone Else",
        "--phone",
        "07700 900066",
        "--nhs-number",
        NHS[4],
        "--test-date",
        "2020-11-20",
        "--asymptomatic",
        input=answers("2", "1"),
    )
    assert out_json(result)["person"]["ref"] == visible["person"]["ref"]
    assert "1. " in result.stderr and "2. " not in result.stderr and "answer with 1" in result.stderr
    _assert_withheld_match_shown(result.stderr.replace(visible["person"]["ref"], ""), marked)


@pytest.mark.parametrize("as_json_output", [False, True])
def test_duplicate_of_a_marked_person_from_flags_is_hidden_and_audited(cli_with_store, marked, as_json_output):
    json_flag = ["--json"] if as_json_output else []
    args = [
        "case",
        "add",
        "--name",
        "Someone Else",
        "--phone",
        "07700 900066",
        "--test-date",
        "2020-10-20",
        "--asymptomatic",
    ]
    refused = cli_with_store(*json_flag, *args)
    assert refused.exit_code == ExitCode.CONFLICT
    _assert_withheld_match_shown(refused.stdout + refused.stderr, marked)
    assert "--link" not in refused.stdout + refused.stderr and "--new-person" in refused.stdout + refused.stderr
    # Refused: the change rolled back, its audit entry did not.
    assert [e["refs"] for e in _withheld_match_entries(cli_with_store)] == [[]]
    added = as_json(cli_with_store, *args, "--new-person")
    contact = as_json(
        cli_with_store,
        "contact",
        "add",
        added["ref"],
        "--name",
        "Another One",
        "--phone",
        phone(67),
        "--last-exposure",
        "2020-10-19",
        "--setting",
        "workplace",
        "--new-person",
    )
    assert [e["refs"] for e in _withheld_match_entries(cli_with_store)] == [
        [],
        [added["person"]["ref"]],
        [contact["contact"]["ref"]],
    ]


def test_renderer_never_reads_identity_fields_of_a_masked_person():
    """Defence in depth: even if a masked Person arrived with its fields set, nothing leaks."""
    from rich.console import Console

    from tracekit.cli import render
    from tracekit.records.models import Case, CaseStatus, Exposure, Person, TestResult, TestType, TraceStatus, TreeNode

    person = Person(
        id=1,
        ref="P-7K2M9Q",
        name="Val Secret",
        date_of_birth=date(1980, 1, 1),
        nhs_number="9990000042",
        phone="+447700900066",
        email="val@example.org",
        address="1 Safe House Road",
        postcode="SE1 7PB",
        occupation="police",
        masked=True,
    )
    day = date(2020, 10, 10)
    case = Case(
        id=1,
        ref="C-7K2M9Q",
        person=person,
        test_date=day,
        test_type=TestType.PCR,
        test_result=TestResult.POSITIVE,
        symptom_onset=None,
        status=CaseStatus.OPEN,
        notes=None,
        source_exposure_ref=None,
        ruleset_id="england-2020-07-30",
        infectious_start=day,
        infectious_end=day,
        isolation_end=day,
    )
    exposure = Exposure(
        id=1,
        ref="E-7K2M9Q",
        case_ref="C-1K2M9Q",
        contact=person,
        last_exposure=day,
        setting="social",
        proximity_m=None,
        duration_min=None,
        face_to_face=False,
        direct_contact=False,
        trace_status=TraceStatus.NOT_YET_REACHED,
        notes=None,
        ruleset_id="england-2020-07-30",
        close_contact=False,
        clause=None,
        isolation_end=day,
    )
    console = Console(record=True, width=200, no_color=True)
    for renderable in (
        render.person_detail(person),
        render.people_table([person]),
        render.case_detail(case),
        render.cases_table([case]),
        render.contact_detail(exposure),
        render.contacts_table([exposure]),
        render.case_tree(TreeNode(case, uncased_contacts=[exposure]), 1),
        render.person_summary(person),
    ):
        console.print(renderable)
    text = console.export_text()
    for secret in (
        "Val Secret",
        "07700 900066",
        "9990000042",
        "999 000 0042",
        "val@example.org",
        "Safe House",
        "SE1 7PB",
        "police",
        "1980",
    ):
        assert secret not in text, secret
    assert "P-7K2M9Q" in text and WITHHELD_TEXT in text


def test_help_texts_list_the_values_the_library_accepts():
    from tracekit.cli import options
    from tracekit.domain.rules import SETTINGS
    from tracekit.records.models import CallOutcome, CaseStatus, TestResult, TestType, TraceStatus

    assert tuple(t.value for t in TestType) == options.TEST_TYPES
    assert tuple(t.value for t in TestResult) == options.TEST_RESULTS
    assert tuple(s.value for s in CaseStatus) == options.CASE_STATUSES
    assert tuple(s.value for s in TraceStatus) == options.TRACE_STATUSES
    assert tuple(o.value for o in CallOutcome) == options.CALL_OUTCOMES
    assert options.SETTINGS == SETTINGS


def test_phone_numbers_are_shown_as_dialled(cli_with_store):
    case = add_case(cli_with_store, "Ada Example", n=123)
    assert "07700 900123" in ok(cli_with_store, "person", "show", case["person"]["ref"]).stdout
    assert phone(123) == "07700 900123"
