"""Lists for scripts (issue 14, item 15): one JSON list shape for every list command,
``--all --json`` as JSON Lines written as the rows are read (flat memory), snake_case
``store info`` keys, ``case show --json`` with the contacts the screen shows, and usage
errors under ``--json`` as a JSON object like every other error."""

from __future__ import annotations

import io
import json
import re
from datetime import date

import pytest

from tests.cli.casebook_helpers import as_json, ok
from tests.cli.test_cli_casebook_masking import _assert_no_secrets, marked  # noqa: F401 - a fixture
from tracekit.domain.refs import RefKind, new_ref
from tracekit.errors import ExitCode
from tracekit.records import Casebook, PersonInput

LIST_KEYS = {"items", "total", "limit", "offset", "next_offset"}


@pytest.fixture
def book(store, store_path):
    """Three cases of Ada and Ben Example (two contacts of the first), closed again for the CLI."""
    casebook = Casebook(store, today=date(2020, 11, 1))
    cases = [
        casebook.add_case(
            person=PersonInput(name=f"{name} Example", phone=f"07700 900{n:03d}"),
            new_person=True,
            test_date=f"2020-10-{10 + n}",
            asymptomatic=True,
        )
        for n, name in enumerate(("Ada", "Ben", "Cy"))
    ]
    for n in range(2):
        casebook.add_contact(
            cases[0].ref,
            person=PersonInput(name=f"Dee{n} Example", phone=f"07700 900{20 + n:03d}"),
            last_exposure="2020-10-09",
            setting="household",
        )
    store.close()
    return cases


def _clone_cases(store_path, how_many: int) -> None:
    """``how_many`` more cases, copies of the first with new references, in one transaction
    (thousands in a fraction of a second: adding them one by one takes a minute)."""
    from tests.conftest import PASSPHRASE
    from tracekit.store import open_store

    with open_store(store_path, bytearray(PASSPHRASE.encode())) as store:
        columns = [row[1] for row in store.conn.execute("PRAGMA table_info(cases)") if row[1] not in ("id", "ref")]
        names = ", ".join(columns)
        refs = {new_ref(RefKind.CASE) for _ in range(how_many * 2)}
        with store.transaction() as conn:
            conn.executemany(
                f"INSERT INTO cases (ref, {names}) SELECT ?, {names} FROM cases WHERE id = 1",
                [(ref,) for ref in list(refs)[:how_many]],
            )


# -- one shape --------------------------------------------------------------------------
def test_every_list_command_prints_the_one_list_shape(book, cli_with_store):
    ok(cli_with_store, "role", "mark", book[2].person.ref, "--role", "other", "--reason", "test")
    commands = {
        ("case", "list"): 3,
        ("contact", "list"): 2,
        ("person", "search", "Example"): None,
        ("today", "--date", "2020-10-10"): 2,
        ("audit", "show"): None,
        ("export", "list"): 0,
        ("role", "list"): 1,
        ("recipients", "list"): 0,
        ("referrals", "list"): 0,
        ("policy", "list"): None,
        ("rules", "list"): None,
    }
    pages = {command: as_json(cli_with_store, *command) for command in commands}
    for command, total in commands.items():
        page = pages[command]
        assert set(page) >= LIST_KEYS, command
        assert isinstance(page["items"], list) and page["next_offset"] is None, command
        if total is not None:
            assert page["total"] == total == len(page["items"]), command
    # the lists that are not paged say so: everything, no page size
    for command in (
        ("role", "list"),
        ("recipients", "list"),
        ("referrals", "list"),
        ("policy", "list"),
        ("rules", "list"),
    ):
        page = pages[command]
        assert page["limit"] is None and page["offset"] == 0 and page["total"] == len(page["items"]), command


def test_next_offset_leads_to_the_next_page(book, cli_with_store):
    first = as_json(cli_with_store, "case", "list", "--limit", "2")
    assert first["next_offset"] == 2 and first["total"] == 3
    second = as_json(cli_with_store, "case", "list", "--limit", "2", "--offset", str(first["next_offset"]))
    assert second["next_offset"] is None and [c["ref"] for c in second["items"]] == [book[0].ref]
    # the worklist pages both of its lists the same way
    work = as_json(cli_with_store, "today", "--date", "2020-10-10", "--limit", "1")
    assert work["total"] == 2 and work["next_offset"] == 1 and work["date"] == "2020-10-10"
    rest = as_json(cli_with_store, "today", "--date", "2020-10-10", "--limit", "1", "--offset", "1")
    assert rest["next_offset"] is None and rest["items"][0]["ref"] != work["items"][0]["ref"]
    assert set(work["isolation_ends_today"]) >= LIST_KEYS
    # bundles are counted; the list is paged like the others
    assert as_json(cli_with_store, "export", "list", "--limit", "1")["total"] == 0


