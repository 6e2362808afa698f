"""CLI: contact add|list|show|update|call|promote, case tree, today."""

from __future__ import annotations

import json

import pytest

from tests.cli.casebook_helpers import add_case, add_contact, answers, as_json, e164, ok, out_json, phone
from tracekit.errors import ExitCode

CONTACT_KEYS = {
    "ref",
    "case",
    "withheld",
    "contact",
    "last_exposure",
    "setting",
    "proximity_m",
    "duration_min",
    "face_to_face",
    "direct_contact",
    "trace_status",
    "close_contact",
    "clause",
    "ruleset",
    "isolation_end",
    "notes",
    "calls",
    "created_at",
    "updated_at",
}
CLOSENESS_KEYS = {"is_close", "clause", "explanation", "missing", "ruleset"}


@pytest.fixture
def interactive(monkeypatch):
    monkeypatch.setattr("tracekit.cli.context.interactive", lambda: True)


@pytest.fixture
def case(cli_with_store):
    return add_case(cli_with_store, "Ada Example", n=1)  # onset 8 Oct 2020: infectious 6 to 18 Oct


# -- contact add ---------------------------------------------------------------------------------------


def test_contact_add_json_has_the_closeness_and_its_clause(cli_with_store, case):
    contact = add_contact(cli_with_store, case["ref"], "Bob Example", "--proximity", "1.5m", "--duration", "20", n=2)
    assert set(contact) >= CONTACT_KEYS | {"closeness"}
    assert contact["ref"].startswith("E-") and contact["case"] == case["ref"]
    assert contact["contact"]["name"] == "Bob Example" and contact["contact"]["phone"] == e164(2)
    assert contact["close_contact"] is True and contact["clause"] == "2m-15min"
    assert contact["isolation_end"] == "2020-10-23" and contact["trace_status"] == "not-yet-reached"
    closeness = contact["closeness"]
    assert set(closeness) == CLOSENESS_KEYS and closeness["is_close"] is True
    assert "clause 2m-15min" in closeness["explanation"] and closeness["missing"] == []


def test_contact_add_human_output_and_missing_measures(cli_with_store, case):
    result = ok(
        cli_with_store,
        "contact",
        "add",
        case["ref"],
        "--name",
        "Cy Example",
        "--last-exposure",
        "2020-10-09",
        "--setting",
        "social",
    )
    assert "Added contact E-" in result.stdout and "Cy Example" in result.stdout
    assert "not a close contact: no isolation" in result.stdout and "isolate until" not in result.stdout
    assert "recording the distance and duration could change that" in " ".join(result.stderr.split())


def test_contact_add_warns_outside_infectious_period_on_stderr(cli_with_store, case):
    result = cli_with_store(
        "--json",
        "contact",
        "add",
        case["ref"],
        "--name",
        "Dee Example",
        "--last-exposure",
        "2020-09-01",
        "--setting",
        "household",
    )
    assert result.exit_code == 0, result.stderr
    assert "warning:" in result.stderr and "outside" in result.stderr and "infectious period" in result.stderr
    assert json.loads(result.stdout)["clause"] == "household"  # stdout is still one JSON document


@pytest.mark.parametrize(
    ("args", "field", "option"),
    [
        (["--name", "Bob Example", "--setting", "social"], "last_exposure", "--last-exposure"),
        (["--name", "Bob Example", "--last-exposure", "2020-10-09"], "setting", "--setting"),
        (["--name", "Bob Example", "--last-exposure", "2020-10-09", "--setting", "pub"], "setting", "--setting"),
        (
            ["--name", "Bob Example", "--last-exposure", "2020-10-09", "--setting", "social", "--proximity", "near"],
            "proximity_m",
            "--proximity",
        ),
        (
            ["--name", "Bob Example", "--last-exposure", "2020-10-09", "--setting", "social", "--duration", "-4"],
            "duration_min",
            "--duration",
        ),
        (["--last-exposure", "2020-10-09", "--setting", "social"], "person", "--name"),
    ],
)
def test_contact_add_without_terminal_names_the_field(cli_with_store, case, args, field, option):
    result = cli_with_store("contact", "add", case["ref"], *args)
    assert result.exit_code == ExitCode.VALIDATION, result.stderr
    assert f"{field}:" in result.stderr and option in result.stderr


