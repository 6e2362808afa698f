"""CLI: issue 14 "A tracer's first week", items 8 and 1 (all problems at once, wording,
durations, passphrase retries; a busy store keeps what was typed)."""

from __future__ import annotations

import json
import shlex
import threading
import time

import pytest

from tests.cli.casebook_helpers import add_case, add_contact, answers, as_json, ok, out_json, phone
from tests.conftest import PASSPHRASE
from tests.importers.helpers import CASE_HEADER, STANDARD_CASES, write_csv
from tracekit.errors import ExitCode


@pytest.fixture
def interactive(monkeypatch):
    monkeypatch.setattr("tracekit.cli.context.interactive", lambda: True)


# -- item 8: every validation problem of one command at once ---------------------------------


def test_case_add_reports_every_invalid_flag_at_once(cli_with_store):
    result = cli_with_store(
        "case",
        "add",
        "--name",
        "Ada Example",
        "--nhs-number",
        "1234567890",
        "--dob",
        "31/02/2020",
        "--test-date",
        "2020-10-10",
        "--asymptomatic",
    )
    assert result.exit_code == ExitCode.VALIDATION
    assert "2 values failed validation" in result.stderr
    assert "nhs_number:" in result.stderr and "--nhs-number" in result.stderr
    assert "date_of_birth:" in result.stderr and "--dob" in result.stderr
    assert "1234567890" not in result.stderr  # values are never echoed
    assert as_json(cli_with_store, "case", "list")["total"] == 0


def test_case_add_reports_all_problems_in_json(cli_with_store):
    result = cli_with_store(
        "--json",
        "case",
        "add",
        "--name",
        "Ada Example",
        "--phone",
        "12",
        "--test-date",
        "2020-13-40",
        "--result",
        "maybe",
        "--asymptomatic",
    )
    assert result.exit_code == ExitCode.VALIDATION
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "validation"
    assert all(field in error["message"] for field in ("phone:", "test_date:", "test_result:"))


def test_contact_add_and_updates_report_every_invalid_flag_at_once(cli_with_store):
    case = add_case(cli_with_store)
    added = cli_with_store(
        "contact",
        "add",
        case["ref"],
        "--name",
        "Bob Example",
        "--last-exposure",
        "2020-10-09",
        "--setting",
        "spaceship",
        "--proximity",
        "far",
        "--duration",
        "ages",
    )
    assert added.exit_code == ExitCode.VALIDATION
    assert all(f in added.stderr for f in ("setting:", "proximity_m:", "duration_min:", "--duration", "3 values"))
    contact = add_contact(cli_with_store, case["ref"], "Bob Example", n=2)
    updated = cli_with_store("contact", "update", contact["ref"], "--setting", "spaceship", "--status", "lost")
    assert updated.exit_code == ExitCode.VALIDATION
    assert "setting:" in updated.stderr and "trace_status:" in updated.stderr
    case_update = cli_with_store("case", "update", case["ref"], "--test-date", "soon", "--test-type", "x-ray")
    assert case_update.exit_code == ExitCode.VALIDATION
    assert "test_date:" in case_update.stderr and "test_type:" in case_update.stderr
    person_update = cli_with_store("person", "update", case["person"]["ref"], "--phone", "12", "--postcode", "nowhere")
    assert person_update.exit_code == ExitCode.VALIDATION
    assert "phone:" in person_update.stderr and "postcode:" in person_update.stderr


def test_case_add_at_a_terminal_shows_every_problem_then_asks_for_each(cli_with_store, interactive):
    result = cli_with_store(
        "--json",
        "case",
        "add",
        "--name",
        "Ada Example",
        "--phone",
        phone(1),
        "--nhs-number",
        "1234567890",
        "--dob",
        "31/02/2020",
        "--test-date",
        "2020-10-10",
        "--asymptomatic",
        input=answers("1980-02-01", ""),  # date of birth corrected, NHS number left out this time
    )
    case = out_json(result)
    assert case["person"]["date_of_birth"] == "1980-02-01" and case["person"]["nhs_number"] is None
    first_question = result.stderr.index("Date of birth")
    assert (
        result.stderr.index("nhs_number:") < first_question and result.stderr.index("date_of_birth:") < first_question
    )


# -- item 8: durations where the unit is obvious, and wording ----------------------------------


