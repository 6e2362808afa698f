"""CLI: case add|list|show|update|close, person show|search|update|merge, duplicates, prompts."""

from __future__ import annotations

import json

import pytest

from tests.cli.casebook_helpers import NHS, add_case, add_contact, answers, as_json, e164, ok, out_json, phone
from tracekit.errors import ExitCode

CASE_KEYS = {
    "ref",
    "person",
    "test_date",
    "test_type",
    "test_result",
    "symptom_onset",
    "asymptomatic",
    "status",
    "notes",
    "source_exposure",
    "ruleset",
    "infectious_period",
    "isolation_end",
    "contact_count",
    "created_at",
    "updated_at",
    "closed_at",
}
PAGE_KEYS = {"items", "total", "limit", "offset", "next_offset"}


@pytest.fixture
def interactive(monkeypatch):
    monkeypatch.setattr("tracekit.cli.context.interactive", lambda: True)


# -- case add from flags ----------------------------------------------------------------------


def test_case_add_from_flags_json(cli_with_store):
    case = add_case(
        cli_with_store,
        "Ada Example",
        "--dob",
        "1/2/1980",
        "--nhs-number",
        "999 000 0018",
        "--postcode",
        "sw1a1aa",
        "--test-type",
        "lfd",
        "--notes",
        "works nights",
    )
    assert set(case) >= CASE_KEYS
    assert case["ref"].startswith("C-")
    person = case["person"]
    assert person["ref"].startswith("P-") and person["name"] == "Ada Example"
    assert person["phone"] == e164(1) and person["nhs_number"] == "9990000018" and person["postcode"] == "SW1A 1AA"
    assert person["date_of_birth"] == "1980-02-01"
    assert case["test_type"] == "lfd" and case["test_result"] == "positive" and case["status"] == "open"
    assert case["infectious_period"] == {"start": "2020-10-06", "end": "2020-10-18"}
    assert case["isolation_end"] == "2020-10-18" and case["ruleset"] == "england-2020-07-30"
    assert case["notes"] == "works nights"


def test_case_add_human_output_names_rule_and_next_step(cli_with_store):
    result = ok(
        cli_with_store,
        "case",
        "add",
        "--name",
        "Ada Example",
        "--phone",
        phone(1),
        "--test-date",
        "10/10/2020",
        "--asymptomatic",
    )
    assert "Recorded case C-" in result.stdout and "Ada Example" in result.stdout
    assert "isolate until the end of 20 Oct 2020" in result.stdout
    assert "england-2020-07-30" in result.stdout
    assert "tracekit contact add C-" in result.stderr


def test_case_add_quiet_and_json_hide_notes(cli_with_store):
    result = ok(
        cli_with_store, "case", "add", "--name", "Ada Example", "--test-date", "2020-10-10", "--asymptomatic", "-q"
    )
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "field", "option"),
    [
        (["--name", "Ada Example", "--onset", "2020-10-08"], "test_date", "--test-date"),
        (["--name", "Ada Example", "--test-date", "2020-10-10"], "symptom_onset", "--asymptomatic"),
        (["--test-date", "2020-10-10", "--asymptomatic"], "person", "--name"),
        (["--phone", phone(3), "--test-date", "2020-10-10", "--asymptomatic"], "name", "--name"),
        (
            ["--name", "Ada Example", "--test-date", "2020-10-10", "--asymptomatic", "--nhs-number", "9990000019"],
            "nhs_number",
            "--nhs-number",
        ),
        (
            ["--name", "Ada Example", "--test-date", "2020-10-10", "--asymptomatic", "--test-type", "blood"],
            "test_type",
            "--test-type",
        ),
        (["--name", "Ada Example", "--test-date", "2099-01-01", "--asymptomatic"], "test_date", "--test-date"),
        (
            ["--name", "Ada Example", "--test-date", "2020-10-10", "--onset", "2020-10-08", "--asymptomatic"],
            "symptom_onset",
            "--onset",
        ),
    ],
)
def test_case_add_without_terminal_names_the_field(cli_with_store, args, field, option):
    result = cli_with_store("case", "add", *args)
    assert result.exit_code == ExitCode.VALIDATION, result.stderr
    assert f"{field}:" in result.stderr
    assert option in result.stderr
    assert "9990000019" not in result.stderr  # values are never echoed


def test_case_add_refuses_person_ref_with_details(cli_with_store):
    case = add_case(cli_with_store)
    result = cli_with_store(
        "case",
        "add",
        "--person",
        case["person"]["ref"],
        "--name",
        "Someone Else",
        "--test-date",
        "2020-10-20",
        "--asymptomatic",
    )
    assert result.exit_code == ExitCode.VALIDATION and "person:" in result.stderr