def test_contact_add_bad_setting_lists_the_allowed_values(cli_with_store, case):
    result = cli_with_store(
        "contact", "add", case["ref"], "--name", "B", "--last-exposure", "2020-10-09", "--setting", "pub"
    )
    assert "household, workplace, education, healthcare, social, travel, other" in result.stderr


def test_contact_add_unknown_case_fails_before_asking(cli_with_store, interactive):
    result = cli_with_store("contact", "add", "C-7K2M9Q", input="")
    assert result.exit_code == ExitCode.NOT_FOUND and "no case C-7K2M9Q" in result.stderr
    assert "Full name" not in result.stderr


def test_contact_add_twice_is_a_conflict(cli_with_store, case):
    first = add_contact(cli_with_store, case["ref"], "Bob Example", n=2)
    result = cli_with_store(
        "contact",
        "add",
        case["ref"],
        "--person",
        first["contact"]["ref"],
        "--last-exposure",
        "2020-10-09",
        "--setting",
        "social",
    )
    assert result.exit_code == ExitCode.CONFLICT and first["ref"] in result.stderr


def test_contact_add_interactive(cli_with_store, case, interactive):
    result = cli_with_store(
        "--json",
        "contact",
        "add",
        case["ref"],
        input=answers(
            "Bob Example",
            "",
            "",
            "07700 900002",
            "",  # name, dob, NHS number, phone, postcode
            "2020-10-09",
            "pub",
            "social",  # setting: not allowed, asked again
            "0.5",
            "",  # distance, duration (skipped)
            "y",
            "n",  # face to face, skin to skin
        ),
    )
    contact = out_json(result)
    assert "setting: is not one of the allowed values" in result.stderr
    assert contact["contact"]["phone"] == e164(2) and contact["setting"] == "social"
    assert contact["proximity_m"] == 0.5 and contact["duration_min"] is None and contact["face_to_face"] is True
    assert contact["clause"] == "face-to-face-1m"


def test_contact_add_interactive_duplicate_of_the_case_person(cli_with_store, case, interactive):
    # the contact's phone matches someone already stored: link to them, or add new
    other = add_case(cli_with_store, "Eve Example", n=7, test_date="2020-10-01")
    result = cli_with_store(
        "--json",
        "contact",
        "add",
        case["ref"],
        "--name",
        "Eve E",
        "--phone",
        phone(7),
        "--last-exposure",
        "2020-10-09",
        "--setting",
        "social",
        input=answers("1"),
    )
    contact = out_json(result)
    assert other["person"]["ref"] in result.stderr and "same phone" in result.stderr
    assert contact["contact"]["ref"] == other["person"]["ref"]


# -- contact list, show, update ---------------------------------------------------------------------------