def test_a_search_is_not_counted_and_says_so(book, cli_with_store):
    first = as_json(cli_with_store, "person", "search", "Example", "--limit", "2")
    assert first["total"] is None and first["limit"] == 2 and first["next_offset"] == 2
    last = as_json(cli_with_store, "person", "search", "Example", "--limit", "3", "--offset", "2")
    assert last["next_offset"] is None and len(last["items"]) == 3
    people = [p["ref"] for p in first["items"] + last["items"]]
    assert len(people) == len(set(people)) == 5  # Ada, Ben, Cy and the two contacts


# -- --all: JSON Lines, written as read --------------------------------------------------
def _lines(result) -> list[dict]:
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_all_writes_every_row_past_the_page_cap_as_json_lines(book, cli_with_store, store_path):
    _clone_cases(store_path, 1200)
    capped = as_json(cli_with_store, "case", "list", "--limit", "1000")
    assert len(capped["items"]) == 1000 and capped["total"] == 1203 and capped["next_offset"] == 1000
    rows = _lines(cli_with_store("case", "list", "--all", "--json"))
    assert len(rows) == 1203 and len({r["ref"] for r in rows}) == 1203
    assert [r["ref"] for r in rows[:1000]] == [c["ref"] for c in capped["items"]]  # the order of the pages
    assert rows[-1]["ref"] == book[0].ref and set(rows[0]) == set(capped["items"][0])
    assert len(_lines(cli_with_store("case", "list", "--all", "--json", "--offset", "1200"))) == 3


def test_all_streams_every_list_that_pages(book, cli_with_store):
    contacts = _lines(cli_with_store("contact", "list", "--all", "--json", "--case", book[0].ref))
    assert len(contacts) == 2 and all(c["case"] == book[0].ref for c in contacts)
    assert len(_lines(cli_with_store("person", "search", "Example", "--all", "--json"))) == 5
    to_call = _lines(cli_with_store("today", "--date", "2020-10-10", "--all", "--json"))
    assert [c["ref"] for c in to_call] == [
        c["ref"] for c in as_json(cli_with_store, "today", "--date", "2020-10-10")["items"]
    ]
    log = _lines(cli_with_store("audit", "show", "--all", "--json"))
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1)) and len(log) >= 5
    assert _lines(cli_with_store("export", "list", "--all", "--json")) == []


def test_all_reads_one_row_only_after_writing_the_one_before(book, cli_with_store, store_path, monkeypatch):
    """Flat memory, structurally: the command hands the store's iterator to the writer,
    which writes each row before it asks for the next. Collecting the rows first (a list,
    a sort) would read the second row before the first is written, and fail here."""
    _clone_cases(store_path, 20)
    written: list[object] = []
    from tracekit.cli import safe_text

    real_json = safe_text.terminal_json
    monkeypatch.setattr(safe_text, "terminal_json", lambda data: written.append(data) or real_json(data))
    real_iter = Casebook.iter_cases

    def one_at_a_time(self, **filters):
        for read, case in enumerate(real_iter(self, **filters)):
            assert len(written) == read, f"row {read + 1} was read before row {read} was written"
            yield case

    monkeypatch.setattr(Casebook, "iter_cases", one_at_a_time)
    assert len(_lines(cli_with_store("case", "list", "--all", "--json"))) == 23 == len(written)


def test_the_writer_consumes_an_iterator_one_row_at_a_time():
    from tracekit.cli.listing import write_json_lines

    stream = io.StringIO()

    def rows():
        for n in range(5):
            assert stream.getvalue().count("\n") == n  # everything before was written already
            yield {"n": n}

    assert write_json_lines(rows(), stream) == 5
    assert [json.loads(line)["n"] for line in stream.getvalue().splitlines()] == list(range(5))


