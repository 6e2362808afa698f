"""Outside text reaches the terminal as text: never read as Rich markup, never obeyed as a
terminal control (tracekit.cli.safe_text and every place the CLI prints outside values)."""

from __future__ import annotations

import json
import re

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text
from typer.testing import CliRunner

from tests.cli.casebook_helpers import add_case, add_contact
from tests.conftest import CHEAP_KDF, PASSPHRASE
from tests.importers.helpers import CASE_HEADER, STANDARD_CASES, write_csv
from tracekit.cli import app
from tracekit.cli.safe_text import safe_markup, terminal_json, visible
from tracekit.errors import ExitCode
from tracekit.store import create_store, open_store

#: What a terminal would act on: C0 but newline and tab, DEL, C1, bidi controls and
#: marks, line and paragraph separators, lone surrogates.
RAW_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)

#: Markup Rich would read (or fail on), backslashes around brackets, escape sequences.
HOSTILE_PIECES = [
    "[/x]",
    "[bold]",
    "[/]",
    "[link=https://example.com/a]",
    "[@click]",
    "[red",
    "]",
    "[1]",
    "\\",
    "\\[",
    "\\\\[b]",
    "x\\",
    ":smile:",
    "\x1b[2J",
    "\x1b]0;title\x07",
    "\r",
    "\x9b31m",
    "\x85",
    "\x7f",
    "\u202e",
    "\u2066",
    "\u200f",
    "Ada",
    " ",
    "é",
]
hostile = (
    st.lists(st.sampled_from(HOSTILE_PIECES), min_size=1, max_size=6)
    .map("".join)
    .filter(lambda text: text.strip() != "")
)


def squashed(text: str) -> str:
    """Without whitespace: Rich may wrap a long line at a space."""
    return "".join(text.split())


# -- the function ------------------------------------------------------------------------------
def test_visible_replaces_what_a_terminal_obeys():
    assert visible("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert visible("\x1b]0;x\x07") == "\\x1b]0;x\\x07"
    assert visible("fake\rok") == "fake\\rok"
    assert visible("\x9b\x85\x7f") == "\\x9b\\x85\\x7f"
    assert visible("\u202eevil\u2066\u2069") == "\\u202eevil\\u2066\\u2069"
    assert visible("line\u2028two") == "line\\u2028two"
    assert visible("bad \udcff byte") == "bad \\udcff byte"
    assert visible("one\ntwo\tx") == "one\\ntwo\\tx"
    assert visible("one\ntwo\tx", multiline=True) == "one\ntwo\tx"
    assert visible("Zoë O'Brien [1] \\") == "Zoë O'Brien [1] \\"


#: Markup around a value, and what it renders as before and after the value.
AROUND = [
    ("", "", "", ""),
    ("[dim]", "[/dim]", "", ""),
    ("(", ")", "(", ")"),
    ("[bold red]", "[/bold red] x", "", " x"),
    ("[b]", "[/b][dim]z[/dim]", "", "z"),
]


#: Markup around a value, and what it renders as before and after the value.
AROUND = [
    ("", "", "", ""),
    ("[dim]", "[/dim]", "", ""),
    ("(", ")", "(", ")"),
    ("[bold red]", "[/bold red] x", "", " x"),
    ("[b]", "[/b][dim]z[/dim]", "", "z"),
]


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(list("[]\\/=@#ab \n\x1b\x9b\u202e")), max_size=24),
    around=st.sampled_from(AROUND),
)
def test_safe_markup_renders_as_the_text_itself_whatever_markup_surrounds_it(text, around):
    before, after, shown_before, shown_after = around
    rendered = Text.from_markup(before + safe_markup(text, multiline=True) + after, emoji=False).plain
    assert rendered == shown_before + visible(text, multiline=True) + shown_after


def test_backslashes_before_brackets_and_at_the_end_are_kept():
    # rich.markup.escape keeps "\[" as it is, and Rich then shows "[": the backslash is lost
    for text in ("\\[", "a \\[1]", "\\\\[", "ends\\", "ends\\\\", "\\[b]", "\\\\[/x]"):
        for before, after in (("", ""), ("[dim]", "[/dim]")):
            assert Text.from_markup(f"{before}{safe_markup(text)}{after}").plain == text


def test_terminal_json_is_the_same_value_without_raw_controls():
    data = {"name": "a\x1b[2J\x9b\u202e\ud800 é", "n": 1}
    text = terminal_json(data)
    assert not RAW_CONTROL.search(text) and "é" in text
    assert json.loads(text) == data


def test_console_output_has_no_escape_sequence():
    console = Console(width=80, force_terminal=False, no_color=True)
    value = safe_markup("x\x1b[2J\x1b]0;t\x07\x9b")
    with console.capture() as captured:
        console.print(f"[bold]{value}[/bold]")
    assert not RAW_CONTROL.search(captured.get())
    assert "x\\x1b[2J\\x1b]0;t\\x07\\x9b" in captured.get()


# -- the import note (issue 12, item 6) ------------------------------------------------------
def test_a_markup_header_is_shown_literally_in_the_ignored_columns_note(cli_with_store, tmp_path):
    """A header '[/bogus]' was imported, then printing the note raised MarkupError: exit 1
    after the work was done, and on every re-run."""
    header = [*CASE_HEADER, "[/bogus]", "Extra\x1b[2J"]
    path = write_csv(tmp_path / "cases.csv", header, [row + ["x", "y"] for row in STANDARD_CASES])
    for _ in range(2):  # the re-run (nothing to import) prints the note too
        result = cli_with_store("import", "cases", str(path))
        assert result.exit_code == 0, result.stderr
        assert "Ignored columns (not mapped to a field): '[/bogus]', 'Extra\\x1b[2J'" in result.stderr
        assert "\x1b" not in result.stderr + result.stdout
    assert "Nothing changed" in result.stdout