def test_contact_list_filters_and_pages(cli_with_store, case):
    other = add_case(cli_with_store, "Fay Example", n=9, test_date="2020-10-20", onset="2020-10-19")
    close = add_contact(cli_with_store, case["ref"], "Bob Example", "--direct-contact", n=2, last="2020-10-07")
    far = add_contact(cli_with_store, case["ref"], "Cy Example", n=3, last="2020-10-08", setting="social")
    home = add_contact(cli_with_store, other["ref"], "Dee Example", n=4, last="2020-10-19", setting="household")

    everything = as_json(cli_with_store, "contact", "list")
    assert set(everything) == {"items", "total", "limit", "offset", "next_offset"} and everything["total"] == 3
    assert [c["ref"] for c in everything["items"]] == [home["ref"], far["ref"], close["ref"]]
    assert set(everything["items"][0]) >= CONTACT_KEYS

    def refs(*args: str) -> list[str]:
        return [c["ref"] for c in as_json(cli_with_store, "contact", "list", *args)["items"]]

    assert refs("--case", case["ref"]) == [far["ref"], close["ref"]]
    assert refs("--close-only") == [home["ref"], close["ref"]]
    assert refs("--setting", "Household") == [home["ref"]]
    assert refs("--since", "2020-10-08", "--until", "08/10/2020") == [far["ref"]]
    ok(cli_with_store, "contact", "call", close["ref"], "--outcome", "reached")
    assert refs("--status", "reached") == [close["ref"]]
    assert refs("--status", "not-yet-reached", "--limit", "1", "--offset", "1") == [far["ref"]]

    human = ok(cli_with_store, "contact", "list", "--limit", "2").stdout
    assert "showing 1–2 of 3; next: --offset 2 --limit 2" in human and "Dee Example" in human
    bad = cli_with_store("contact", "list", "--status", "gone")
    assert bad.exit_code == ExitCode.VALIDATION and "trace_status:" in bad.stderr and "--status" in bad.stderr
    assert cli_with_store("contact", "list", "--case", "C-7K2M9Q").exit_code == ExitCode.NOT_FOUND


def test_contact_show_explains_and_lists_calls(cli_with_store, case):
    contact = add_contact(cli_with_store, case["ref"], "Cy Example", n=3, setting="social")
    shown = ok(cli_with_store, "contact", "show", contact["ref"]).stdout
    assert "Not a close contact under rule set england-2020-07-30" in shown
    assert "--proximity, --duration" in shown and "could make this a close contact" in shown
    # Issue 14: not close, so no isolation date a tracer could read out.
    assert "none (not a close contact)" in shown and "until the end of" not in shown
    assert "no calls logged yet" in shown

    ok(cli_with_store, "contact", "call", contact["ref"], "--outcome", "voicemail", "--note", "left a message")
    ok(cli_with_store, "contact", "call", contact["ref"], "--outcome", "reached")
    shown = ok(cli_with_store, "contact", "show", contact["ref"]).stdout
    assert "Calls (2)" in shown and "voicemail" in shown and "left a message" in shown and "reached" in shown
    data = as_json(cli_with_store, "contact", "show", contact["ref"])
    assert [c["outcome"] for c in data["calls"]] == ["voicemail", "reached"]
    assert data["closeness"]["missing"] == ["proximity_m", "duration_min"] and data["closeness"]["is_close"] is False
    assert cli_with_store("contact", "show", "E-7K2M9Q").exit_code == ExitCode.NOT_FOUND


def test_contact_update_recomputes_closeness(cli_with_store, case):
    contact = add_contact(cli_with_store, case["ref"], "Cy Example", n=3, setting="social")
    updated = as_json(cli_with_store, "contact", "update", contact["ref"], "--proximity", "1", "--duration", "5")
    assert updated["clause"] == "1m-1min" and updated["closeness"]["is_close"] is True
    updated = as_json(cli_with_store, "contact", "update", contact["ref"], "--face-to-face")
    assert updated["clause"] == "face-to-face-1m"
    updated = as_json(cli_with_store, "contact", "update", contact["ref"], "--no-face-to-face", "--status", "isolating")
    assert updated["clause"] == "1m-1min" and updated["trace_status"] == "isolating"
    moved = cli_with_store("contact", "update", contact["ref"], "--last-exposure", "2020-09-01")
    assert moved.exit_code == 0 and "warning:" in moved.stderr and "Updated contact" in moved.stdout
    none = cli_with_store("contact", "update", contact["ref"])
    assert none.exit_code == ExitCode.VALIDATION and "changes:" in none.stderr


# -- contact call ----------------------------------------------------------------------------------------