def test_case_add_json_error_is_json_on_stderr(cli_with_store):
    result = cli_with_store("--json", "case", "add", "--name", "Ada Example", "--asymptomatic")
    assert result.exit_code == ExitCode.VALIDATION
    assert result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "validation" and error["message"].startswith("test_date:")
    assert "--test-date" in error["hint"]


def test_case_add_for_existing_person(cli_with_store):
    first = add_case(cli_with_store)
    ok(cli_with_store, "case", "close", first["ref"])
    second = as_json(
        cli_with_store, "case", "add", "--person", first["person"]["ref"], "--test-date", "2020-11-20", "--asymptomatic"
    )
    assert second["person"]["ref"] == first["person"]["ref"]


# -- duplicates ------------------------------------------------------------------------------------


def test_duplicate_without_terminal_is_a_conflict_listing_matches(cli_with_store):
    first = add_case(cli_with_store, "Ada Example", n=5)
    result = cli_with_store(
        "case", "add", "--name", "A. Example", "--phone", phone(5), "--test-date", "2020-10-12", "--asymptomatic"
    )
    assert result.exit_code == ExitCode.CONFLICT
    assert first["person"]["ref"] in result.stderr and "same phone" in result.stderr
    assert "--link" in result.stderr and "--new-person" in result.stderr


def test_duplicate_link_and_new_person_flags(cli_with_store):
    first = add_case(cli_with_store, "Ada Example", "--nhs-number", NHS[0], n=5)
    ok(cli_with_store, "case", "close", first["ref"])
    args = [
        "case",
        "add",
        "--name",
        "Ada Example",
        "--nhs-number",
        NHS[0],
        "--test-date",
        "2020-11-12",
        "--asymptomatic",
    ]
    linked = as_json(cli_with_store, *args, "--link", first["person"]["ref"])
    assert linked["person"]["ref"] == first["person"]["ref"]
    separate = as_json(cli_with_store, *args, "--new-person")
    assert separate["person"]["ref"] != first["person"]["ref"]


def test_duplicate_prompt_links_to_the_chosen_person(cli_with_store, interactive):
    first = add_case(cli_with_store, "Ada Example", "--dob", "1980-02-01", n=5)
    ok(cli_with_store, "case", "close", first["ref"])
    # name, dob given; phone etc. asked: skip them; then choose match 1; test date and onset asked
    result = cli_with_store(
        "--json",
        "case",
        "add",
        "--name",
        "ada example",
        "--dob",
        "01/02/1980",
        input=answers("1", "2020-11-12", "none"),
    )
    assert result.exit_code == 0, result.stderr
    assert "may already be in the store" in result.stderr
    assert first["person"]["ref"] in result.stderr and "same name and date of birth" in result.stderr
    assert out_json(result)["person"]["ref"] == first["person"]["ref"]


def test_duplicate_prompt_can_add_a_new_person(cli_with_store, interactive):
    first = add_case(cli_with_store, "Ada Example", n=5)
    result = cli_with_store(
        "--json",
        "case",
        "add",
        "--name",
        "Ada Twin",
        "--phone",
        phone(5),
        "--test-date",
        "2020-10-12",
        "--asymptomatic",
        input=answers("maybe", "new"),
    )
    assert result.exit_code == 0, result.stderr
    assert "answer with 1" in result.stderr  # an unclear answer is asked again
    assert out_json(result)["person"]["ref"] != first["person"]["ref"]


def test_duplicate_prompt_accepts_a_reference(cli_with_store, interactive):
    first = add_case(cli_with_store, "Ada Example", n=5)
    ok(cli_with_store, "case", "close", first["ref"])
    ref = first["person"]["ref"].lower().replace("-", " ")
    result = cli_with_store(
        "--json",
        "case",
        "add",
        "--name",
        "Ada E",
        "--phone",
        phone(5),
        "--test-date",
        "2020-11-12",
        "--asymptomatic",
        input=answers(ref),
    )
    assert result.exit_code == 0, result.stderr
    assert out_json(result)["person"]["ref"] == first["person"]["ref"]


# -- case add at a terminal --------------------------------------------------------------------------


