"""Issue 14 item 6: what the tables print, at 60 and 80 columns and piped.

A reference, a date, a phone number or a key is never cut ("…"), wrapped or split across
lines; a narrow terminal drops the least important columns instead; piped into a file or
a program (no COLUMNS), a table is written whole: every column, nothing wrapped, not
fitted to 80 columns, no line ending in spaces.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from pyrage import x25519
from rich.console import Console

from tests.cli.casebook_helpers import add_case, add_contact, as_json, ok
from tracekit.cli import render

LONG_NAME = "Bartholomew Maximilian Longname-Example"


@pytest.fixture
def book(cli_with_store):
    """A case with a long-named household contact and two others (made-up data)."""
    case = add_case(cli_with_store, "Ada Example", n=1)
    contacts = [
        add_contact(cli_with_store, case["ref"], LONG_NAME, n=222, setting="household"),
        add_contact(
            cli_with_store, case["ref"], "Di Example", "--proximity", "1", "--duration", "20", n=14, last="2020-10-08"
        ),
        add_contact(cli_with_store, case["ref"], "Cy Example", "--proximity", "5", n=13, setting="social"),
    ]
    return SimpleNamespace(case=case, contacts=contacts)


def _at(cli, *args: str, env: dict[str, str] | None = None):
    result = cli(*args, env=env)
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def _assert_fits_and_nothing_split(shown: str, width: int, expected: list[str]) -> None:
    lines = shown.splitlines()
    assert "…" not in shown
    assert all(len(line) <= width for line in lines), [line for line in lines if len(line) > width]
    assert all(line == line.rstrip() for line in lines)
    for value in expected:
        assert any(value in line for line in lines), f"{value!r} is not whole on one line:\n{shown}"


@pytest.mark.parametrize("width", [60, 80])
def test_case_show_keeps_every_reference_date_and_phone_whole(cli_with_store, book, width):
    """At 60 columns the contacts table squeezed the person column to five cells: 'P-YRE'
    over '8B0', a name two letters a line."""
    shown = _at(cli_with_store, "case", "show", book.case["ref"], env={"COLUMNS": str(width)}).stdout
    expected = [book.case["ref"], book.case["person"]["ref"], "10 Oct 2020", "8 Oct 2020", "07700 900001"]
    for contact in book.contacts:
        expected += [contact["ref"], contact["contact"]["ref"]]
    expected += ["07700 900222", "07700 900014", "07700 900013"]
    _assert_fits_and_nothing_split(shown, width, expected)
    assert "Longname-Example" in shown  # a long word of a name is not folded either


@pytest.mark.parametrize("width", [60, 80])
def test_today_keeps_every_reference_date_and_phone_whole(cli_with_store, book, width):
    shown = _at(cli_with_store, "today", "--date", "2020-10-15", env={"COLUMNS": str(width)}).stdout
    expected = [book.case["ref"], "23 Oct 2020", "22 Oct 2020", "9 Oct 2020", "8 Oct 2020"]
    expected += [c["ref"] for c in book.contacts] + ["07700 900222", "07700 900014", "07700 900013"]
    _assert_fits_and_nothing_split(shown, width, expected)


@pytest.mark.parametrize("command", [("case", "list"), ("contact", "list"), ("person", "search", "example")])
@pytest.mark.parametrize("width", [60, 80])
def test_lists_keep_every_value_whole(cli_with_store, book, command, width):
    full = ok(cli_with_store, *command).stdout  # COLUMNS=200: every column
    shown = _at(cli_with_store, *command, env={"COLUMNS": str(width)}).stdout
    header = shown.splitlines()[0].split()
    refs = re.findall(r"\b[CPE]-[0-9A-Z]{6}\b", full)
    # every reference still in a column shown is whole on one line (a contact's case
    # column may have gone on a narrow terminal)
    expected = [ref for ref in refs if not ref.startswith("C-") or command[0] == "case" or "case" in header]
    _assert_fits_and_nothing_split(shown, width, expected)
    # and no date is broken between its day and month and its year
    month = r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    assert len(re.findall(rf"\b\d{{1,2}} {month} \d{{4}}\b", shown)) == len(re.findall(rf"\b{month}\b", shown))


def test_role_and_recipients_lists_never_cut_a_value(cli_with_store, book, monkeypatch):
    """They were Rich's default Table: at 60 columns 'protected-w…' and 'age1abc…'."""
    person = book.contacts[0]["contact"]["ref"]
    ok(cli_with_store, "role", "mark", person, "--role", "protected-witness", "--reason", "court order")
    key = str(x25519.Identity.generate().to_public())
    ok(cli_with_store, "recipients", "add", "Vetted Team North", key, "--role", "vetted-team")
    at_60 = {"COLUMNS": "60"}
    roles = _at(cli_with_store, "role", "list", env=at_60).stdout
    _assert_fits_and_nothing_split(roles, 60, [person, "protected-witness"])
    recipients = _at(cli_with_store, "recipients", "list", env=at_60).stdout
    # the 62-character key cannot fit 60 columns beside a name: the row is longer than
    # the terminal (which wraps it on screen) rather than the key cut or split
    assert "…" not in recipients and any(key in line for line in recipients.splitlines())
    at_80 = _at(cli_with_store, "recipients", "list", env={"COLUMNS": "80"}).stdout
    _assert_fits_and_nothing_split(at_80, 80, [key, "Vetted Team"])