def test_contact_call_outcomes(cli_with_store, case):
    contact = add_contact(cli_with_store, case["ref"], "Bob Example", n=2)
    result = ok(cli_with_store, "contact", "call", contact["ref"], "--outcome", "no-answer")
    assert "no answer" in result.stdout and "not yet reached" in result.stdout and "(1 call so far)" in result.stdout
    after = as_json(
        cli_with_store, "contact", "call", contact["ref"], "--outcome", "Isolating", "--note", "will stay home"
    )
    assert after["trace_status"] == "isolating" and after["calls"][-1] == {
        "at": after["calls"][-1]["at"],
        "outcome": "isolating",
        "note": "will stay home",
    }
    bad = cli_with_store("contact", "call", contact["ref"], "--outcome", "maybe")
    assert bad.exit_code == ExitCode.VALIDATION and "outcome:" in bad.stderr and "no-answer" in bad.stderr
    missing = cli_with_store("contact", "call", contact["ref"])
    assert missing.exit_code == ExitCode.VALIDATION and "outcome: is required" in missing.stderr
    assert "--outcome" in missing.stderr


def test_contact_call_asks_for_the_outcome(cli_with_store, case, interactive):
    contact = add_contact(cli_with_store, case["ref"], "Bob Example", n=2)
    result = cli_with_store("--json", "contact", "call", contact["ref"], input=answers("rang", "wrong number"))
    data = out_json(result)
    assert "outcome: is not a known call outcome" in result.stderr
    assert data["trace_status"] == "unreachable" and data["calls"][0]["outcome"] == "wrong-number"


# -- promote and the tree --------------------------------------------------------------------------------


def test_promote_keeps_the_chain_and_tree_shows_it(cli_with_store, case):
    bob = add_contact(cli_with_store, case["ref"], "Bob Example", "--proximity", "1", "--duration", "30", n=2)
    cy = add_contact(cli_with_store, case["ref"], "Cy Example", n=3, setting="social")
    promoted = as_json(
        cli_with_store,
        "contact",
        "promote",
        bob["contact"]["ref"],
        "--test-date",
        "2020-10-14",
        "--onset",
        "2020-10-13",
    )
    assert promoted["person"]["ref"] == bob["contact"]["ref"] and promoted["source_exposure"] == bob["ref"]
    dee = add_contact(cli_with_store, promoted["ref"], "Dee Example", n=4, last="2020-10-13", setting="household")

    tree = as_json(cli_with_store, "case", "tree", promoted["ref"])
    assert tree["case"] == promoted["ref"]
    root = tree["root"]
    assert set(root) == {"case", "via", "highlight", "children", "contacts"}
    assert root["case"]["ref"] == case["ref"] and root["highlight"] is False and root["via"] is None
    assert [c["ref"] for c in root["contacts"]] == [cy["ref"]]
    (child,) = root["children"]
    assert child["case"]["ref"] == promoted["ref"] and child["highlight"] is True and child["via"] == bob["ref"]
    assert [c["ref"] for c in child["contacts"]] == [dee["ref"]] and child["children"] == []

    human = ok(cli_with_store, "case", "tree", promoted["ref"]).stdout.splitlines()
    assert (
        case["ref"] in human[0]
        and "Ada Example" in human[0]
        and "tested 10 Oct 2020" in human[0]
        and "open" in human[0]
    )
    child_line = next(line for line in human if promoted["ref"] in line)
    assert "◀ this case" in child_line and "Bob Example" in child_line and bob["ref"] in child_line
    dee_line = next(line for line in human if dee["ref"] in line)
    assert "Dee Example" in dee_line and "close (household)" in dee_line and "not yet reached" in dee_line
    assert dee_line.index(dee["ref"]) > child_line.index(promoted["ref"])  # nested under the child
    cy_line = next(line for line in human if cy["ref"] in line)
    assert "not close" in cy_line
    # asked about the root: the root is highlighted
    assert "◀ this case" in ok(cli_with_store, "case", "tree", case["ref"]).stdout.splitlines()[0]
    assert f"contact {bob['ref']}" in ok(cli_with_store, "case", "show", promoted["ref"]).stdout  # infected via