def test_case_add_interactive_asks_and_reasks_with_the_error(cli_with_store, interactive):
    result = cli_with_store(
        "--json",
        "case",
        "add",
        input=answers(
            "",  # name: required, asked again
            "Ada Example",
            "31/02/1980",  # date of birth: not a real date, asked again
            "1/2/1980",
            "999 000 0019",  # NHS number: bad check digit, asked again
            "999 000 0018",
            "07700 900123",  # phone
            "",  # postcode: skipped
            "2099-01-01",  # test date: in the future, asked again
            "10/10/2020",
            "yesterday",  # onset: not a date
            "8 Oct 2020",
        ),
    )
    assert result.exit_code == 0, result.stderr
    err = result.stderr
    assert "name: is required" in err
    assert "date_of_birth: is not a real date" in err
    assert "nhs_number: is not a valid NHS number" in err
    assert "test_date: is in the future" in err
    assert "symptom_onset: is not a date" in err
    assert "9990000019" not in err.replace(" ", "")  # problems never repeat the value typed
    case = out_json(result)
    assert case["person"]["name"] == "Ada Example" and case["person"]["nhs_number"] == "9990000018"
    assert case["person"]["phone"] == e164(123) and case["person"]["postcode"] is None
    assert case["symptom_onset"] == "2020-10-08" and case["test_date"] == "2020-10-10"


def test_case_add_interactive_only_asks_what_is_missing(cli_with_store, interactive):
    result = cli_with_store(
        "--json", "case", "add", "--name", "Ada Example", "--phone", phone(1), input=answers("2020-10-10", "none")
    )
    assert result.exit_code == 0, result.stderr
    assert "Date of birth" not in result.stderr  # details were given: no optional questions
    case = out_json(result)
    assert case["asymptomatic"] is True


def test_case_add_interactive_reasks_on_a_rule_between_fields(cli_with_store, interactive):
    # onset more than 30 days after the test: the library refuses; the onset is asked again
    result = cli_with_store(
        "--json",
        "case",
        "add",
        "--name",
        "Ada Example",
        "--phone",
        phone(1),
        "--test-date",
        "2020-09-01",
        "--onset",
        "2020-10-20",
        input=answers("2020-08-30"),
    )
    assert result.exit_code == 0, result.stderr
    assert "symptom_onset: is more than 30 days after the test date" in result.stderr
    assert out_json(result)["symptom_onset"] == "2020-08-30"


def test_case_add_interactive_end_of_input_is_interrupted(cli_with_store, interactive):
    result = cli_with_store("case", "add", "--name", "Ada Example", input="")
    assert result.exit_code == ExitCode.INTERRUPTED
    assert as_json(cli_with_store, "case", "list")["total"] == 0


# -- case list, show, update, close -------------------------------------------------------------------


def test_case_list_pages_and_filters(cli_with_store):
    refs = [
        add_case(cli_with_store, f"Person {i} Example", n=10 + i, test_date=f"2020-10-{10 + i}", onset=None)["ref"]
        for i in range(3)
    ]
    page = as_json(cli_with_store, "case", "list", "--limit", "2")
    assert set(page) == PAGE_KEYS and page["total"] == 3 and page["limit"] == 2 and page["offset"] == 0
    assert page["next_offset"] == 2
    assert [c["ref"] for c in page["items"]] == [refs[2], refs[1]]  # most recent test first
    assert set(page["items"][0]) >= CASE_KEYS
    rest = as_json(cli_with_store, "case", "list", "--limit", "2", "--offset", "2")
    assert [c["ref"] for c in rest["items"]] == [refs[0]] and rest["next_offset"] is None

    human = ok(cli_with_store, "case", "list", "--limit", "2").stdout
    assert "showing 1–2 of 3; next: --offset 2 --limit 2" in human
    assert ok(cli_with_store, "case", "list").stdout.strip().endswith("showing 1–3 of 3")
    assert "nothing at --offset 10; 3 cases in all" in ok(cli_with_store, "case", "list", "--offset", "10").stdout

    ok(cli_with_store, "case", "close", refs[1])
    closed = as_json(cli_with_store, "case", "list", "--status", "closed")
    assert [c["ref"] for c in closed["items"]] == [refs[1]]
    window = as_json(cli_with_store, "case", "list", "--since", "11/10/2020", "--until", "2020-10-11")
    assert [c["ref"] for c in window["items"]] == [refs[1]]
    assert (
        ok(cli_with_store, "case", "list", "--status", "closed", "--since", "2020-10-12").stdout.strip() == "no cases"
    )


def test_case_list_bad_filters(cli_with_store):
    result = cli_with_store("case", "list", "--status", "finished")
    assert (
        result.exit_code == ExitCode.VALIDATION
        and "status:" in result.stderr
        and "open, closed, referred" in result.stderr
    )
    result = cli_with_store("case", "list", "--since", "13/31/2020")
    assert result.exit_code == ExitCode.VALIDATION and "since:" in result.stderr
    assert cli_with_store("case", "list", "--limit", "0").exit_code == ExitCode.USAGE


