"""CLI: rules list|show|pin|unpin."""

from __future__ import annotations

import re

from tests.cli.casebook_helpers import add_case, add_contact, as_json, ok
from tracekit.errors import ExitCode

RULESET_KEYS = {
    "id",
    "title",
    "valid_from",
    "valid_until",
    "description",
    "infectious_days_before",
    "infectious_days_after",
    "case_isolation_days",
    "contact_isolation_days",
    "clauses",
    "sources",
}
LAUNCH, MID_2020, DECEMBER = "england-2020-05-28", "england-2020-07-30", "england-2020-12-14"


def test_rules_list(cli_with_store):
    listed = as_json(cli_with_store, "rules", "list")
    assert set(listed) == {"items", "total", "limit", "offset", "next_offset", "in_force_today", "pinned"}
    assert [r["id"] for r in listed["items"]] == [LAUNCH, MID_2020, DECEMBER]
    assert set(listed["items"][0]) == RULESET_KEYS
    assert listed["items"][0]["valid_until"] == "2020-07-29" and listed["items"][-1]["valid_until"] is None
    assert listed["in_force_today"] == DECEMBER and listed["pinned"] is None
    human = ok(cli_with_store, "rules", "list")
    assert LAUNCH in human.stdout and "28 May 2020" in human.stdout and "in force today" in human.stdout
    assert "in force on its date" in human.stderr


def test_rules_list_and_show_need_no_store(cli):
    assert len(as_json(cli, "rules", "list")["items"]) == 3
    assert as_json(cli, "rules", "show", LAUNCH)["id"] == LAUNCH


def test_rules_show(cli_with_store):
    shown = as_json(cli_with_store, "rules", "show", MID_2020)
    assert set(shown) == RULESET_KEYS | {"in_force_today", "pinned"}
    assert shown["case_isolation_days"] == 10 and shown["contact_isolation_days"] == 14
    assert shown["infectious_days_before"] == 2 and shown["infectious_days_after"] == 10
    assert [c["id"] for c in shown["clauses"]][:2] == ["household", "direct-contact"]
    assert all(set(s) == {"id", "title", "publisher", "date", "url"} for s in shown["sources"])
    assert shown["in_force_today"] is False and shown["pinned"] is False

    human = ok(cli_with_store, "rules", "show", LAUNCH).stdout
    assert "NHS Test and Trace at launch" in human and "from 28 May 2020 to 29 Jul 2020" in human
    assert "7 days from the day after onset" in human and "14 days from the day after the last exposure" in human
    assert "2m-15min" in human and "within 2 metres for more than 15 minutes" in human
    assert "household" not in human.split("Close contact")[1].split("Sources")[0]  # not a launch clause
    assert "World Health Organization" in human and "https://www.gov.uk/" in human

    default = as_json(cli_with_store, "rules", "show")
    assert default["id"] == DECEMBER and default["in_force_today"] is True
    missing = cli_with_store("rules", "show", "england-1918")
    assert missing.exit_code == ExitCode.NOT_FOUND and LAUNCH in missing.stderr


def test_rules_pin_recomputes_and_unpin_restores(cli_with_store):
    case = add_case(cli_with_store, "Ada Example", n=1)  # onset 8 Oct 2020: mid-2020 rules, 10 days
    contact = add_contact(cli_with_store, case["ref"], "Bob Example", "--proximity", "0.5", "--duration", "5", n=2)
    assert case["isolation_end"] == "2020-10-18" and contact["clause"] == "1m-1min"

    assert as_json(cli_with_store, "rules", "pin", LAUNCH) == {
        "pinned": LAUNCH,
        "recomputed": {"cases": 1, "contacts": 1, "cases_changed": 1, "contacts_changed": 1},
    }
    pinned_case = as_json(cli_with_store, "case", "show", case["ref"])
    assert pinned_case["ruleset"] == LAUNCH and pinned_case["isolation_end"] == "2020-10-15"  # 7 days
    pinned_contact = as_json(cli_with_store, "contact", "show", contact["ref"])
    assert pinned_contact["close_contact"] is False and pinned_contact["closeness"]["ruleset"] == LAUNCH
    listed = as_json(cli_with_store, "rules", "list")
    assert listed["pinned"] == LAUNCH
    assert "pinned" in ok(cli_with_store, "rules", "list").stdout
    shown = as_json(cli_with_store, "rules", "show")
    assert shown["id"] == LAUNCH and shown["pinned"] is True
    assert "pinned in this store" in ok(cli_with_store, "rules", "show").stdout

    assert as_json(cli_with_store, "rules", "unpin") == {
        "pinned": None,
        "was_pinned": LAUNCH,
        "recomputed": {"cases": 1, "contacts": 1, "cases_changed": 1, "contacts_changed": 1},
    }
    assert as_json(cli_with_store, "case", "show", case["ref"])["isolation_end"] == "2020-10-18"
    assert "No rule set was pinned" in ok(cli_with_store, "rules", "unpin").stdout
    assert as_json(cli_with_store, "rules", "unpin")["recomputed"] is None
    said = ok(cli_with_store, "rules", "pin", LAUNCH).stdout
    assert "changed for 1 of 1 cases and 1 of 1 contacts" in " ".join(said.split())
    said = ok(cli_with_store, "rules", "pin", LAUNCH).stdout
    assert "no stored values changed" in " ".join(said.split())
    ok(cli_with_store, "rules", "unpin")
    unknown = cli_with_store("rules", "pin", "england-1918")
    assert unknown.exit_code == ExitCode.NOT_FOUND
    assert as_json(cli_with_store, "rules", "list")["pinned"] is None


def test_json_shapes_of_the_case_book_commands_are_documented():
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs"
    json_doc = (docs / "json.md").read_text()
    for command in (
        "case add",
        "case list",
        "case show",
        "case update",
        "case close",
        "case tree",
        "contact add",
        "contact list",
        "contact show",
        "contact update",
        "contact call",
        "contact promote",
        "person show",
        "person search",
        "person update",
        "person merge",
        "today",
        "rules list",
        "rules show",
        "rules pin",
        "rules unpin",
    ):
        assert f"`{command}" in json_doc, command
    guide = (docs / "guide-tracer.md").read_text()
    for command in ("case add", "contact add", "today", "contact call", "contact promote", "case tree", "rules show"):
        # a screen may state its width first ("$ COLUMNS=80 tracekit ...")
        assert re.search(rf"^\$ (COLUMNS=\d+ )?tracekit {command}", guide, re.MULTILINE), command