def test_promote_human_output_and_errors(cli_with_store, case, interactive):
    bob = add_contact(cli_with_store, case["ref"], "Bob Example", n=2)
    result = cli_with_store("contact", "promote", bob["contact"]["ref"], input=answers("14/10/2020", "none"))
    assert result.exit_code == 0, result.stderr
    assert "Promoted" in result.stdout and f"infected via contact {bob['ref']}" in result.stdout
    again = cli_with_store("contact", "promote", bob["contact"]["ref"], "--test-date", "2020-10-20", "--asymptomatic")
    assert again.exit_code == ExitCode.CONFLICT and "open case" in again.stderr
    not_contact = cli_with_store(
        "contact", "promote", case["person"]["ref"], "--test-date", "2020-10-20", "--asymptomatic"
    )
    assert not_contact.exit_code == ExitCode.CONFLICT and "not a contact" in not_contact.stderr
    assert cli_with_store("contact", "promote", "P-7K2M9Q", input="").exit_code == ExitCode.NOT_FOUND


def test_promote_by_the_exposure_reference_the_worklist_shows(cli_with_store, case):
    """Issue 14: the worklist shows E- references; promote takes one and records that
    exposure (not merely the person's most recent) as the source."""
    bob = add_contact(cli_with_store, case["ref"], "Bob Example", n=2, last="2020-10-07")
    other = add_case(cli_with_store, "Cat Example", n=3)
    later = as_json(
        cli_with_store,
        "contact",
        "add",
        other["ref"],
        "--person",
        bob["contact"]["ref"],
        "--last-exposure",
        "2020-10-09",
        "--setting",
        "social",
    )
    promoted = as_json(cli_with_store, "contact", "promote", bob["ref"], "--test-date", "2020-10-14", "--asymptomatic")
    assert promoted["person"]["ref"] == bob["contact"]["ref"]
    assert promoted["source_exposure"] == bob["ref"] != later["ref"]


def test_promote_by_person_names_the_source_exposure(cli_with_store, case, interactive):
    bob = add_contact(cli_with_store, case["ref"], "Bob Example", n=2, last="2020-10-07")
    other = add_case(cli_with_store, "Cat Example", n=3)
    later = as_json(
        cli_with_store,
        "contact",
        "add",
        other["ref"],
        "--person",
        bob["contact"]["ref"],
        "--last-exposure",
        "2020-10-09",
        "--setting",
        "social",
    )
    dee = add_contact(cli_with_store, case["ref"], "Dee Example", n=4)
    person = bob["contact"]["ref"]
    # Someone else's exposure is refused before any question is asked.
    wrong = cli_with_store("contact", "promote", person, "--source", dee["ref"], input="")
    assert wrong.exit_code == ExitCode.CONFLICT and f"{dee['ref']} is not an exposure of {person}" in wrong.stderr
    by_case = cli_with_store("contact", "promote", case["ref"], "--test-date", "2020-10-14", "--asymptomatic")
    assert (
        by_case.exit_code == ExitCode.VALIDATION and "is a case reference, not a person or exposure" in by_case.stderr
    )
    promoted = out_json(
        cli_with_store(
            "--json",
            "contact",
            "promote",
            person,
            "--source",
            bob["ref"],
            "--test-date",
            "2020-10-14",
            "--asymptomatic",
        )
    )
    assert promoted["source_exposure"] == bob["ref"] != later["ref"]


def test_promote_without_terminal_needs_the_test_date(cli_with_store, case):
    bob = add_contact(cli_with_store, case["ref"], "Bob Example", n=2)
    result = cli_with_store("contact", "promote", bob["contact"]["ref"], "--asymptomatic")
    assert result.exit_code == ExitCode.VALIDATION and "test_date:" in result.stderr and "--test-date" in result.stderr