def test_case_show_rule_values_and_contacts(cli_with_store):
    case = add_case(cli_with_store, "Ada Example", "--nhs-number", NHS[1])
    add_contact(cli_with_store, case["ref"], "Bob Example", "--proximity", "1.5", "--duration", "20", n=2)
    shown = ok(cli_with_store, "case", "show", case["ref"]).stdout
    assert f"Case {case['ref']}" in shown
    assert "999 000 0026" in shown and "07700 900001" in shown
    assert "6 Oct 2020 to 18 Oct 2020" in shown and "2 days before the onset to 10 after" in shown
    assert "until the end of 18 Oct 2020" in shown and "10 days from the day after the onset" in shown
    assert "england-2020-07-30" in shown
    assert "Contacts (1)" in shown and "Bob Example" in shown and "2m-15min" in shown
    data = as_json(cli_with_store, "case", "show", case["ref"].lower())
    assert set(data) >= CASE_KEYS and data["contact_count"] == 1 and data["ref"] == case["ref"]


def test_case_show_errors(cli_with_store):
    result = cli_with_store("case", "show", "C-7K2M9Q")
    assert result.exit_code == ExitCode.NOT_FOUND and "no case C-7K2M9Q" in result.stderr
    result = cli_with_store("case", "show", "P-7K2M9Q")
    assert result.exit_code == ExitCode.VALIDATION and "reference" in result.stderr


def test_case_update_recomputes(cli_with_store):
    case = add_case(cli_with_store)
    updated = as_json(
        cli_with_store, "case", "update", case["ref"], "--onset", "2020-10-05", "--notes", "onset corrected"
    )
    assert updated["infectious_period"] == {"start": "2020-10-03", "end": "2020-10-15"}
    assert updated["notes"] == "onset corrected"
    asym = as_json(cli_with_store, "case", "update", case["ref"], "--asymptomatic")
    assert asym["asymptomatic"] is True and asym["isolation_end"] == "2020-10-20"
    result = cli_with_store("case", "update", case["ref"])
    assert result.exit_code == ExitCode.VALIDATION and "changes:" in result.stderr
    assert "Updated case" in ok(cli_with_store, "case", "update", case["ref"], "--result", "void").stdout


def test_case_close_twice_is_a_conflict(cli_with_store):
    case = add_case(cli_with_store)
    result = ok(cli_with_store, "case", "close", case["ref"], "--reason", "tracing complete")
    assert f"Closed case {case['ref']}" in result.stdout
    closed = as_json(cli_with_store, "case", "show", case["ref"])
    assert closed["status"] == "closed" and closed["closed_at"]
    again = cli_with_store("case", "close", case["ref"])
    assert again.exit_code == ExitCode.CONFLICT and "not open" in again.stderr


def test_user_text_is_not_markup(cli_with_store):
    case = add_case(cli_with_store, "Ada [bold]Example[/bold]", "--notes", "[red]urgent")
    shown = ok(cli_with_store, "case", "show", case["ref"]).stdout
    assert "Ada [bold]Example[/bold]" in shown and "[red]urgent" in shown
    assert "Ada [bold]Example[/bold]" in ok(cli_with_store, "case", "list").stdout


# -- people ----------------------------------------------------------------------------------------------


def test_person_show_search_update(cli_with_store):
    case = add_case(cli_with_store, "Zoë O'Neill", "--postcode", "SW1A 1AA", "--nhs-number", NHS[2], n=42)
    ref = case["person"]["ref"]
    shown = ok(cli_with_store, "person", "show", ref).stdout
    assert f"Person {ref}" in shown and "Zoë O'Neill" in shown and "07700 900042" in shown and "SW1A 1AA" in shown
    assert as_json(cli_with_store, "person", "show", ref)["nhs_number"] == NHS[2]

    for text in ("zoe", "O’Neill", "07700900042", "+447700900042", "sw1a1aa", "999 000 0034"):
        found = as_json(cli_with_store, "person", "search", text)
        assert [p["ref"] for p in found["items"]] == [ref], text
        assert found["limit"] == 20
    search = ok(cli_with_store, "person", "search", "neill").stdout
    assert ref in search and "1 match, best first" in search
    assert ok(cli_with_store, "person", "search", "nobody here").stdout.strip() == "no matches"
    short = cli_with_store("person", "search", "zo")
    assert short.exit_code == ExitCode.VALIDATION and "search:" in short.stderr

    updated = as_json(cli_with_store, "person", "update", ref, "--phone", phone(43), "--email", "zoe@example.org")
    assert updated["phone"] == e164(43) and updated["email"] == "zoe@example.org" and updated["name"] == "Zoë O'Neill"
    assert as_json(cli_with_store, "person", "search", "07700 900043")["items"][0]["ref"] == ref
    bad = cli_with_store("person", "update", ref, "--email", "not an email")
    assert bad.exit_code == ExitCode.VALIDATION and "email:" in bad.stderr and "--email" in bad.stderr
    none = cli_with_store("person", "update", ref)
    assert none.exit_code == ExitCode.VALIDATION and "changes:" in none.stderr
    assert cli_with_store("person", "show", "P-7K2M9Q").exit_code == ExitCode.NOT_FOUND