def test_keys_show_prints_the_key_whole_at_60_columns(cli_with_store):
    data = as_json(cli_with_store, "keys", "show")
    shown = _at(cli_with_store, "keys", "show", env={"COLUMNS": "60"}).stdout
    assert data["public_key"] in shown.splitlines() and data["fingerprint"] in shown


def test_export_list_never_cuts_a_file_name_or_a_time() -> None:
    handovers = [
        SimpleNamespace(
            created_at="2026-12-03T12:27:06+00:00",
            recipient="Central Team North West",
            policy="central-handover",
            record_counts={"cases": 1204, "contacts": 5931},
            file_name="handover-central-team-north-west-20261203T122706Z.tar.age",
        ),
    ]
    for width in (60, 80):
        console = Console(width=width, no_color=True, emoji=False, highlight=False)
        with console.capture() as captured:
            console.print(render.handovers_table(handovers), crop=False)
        shown = captured.get()
        assert "…" not in shown and all(line == line.rstrip() for line in shown.splitlines())
        assert any(handovers[0].file_name in line for line in shown.splitlines())
        assert any("2026-12-03T12:27:06+00:00" in line for line in shown.splitlines())


# -- piped -----------------------------------------------------------------------------------


@pytest.fixture
def piped(monkeypatch):
    """stdout is not a terminal (CliRunner's never is) and COLUMNS is not set: a pipe."""
    monkeypatch.delenv("COLUMNS", raising=False)


def test_a_piped_table_is_written_whole(cli_with_store, book, piped):
    """Piped, Rich assumed 80 columns: 'contact list' dropped its status and isolation
    columns, wrapped the long name and padded every line with spaces."""
    shown = ok(cli_with_store, "contact", "list").stdout
    lines = shown.splitlines()
    assert lines[0].split() == ["ref", "case", "person", "exposed", "risk", "status", "isolate", "until"]
    assert max(len(line) for line in lines) > 80  # not fitted to a made-up terminal
    assert all(line == line.rstrip() for line in lines)
    assert any(LONG_NAME in line and "not yet reached" in line and "23 Oct 2020" in line for line in lines)


def test_a_piped_role_list_with_a_long_value_is_whole_and_unpadded(cli_with_store, book, piped):
    person = book.contacts[0]["contact"]["ref"]
    ok(cli_with_store, "role", "mark", person, "--role", "other", "--reason", "court order")
    long_name = "Vetted Team North " + "x" * 70
    ok(
        cli_with_store,
        "recipients",
        "add",
        long_name,
        str(x25519.Identity.generate().to_public()),
        "--role",
        "vetted-team",
    )
    for command in (
        ("role", "list"),
        ("recipients", "list"),
        ("case", "show", book.case["ref"]),
        ("today", "--date", "2020-10-15"),
    ):
        shown = ok(cli_with_store, *command).stdout
        assert "…" not in shown, command
        assert all(line == line.rstrip() for line in shown.splitlines()), command
    roles = ok(cli_with_store, "role", "list").stdout.splitlines()
    assert roles[0].split() == ["person", "role", "marked", "at", "referral"]
    recipients = ok(cli_with_store, "recipients", "list").stdout.splitlines()
    assert recipients[0].split() == ["name", "role", "public", "key", "added"]
    assert any(long_name in line for line in recipients)  # one line, not wrapped at 80