def test_promoted_contact_leaves_the_worklist(cli_with_store, case):
    bob = add_contact(cli_with_store, case["ref"], "Bob Example", n=2, last="2020-10-09")
    before = as_json(cli_with_store, "today", "--date", "2020-10-12")
    assert bob["ref"] in [e["ref"] for e in before["items"]]
    ok(cli_with_store, "contact", "promote", bob["contact"]["ref"], "--test-date", "2020-10-11", "--asymptomatic")
    after = as_json(cli_with_store, "today", "--date", "2020-10-12")
    assert bob["ref"] not in [e["ref"] for e in after["items"]]


def test_tree_unknown_case(cli_with_store):
    assert cli_with_store("case", "tree", "C-7K2M9Q").exit_code == ExitCode.NOT_FOUND


# -- today --------------------------------------------------------------------------------------------------


def test_today_orders_by_risk_then_date_and_shows_who_to_ring(cli_with_store, case):
    social_old = add_contact(
        cli_with_store, case["ref"], "Al Example", "--proximity", "2", "--duration", "30", n=11, last="2020-10-07"
    )
    social_new = add_contact(
        cli_with_store, case["ref"], "Bo Example", "--proximity", "2", "--duration", "30", n=12, last="2020-10-09"
    )
    not_close = add_contact(cli_with_store, case["ref"], "Cy Example", n=13, last="2020-10-10", setting="social")
    home = add_contact(cli_with_store, case["ref"], "Di Example", n=14, last="2020-10-08", setting="household")
    reached = add_contact(cli_with_store, case["ref"], "Ed Example", "--direct-contact", n=15, last="2020-10-08")
    ok(cli_with_store, "contact", "call", reached["ref"], "--outcome", "reached")

    work = as_json(cli_with_store, "today", "--date", "2020-10-21")
    assert set(work) == {"date", "items", "total", "limit", "offset", "next_offset", "isolation_ends_today"}
    assert work["date"] == "2020-10-21" and work["total"] == 4 and work["next_offset"] is None
    assert [e["ref"] for e in work["items"]] == [home["ref"], social_new["ref"], social_old["ref"], not_close["ref"]]
    assert [e["ref"] for e in work["isolation_ends_today"]["items"]] == [social_old["ref"]]  # 7 Oct + 14 days

    human = ok(cli_with_store, "today", "--date", "21/10/2020").stdout
    assert "Worklist for 21 Oct 2020" in human and "To call (4 not yet reached)" in human
    lines = human.splitlines()
    first = lines.index(next(line for line in lines if line.strip().startswith("1. ")))
    # a row of two lines: contact, name, risk, isolation end over case, phone, last exposure
    assert lines[first].split() == ["1.", home["ref"], "Di", "Example", "household", "22", "Oct", "2020"]
    assert lines[first + 1].split() == [case["ref"], "07700", "900014", "8", "Oct", "2020"]
    assert human.index(social_new["ref"]) < human.index(social_old["ref"]) < human.index(not_close["ref"])
    assert "household: lives in the same household as the case" in human  # what the clause means
    assert "Isolation ends today" in human and "Al Example" in human.split("Isolation ends today")[1]

    limited = ok(cli_with_store, "today", "--date", "2020-10-21", "--limit", "1").stdout
    # A day later Al's isolation is over: no point in calling any more.
    later = as_json(cli_with_store, "today", "--date", "2020-10-22")
    assert social_old["ref"] not in [e["ref"] for e in later["items"]]
    assert "showing the first 1 of 4" in limited
    assert as_json(cli_with_store, "today", "--date", "2020-10-21", "--limit", "1")["total"] == 4