def test_person_merge(cli_with_store, interactive, monkeypatch):
    keep = add_case(cli_with_store, "Ada Example", n=1)["person"]["ref"]
    other = add_case(cli_with_store, "Ada Exampel", "--nhs-number", NHS[3], n=2, test_date="2020-10-20", onset=None)
    # Issue 14: answering no is not an error: exit 0, a plain "Nothing changed.", no merge.
    cancelled = cli_with_store("person", "merge", keep, other["person"]["ref"], input=answers("n"))
    assert cancelled.exit_code == 0 and "Merge:" in cancelled.stderr
    assert "Nothing changed." in cancelled.stderr and "error" not in cancelled.stderr.lower()
    assert as_json(cli_with_store, "case", "show", other["ref"])["person"]["ref"] == other["person"]["ref"]
    result = cli_with_store("--json", "person", "merge", keep, other["person"]["ref"], input=answers("y"))
    assert result.exit_code == 0, result.stderr
    merged = out_json(result)
    assert merged["merged"] == other["person"]["ref"] and merged["person"]["ref"] == keep
    assert merged["person"]["nhs_number"] == NHS[3]  # filled in from the duplicate
    # the old reference still finds the person; the case moved
    assert as_json(cli_with_store, "person", "show", other["person"]["ref"])["ref"] == keep
    assert as_json(cli_with_store, "case", "show", other["ref"])["person"]["ref"] == keep


def test_person_merge_without_terminal_needs_yes(cli_with_store):
    keep = add_case(cli_with_store, "Ada Example", n=1)["person"]["ref"]
    other = add_case(cli_with_store, "Ada Exampel", n=2, test_date="2020-10-20")["person"]["ref"]
    refused = cli_with_store("person", "merge", keep, other)
    assert refused.exit_code == ExitCode.VALIDATION and "--yes" in refused.stderr
    assert f"Merged {other} into {keep}" in ok(cli_with_store, "person", "merge", keep, other, "--yes").stdout
    same = cli_with_store("person", "merge", keep, other, "--yes")
    assert same.exit_code == ExitCode.CONFLICT


# -- what showing records costs ---------------------------------------------------------------


def test_showing_cases_and_people_does_not_load_phonenumbers(cli_with_store, store_path):
    """libphonenumber costs about 20 ms to import; commands that only show stored numbers
    (already E.164) format UK numbers without it (issue 3's 50 ms budget)."""
    import os
    import subprocess
    import sys

    from tests.conftest import PASSPHRASE

    case = add_case(cli_with_store, "Ada Example", n=123)
    add_contact(cli_with_store, case["ref"], "Bo Example", "--phone", "020 7946 0123")
    code = (
        "import os, sys\n"
        "from tracekit.cli import main\n"
        "passphrase = os.environ['TRACEKIT_PASSPHRASE']\n"
        f"for args in (['case', 'show', {case['ref']!r}], ['person', 'search', 'example'], ['today'], ['case', 'list']):\n"
        "    sys.argv = ['tracekit', *args]\n"
        "    os.environ['TRACEKIT_PASSPHRASE'] = passphrase  # each command takes it out\n"
        "    try:\n        main()\n    except SystemExit as done:\n        assert not done.code, (args, done.code)\n"
        "print('LOADED', 'phonenumbers' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEKIT_")}
    env.update({"TRACEKIT_STORE": str(store_path), "TRACEKIT_PASSPHRASE": PASSPHRASE, "COLUMNS": "200"})
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "07700 900123" in result.stdout and "020 7946 0123" in result.stdout
    assert "LOADED False" in result.stdout, result.stdout[-2000:]


def test_emoji_codes_in_records_are_shown_as_typed(cli_with_store):
    case = add_case(cli_with_store, "Ada Example", "--notes", "see :warning: list")
    shown = ok(cli_with_store, "case", "show", case["ref"]).stdout
    assert "see :warning: list" in shown and "\u26a0" not in shown