# -- the property: every printed field of the CLI ------------------------------------------
def _strings(value: object) -> list[str]:
    """Every string in a JSON document."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def _store_directly(store_path, sql: str, *params: object) -> None:
    """Put a value into the store as an older version or a bundle could have: past today's
    validation, so that what is printed is tested for every character."""
    with open_store(store_path, bytearray(PASSPHRASE.encode())) as store, store.transaction() as conn:
        conn.execute(sql, params)


FIELDS = ("name", "notes", "address", "contact_name", "contact_notes", "reason", "header", "mapped")


# 12 examples of 8 hostile texts each (one per field) through about 25 commands: ~40 s
@settings(
    max_examples=12,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(texts=st.fixed_dictionaries({field: hostile for field in FIELDS}))
def test_outside_text_is_shown_literally_in_every_output(tmp_path_factory, texts):
    """Each printed field gets its own hostile text: markup, backslashes, escape sequences."""
    folder = tmp_path_factory.mktemp("escape")
    store_path = folder / "e.store"
    with create_store(store_path, bytearray(PASSPHRASE.encode()), kdf=CHEAP_KDF):
        pass
    runner = CliRunner()
    env = {"TRACEKIT_STORE": str(store_path), "TRACEKIT_PASSPHRASE": PASSPHRASE, "NO_COLOR": "1", "COLUMNS": "200"}
    outputs: list[str] = []

    def cli(*args: str, input: str | None = None):
        result = runner.invoke(app, list(args), env=env, catch_exceptions=False)
        assert result.exit_code != ExitCode.INTERNAL, (args, result.stderr)
        outputs.append(result.stdout + result.stderr)
        return result

    def shows(result, *values: str) -> None:
        assert result.exit_code == 0, result.stderr
        printed = squashed(result.stdout + result.stderr)
        for value in values:
            assert squashed(visible(value)) in printed, (value, result.stdout, result.stderr)

    # A case whose free text is typed as options; what a validator refuses (a control
    # character in a name) is then put into the store directly, as is everything else.
    typed = cli(
        "--json",
        "case",
        "add",
        "--name",
        texts["name"],
        "--notes",
        texts["notes"],
        "--address",
        texts["address"],
        "--phone",
        "07700 900001",
        "--test-date",
        "2020-10-10",
        "--onset",
        "2020-10-08",
    )
    if typed.exit_code == 0:
        case = json.loads(typed.stdout)
    else:
        assert typed.exit_code == ExitCode.VALIDATION, typed.stderr
        case = add_case(cli, "Placeholder Person", n=1)
    case_ref, person_ref = case["ref"], case["person"]["ref"]
    contact = add_contact(cli, case_ref, "Conn Tact", "--notes", "typed", n=2)
    _store_directly(
        store_path, "UPDATE people SET name = ?, address = ? WHERE ref = ?", texts["name"], texts["address"], person_ref
    )
    _store_directly(store_path, "UPDATE cases SET notes = ? WHERE ref = ?", texts["notes"], case_ref)
    _store_directly(
        store_path, "UPDATE people SET name = ? WHERE ref = ?", texts["contact_name"], contact["contact"]["ref"]
    )
    _store_directly(store_path, "UPDATE exposures SET notes = ? WHERE ref = ?", texts["contact_notes"], contact["ref"])

    shows(cli("case", "show", case_ref), texts["name"], texts["notes"], texts["address"], texts["contact_name"])
    shows(cli("person", "show", person_ref), texts["name"], texts["address"])
    shows(cli("contact", "show", contact["ref"]), texts["contact_name"], texts["contact_notes"])
    shows(cli("case", "list"), texts["name"])
    shows(cli("contact", "list"), texts["contact_name"])
    shows(cli("person", "search", "07700 900001"), texts["name"])
    shows(cli("case", "tree", case_ref), texts["name"], texts["contact_name"])
    shows(cli("today", "--date", "2020-10-12"), texts["contact_name"])

    # A reason, shown by audit show.
    other = add_case(cli, "Other Person", n=3)["person"]["ref"]
    shows(cli("role", "mark", other, "--role", "other", "--reason", texts["reason"]), other)
    reason = " ".join(texts["reason"].split())  # stored with its whitespace tidied
    shows(cli("audit", "show", "--action", "role.mark"), reason)

    # Import: a header that maps to nothing is named in a note; a --map naming an
    # unknown field is an error quoting the column.
    header = f"Extra {texts['header']}"
    path = write_csv(folder / "cases.csv", [*CASE_HEADER, header], [row + ["x"] for row in STANDARD_CASES])
    shows(cli("import", "cases", str(path)), f"'{header}'")
    mapped = cli("import", "cases", str(path), "--map", f"{texts['mapped']}=no-such-field")
    assert mapped.exit_code == ExitCode.VALIDATION
    assert squashed(visible(repr(texts["mapped"].strip()))) in squashed(mapped.stderr)

    # Recipients: a name that is refused is reported, not echoed raw.
    assert cli("recipients", "add", texts["name"], "age1" + "q" * 58).exit_code == ExitCode.VALIDATION
    assert cli("recipients", "remove", texts["name"]).exit_code != 0

    # JSON: the exact values, and nothing raw on the terminal either.
    for command, field in (
        (("case", "show", case_ref), "notes"),
        (("audit", "show"), "reason"),
        (("contact", "show", contact["ref"]), "contact_notes"),
    ):
        result = cli("--json", *command)
        expected = reason if field == "reason" else texts[field]
        assert result.exit_code == 0 and any(expected in value for value in _strings(json.loads(result.stdout)))

    for output in outputs:
        assert not RAW_CONTROL.search(output), repr(output)