def test_no_isolation_is_given_to_a_contact_who_is_not_close_or_a_negative_case(cli_with_store, case):
    """Issue 14: a tracer reads the worklist out; "not close ... isolate until" was wrong,
    and so was an isolation date for a negative test."""
    far = add_contact(cli_with_store, case["ref"], "Cy Example", "--proximity", "5", n=13, last="2020-10-09")
    assert far["close_contact"] is False and far["isolation_end"] is None
    human = ok(cli_with_store, "today", "--date", "2020-10-15").stdout
    row = next(line for line in human.splitlines() if far["ref"] in line)
    assert row.split()[-3:] == ["not", "close", "-"]  # no date under "isolate until"
    assert as_json(cli_with_store, "today", "--date", "2020-10-15")["items"][0]["isolation_end"] is None
    assert "isolation_ends_today" in as_json(cli_with_store, "today", "--date", "2020-10-23")
    assert as_json(cli_with_store, "today", "--date", "2020-10-23")["isolation_ends_today"]["items"] == []

    negative = add_case(cli_with_store, "Neg Example", "--result", "negative", n=20, onset=None)
    assert negative["isolation_end"] is None
    shown = ok(cli_with_store, "case", "show", negative["ref"]).stdout
    assert "none (the test was negative)" in shown and "until the end of" not in shown
    added = ok(
        cli_with_store,
        "case",
        "add",
        "--name",
        "Neg Two",
        "--phone",
        phone(21),
        "--test-date",
        "2020-10-10",
        "--asymptomatic",
        "--result",
        "negative",
    ).stdout
    assert "no isolation (the test was negative)" in added and "isolate until" not in added


def test_today_on_an_80_column_terminal_keeps_every_field_whole(cli_with_store, case, monkeypatch):
    add_contact(cli_with_store, case["ref"], "Di Example", n=14, last="2020-10-08", setting="household")
    monkeypatch.setenv("COLUMNS", "80")
    lines = ok(cli_with_store, "today", "--date", "2020-10-15").stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    first = next(n for n, line in enumerate(lines) if line.strip().startswith("1. "))
    # Not "... isolate until the end of 22" / "Oct 2020" at the left edge, as Rich's
    # word wrapping had it: each field in its own column, each date on one line.
    assert "Di Example" in lines[first] and "household" in lines[first] and "22 Oct 2020" in lines[first]
    assert "07700 900014" in lines[first + 1] and "8 Oct 2020" in lines[first + 1]


def test_today_says_more_than_when_the_backlog_is_over_the_cap(cli_with_store, case, monkeypatch):
    for n in range(3):
        add_contact(cli_with_store, case["ref"], f"Waiting Person{chr(97 + n)}", n=300 + n, setting="household")
    monkeypatch.setattr("tracekit.cli.today_cmd.TODAY_COUNT_CAP", 1)
    human = ok(cli_with_store, "today", "--date", "2020-10-15", "--limit", "1").stdout
    assert "To call (more than 1 not yet reached)" in human
    assert "showing the first 1 of more than 1; more: --limit N" in human
    exact = as_json(cli_with_store, "today", "--date", "2020-10-15", "--limit", "1")
    assert exact["total"] >= 3  # --json always counts exactly


def test_today_empty_and_bad_date(cli_with_store):
    human = ok(cli_with_store, "today", "--date", "2020-10-21").stdout
    assert "nobody waiting for a call" in human
    bad = cli_with_store("today", "--date", "21/13/2020")
    assert bad.exit_code == ExitCode.VALIDATION and "date:" in bad.stderr and "--date" in bad.stderr


def test_narrow_terminal_drops_columns_rather_than_cutting_values(cli_with_store, case):
    contact = add_contact(cli_with_store, case["ref"], "Bartholomew Longname-Example", n=222, setting="household")
    narrow = {"COLUMNS": "70"}
    for args in (
        ("today", "--date", "2020-10-15"),
        ("contact", "list"),
        ("case", "list"),
        ("person", "search", "longname"),
    ):
        result = cli_with_store(*args, env=narrow)
        assert result.exit_code == 0, result.stderr
        assert "…" not in result.stdout, args
        assert all(len(line) <= 70 for line in result.stdout.splitlines()), args
    today = cli_with_store("today", "--date", "2020-10-15", env=narrow).stdout
    assert contact["ref"] in today and "07700 900222" in today
    listed = cli_with_store("contact", "list", env=narrow).stdout
    assert contact["ref"] in listed and "Bartholomew" in listed
    assert "isolate until" not in listed  # the least important column went first