@pytest.mark.parametrize(
    ("typed", "minutes"), [("20 mins", 20), ("20 minutes", 20), ("1 hour", 60), ("1h30m", 90), ("15", 15)]
)
def test_contact_duration_takes_units(cli_with_store, typed, minutes):
    case = add_case(cli_with_store)
    contact = add_contact(cli_with_store, case["ref"], "Bob Example", "--duration", typed, n=2)
    assert contact["duration_min"] == minutes


def test_counts_agree_with_their_nouns(cli_with_store, tmp_path):
    case = add_case(cli_with_store)
    contact = add_contact(cli_with_store, case["ref"], "Bob Example", n=2)
    called = ok(cli_with_store, "contact", "call", contact["ref"], "--outcome", "no-answer")
    assert "(1 call so far)" in called.stdout
    wrong_kind = cli_with_store("contact", "show", case["ref"])
    assert wrong_kind.exit_code == ExitCode.VALIDATION
    assert "not an exposure reference" in wrong_kind.stderr and "a exposure" not in wrong_kind.stderr


def test_import_summary_counts_one_new_person(cli_with_store, tmp_path):
    path = write_csv(tmp_path / "cases.csv", CASE_HEADER, STANDARD_CASES[:1])
    result = ok(cli_with_store, "import", "cases", str(path))
    assert "(1 new person)" in result.stdout and "new people" not in result.stdout


# -- item 1: a busy store keeps what was typed -------------------------------------------------


CASE_FLAGS = ("--name", "Ada Example", "--phone", "07700 900001", "--test-date", "2020-10-10", "--asymptomatic")


def test_a_script_is_told_who_it_waits_for_and_gives_up_after_the_timeout(cli_with_store, other_writer):
    started = time.monotonic()
    result = cli_with_store("case", "add", *CASE_FLAGS, env={"TRACEKIT_BUSY_TIMEOUT": "0.3"})
    assert result.exit_code == ExitCode.STORE_BUSY
    assert time.monotonic() - started < 5
    assert "The store is busy: another tracekit process is writing to it; waiting up to 0.3 s" in result.stderr
    assert "Ada Example" not in result.stderr  # no terminal: the answers are not echoed anywhere


def test_at_a_terminal_giving_up_prints_the_command_that_keeps_the_answers(
    cli_with_store, other_writer, interactive, monkeypatch
):
    from tracekit.store.core import Store

    monkeypatch.setattr("tracekit.cli.context.stderr_is_terminal", lambda: True)
    original = Store._try_write_lock
    attempts = []

    def ctrl_c_while_waiting(self, seconds):
        attempts.append(seconds)
        if len(attempts) > 3:
            raise KeyboardInterrupt
        return original(self, seconds)

    monkeypatch.setattr(Store, "_try_write_lock", ctrl_c_while_waiting)
    result = cli_with_store(
        "case",
        "add",
        "--name",
        "Ada Example",
        "--phone",
        "07700 900001",
        input=answers("10/10/2020", "none"),
        env={"TRACEKIT_BUSY_TIMEOUT": "0.1"},
    )
    assert result.exit_code == ExitCode.INTERRUPTED, result.stderr
    assert "gave up waiting for the store while another tracekit process was writing to it" in result.stderr
    printed = [line.strip() for line in result.stderr.splitlines() if line.strip().startswith("tracekit case add")]
    assert printed == [
        "tracekit case add --name 'Ada Example' --phone '07700 900001' --test-date 2020-10-10 --asymptomatic"
    ]
    monkeypatch.undo()
    other_writer.conn.execute("ROLLBACK")
    again = cli_with_store("--json", *shlex.split(printed[0])[1:])
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["person"]["phone"] == "+447700900001"


def test_at_a_terminal_it_keeps_waiting_past_the_script_timeout(cli_with_store, store_path, interactive):
    from tracekit.store import open_store

    ready, done = threading.Event(), threading.Event()

    def import_running() -> None:
        with open_store(store_path, bytearray(PASSPHRASE.encode())) as holder, holder.transaction():
            ready.set()
            time.sleep(1.0)
        done.set()

    thread = threading.Thread(target=import_running)
    thread.start()
    assert ready.wait(5)
    result = cli_with_store("case", "add", *CASE_FLAGS, env={"TRACEKIT_BUSY_TIMEOUT": "0.1"})
    thread.join()
    assert done.is_set()
    assert result.exit_code == 0, result.stderr
    assert "The store is free again" in result.stderr and "Recorded case" in result.stdout