def test_all_is_for_scripts(book, cli_with_store):
    result = cli_with_store("case", "list", "--all")
    assert result.exit_code == ExitCode.USAGE and result.stdout == ""
    assert "--all writes every row as JSON Lines" in result.stderr and "add --json" in result.stderr


# -- store info, case show ---------------------------------------------------------------
def test_store_info_json_keys_are_snake_case(book, cli_with_store):
    info = as_json(cli_with_store, "store", "info")

    def keys(value):
        if isinstance(value, dict):
            for key, inner in value.items():
                yield key
                yield from keys(inner)

    assert all(re.fullmatch(r"[a-z0-9_]+", key) for key in keys(info)), sorted(keys(info))
    counts = info["record_counts"]
    assert counts["cases"] == 3 and counts["call_attempts"] == 0 and counts["audit_entries"] >= 5
    assert "sensitive_role_marks" in counts and "recall_requests" in counts
    assert "call attempts" in ok(cli_with_store, "store", "info").stdout  # words on the screen


def test_case_show_json_has_the_contacts_the_screen_shows(book, cli_with_store):
    shown = as_json(cli_with_store, "case", "show", book[0].ref)
    contacts = shown["contacts"]
    assert set(contacts) >= LIST_KEYS and contacts["total"] == 2 and contacts["next_offset"] is None
    human = ok(cli_with_store, "case", "show", book[0].ref).stdout
    assert all(c["ref"] in human and c["contact"]["name"] in human for c in contacts["items"])
    assert as_json(cli_with_store, "case", "show", book[1].ref)["contacts"]["items"] == []


def test_case_show_json_masks_contacts_as_the_screen_does(cli_with_store, marked):
    # the marked officer is a contact of Ada's case: masked, on the screen and in JSON alike
    of_other = as_json(cli_with_store, "case", "show", marked["other_case"])
    officer = next(c for c in of_other["contacts"]["items"] if c["ref"] == marked["as_contact"])
    assert officer["contact"]["masked"] is True and officer["contact"]["ref"] == marked["person"]
    assert officer["contact"]["withheld"] in ("sensitive-role", "sensitive-by-association")
    # the officer's own case: their household contact is withheld by association
    own = as_json(cli_with_store, "case", "show", marked["case"])
    household = next(c for c in own["contacts"]["items"] if c["ref"] == marked["household"])
    assert household["withheld"] == "sensitive-by-association" and household["contact"]["masked"] is True
    assert household["setting"] == {"withheld": "sensitive-by-association"}
    for document in (of_other, own):
        text = json.dumps(document, ensure_ascii=False)
        _assert_no_secrets(text)
        assert "Hal Example" not in text and "900067" not in text
    for case_ref, document in ((marked["other_case"], of_other), (marked["case"], own)):
        human = ok(cli_with_store, "case", "show", case_ref).stdout
        assert [c["ref"] for c in document["contacts"]["items"] if c["ref"] in human] == [
            c["ref"] for c in document["contacts"]["items"]
        ]


# -- usage errors under --json ----------------------------------------------------------------
@pytest.mark.parametrize(
    "args, expected",
    [
        (("--json", "case", "list", "--frobnicate"), "No such option: --frobnicate"),
        (("case", "list", "--json", "--frobnicate"), "No such option: --frobnicate"),
        (("--json", "--frobnicate", "case", "list"), "No such option: --frobnicate"),
        (("--json", "case", "list", "--limit", "5000"), "--limit"),
        (("--json", "case", "show"), "Missing argument"),
        (("--json", "case", "frobnicate"), "No such command"),
    ],
)
def test_usage_errors_under_json_are_one_json_object(cli_with_store, args, expected):
    result = cli_with_store(*args)
    assert result.exit_code == ExitCode.USAGE
    assert result.stdout == ""
    error = json.loads(result.stderr)["error"]
    assert error["code"] == "usage" and error["exit_code"] == ExitCode.USAGE and expected in error["message"]
    assert error["hint"].startswith("see 'tracekit") and error["hint"].endswith("--help'")
    assert "╭" not in result.stderr and "Usage:" not in result.stderr


def test_usage_errors_without_json_are_shown_as_before(cli_with_store):
    result = cli_with_store("case", "list", "--frobnicate")
    assert result.exit_code == ExitCode.USAGE and "No such option" in result.stderr
    assert not result.stderr.lstrip().startswith("{")
