"""CLI: issue 14 items 7 and 9. Help pages follow the conventions of well-kept Typer/Rich
apps (metavars, no type labels, paragraphs, examples, global options once), and option
values complete in the shell without touching the store."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperOption

from tracekit.cli import app
from tracekit.cli.examples import EXAMPLE_WIDTH, EXAMPLES, command_lines
from tracekit.cli.help import global_options_pointer, walk

ROOT = typer.main.get_command(app)
COMMANDS = {" ".join(path): command for path, command in walk(ROOT) if path}
LEAVES = sorted(name for name, command in COMMANDS.items() if not hasattr(command, "commands"))
GLOBAL_OPTIONS = ("--store", "--json", "--quiet", "--no-color", "--passphrase-file", "--passphrase-fd")
#: The pages a tracer or a team lead reads first: each must show examples.
MAIN_COMMANDS = (
    "init",
    "unlock",
    "today",
    "refer",
    "case add",
    "case list",
    "case show",
    "case update",
    "case close",
    "contact add",
    "contact list",
    "contact call",
    "contact promote",
    "contact update",
    "person search",
    "person show",
    "person merge",
    "role mark",
    "role release",
    "import cases",
    "import contacts",
    "import template",
    "export handover",
    "store backup",
    "audit show",
)
#: A type label as Typer prints it (``<str>``, ``<int range>``, ``<list[str]>``) or a range
#: in Click's notation (``[1<=x<=1000]``, ``[x>=0]``).
TYPE_LABEL = re.compile(r"<(?:bool|str|int|float|path|int range|float range|list\[[^\]]*\]|[a-z]+ range)>")
RANGE_NOTATION = re.compile(r"\[?\d*\s*<=?\s*x|x\s*>=?\s*\d")
BOX = "│╭╰"


def help_page(path: str, width: int, capsys) -> str:
    """What ``tracekit PATH --help`` prints on a terminal ``width`` columns wide."""
    os.environ["COLUMNS"] = str(width)  # the autouse fixture (tests/conftest.py) restores it
    ctx = typer.Context(ROOT, info_name="tracekit")
    for name in path.split() if path else ():
        ctx = typer.Context(ctx.command.commands[name], info_name=name, parent=ctx)
    capsys.readouterr()
    ctx.command.format_help(ctx, None)
    return capsys.readouterr().out


def _visible_params(command):
    return [p for p in command.params if not getattr(p, "hidden", False)]


# -- item 7: help pages --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", *COMMANDS])
def test_help_page_has_no_type_labels_or_braces(path, capsys):
    page = help_page(path, 80, capsys)
    assert not TYPE_LABEL.search(page), f"tracekit {path} --help shows a type label"
    assert not RANGE_NOTATION.search(page), f"tracekit {path} --help shows a range as [1<=x<=N]"
    usage = next(line for line in page.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage


def test_every_value_is_named_by_its_metavar():
    for name, command in COMMANDS.items():
        for param in _visible_params(command):
            where = f"tracekit {name}: {param.name}"
            if isinstance(param, TyperOption) and param.is_flag:
                assert param.display_type_rich(None) is None, where
                continue
            metavar = param.metavar
            assert (metavar and metavar == metavar.upper()) or "|" in (metavar or ""), where
            help_text = (param.help or "").lower()
            annotation = param.type_descriptor.annotation
            if re.search(r"\b[cper]-(?:\.\.\.|7k2m9q)|\breference\b", help_text):
                assert metavar.endswith("REF"), f"{where} takes a reference but shows {metavar}"
            elif re.search(r"\bdates?\b", help_text):
                assert metavar == "DATE", f"{where} takes a date but shows {metavar}"
            if annotation is Path or param.name in ("file", "out_dir", "output"):
                assert metavar in ("FILE", "DIR"), f"{where} takes a path but shows {metavar}"


def test_usage_shows_arguments_as_click_does():
    assert ROOT.commands["case"].commands["show"].collect_usage_pieces(typer.Context(ROOT)) == ["[OPTIONS]", "REF"]
    merge = ROOT.commands["person"].commands["merge"]
    assert merge.collect_usage_pieces(typer.Context(merge)) == ["[OPTIONS]", "KEEP_REF", "OTHER_REF"]
    show = ROOT.commands["rules"].commands["show"]
    assert show.collect_usage_pieces(typer.Context(show)) == ["[OPTIONS]", "[RULESET_ID]"]


def test_global_options_are_listed_once_on_the_root_page(capsys):
    root_page = help_page("", 80, capsys)
    assert all(option in root_page for option in GLOBAL_OPTIONS)
    pointer = global_options_pointer(ROOT)
    assert pointer == (
        "Global options (--store, --json, --quiet, --no-color, --passphrase-file, --passphrase-fd) "
        "work here too: see tracekit --help."
    )
    pointer_start = pointer.split("(")[0]
    for name in COMMANDS:
        page = help_page(name, 80, capsys)
        option_rows = [line for line in page.splitlines() if line.startswith("│")]
        for option in GLOBAL_OPTIONS:
            # in the options column (a help text that wraps onto a line starting "--json" is not a row)
            assert not any(re.match(rf"│ {{0,4}}\*? {{0,4}}{option}\b", row) for row in option_rows), (
                f"{option} on {name}"
            )
        if name in LEAVES:
            assert pointer_start in page, f"tracekit {name} --help does not point to the global options"


def test_global_options_still_work_after_the_command(cli):
    # Hidden from the sub-pages, not removed: `tracekit case list --store X` still parses.
    result = cli("case", "list", "--store", "/nonexistent/dir/x.store", "--json")
    assert result.exit_code == 3, result.stderr  # store not found: the option reached the command


@pytest.mark.parametrize("name", MAIN_COMMANDS)
def test_main_commands_show_examples(name, capsys):
    page = help_page(name, 80, capsys)
    assert "Examples:" in page
    for _, command in EXAMPLES[name]:
        assert command_lines(command)[0].strip() in page


def test_every_example_belongs_to_a_command_and_every_command_has_one():
    assert set(EXAMPLES) == set(LEAVES)


def _parse_example(words: list[str]) -> None:
    """Parse an example's words as tracekit would, without running it: an unknown option,
    a missing argument or a bad number fails here."""
    assert words[0] == "tracekit", words
    words = words[1 : words.index("<")] if "<" in words else words[1:]
    while words[0].startswith("-"):  # global options before the command
        option = next(p for p in ROOT.params if words[0] in p.opts)
        words = words[1:] if option.is_flag else words[2:]
    ctx = typer.Context(ROOT, info_name="tracekit")
    name, words = words[0], words[1:]
    while hasattr(ctx.command.commands[name], "commands"):
        ctx = typer.Context(ctx.command.commands[name], info_name=name, parent=ctx)
        name, words = words[0], words[1:]
    ctx.command.commands[name].make_context(name, words, parent=ctx)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_are_real_command_lines_that_fit_60_columns(name):
    for description, command in EXAMPLES[name]:
        lines = command_lines(command)
        assert all(len(line) <= EXAMPLE_WIDTH for line in [f"  {description}:", *lines]), lines
        joined = " ".join(line.strip().removesuffix("\\") for line in lines)
        words = shlex.split(joined)
        assert words == shlex.split(command)  # the continuations and quoting keep the command intact
        assert words[1 : 1 + len(name.split())] == name.split() or words[1] == "--store", words
        _parse_example(words)


def _hard_breaks(page: str, width: int) -> list[str]:
    """Lines outside the option panels that end mid-sentence although the next word would
    have fitted: a line break taken from the source, not made by the renderer."""
    lines = page.splitlines()
    found = []
    for line, following in itertools.pairwise(lines):
        text, next_text = line.rstrip(), following.strip()
        if not text.strip() or not next_text or text.lstrip()[:1] in BOX or following.lstrip()[:1] in BOX:
            continue
        if text.lstrip().startswith("Usage:"):
            continue  # made by Click from the command's path, not written in a docstring
        if text.endswith((".", ":", "!", "?", "\\")) or next_text.startswith("tracekit"):
            continue
        first_word = next_text.split()[0]
        if len(text) + 1 + len(first_word) <= width - 1:
            found.append(f"{text!r} / {following!r}")
    return found


@pytest.mark.parametrize("path", ["", *COMMANDS])
def test_no_sentence_is_broken_by_a_hard_newline_at_60_columns(path, capsys):
    assert _hard_breaks(help_page(path, 60, capsys), 60) == []


def test_hard_break_detector_finds_a_source_line_break(capsys):
    page = "\n Usage: tracekit x\n\n Contacts ordered by the clause that applies\n (household first).\n"
    assert _hard_breaks(page, 60)


def test_docstrings_become_paragraphs():
    from tracekit.cli.help import reflow

    text = "First line\n    goes on here.\n\n    Second paragraph\n    also goes on."
    assert reflow(text) == "First line goes on here.\n\nSecond paragraph also goes on."
    today = COMMANDS["today"].help
    assert "applies (household first, not close last)" in today


# -- docs/guide-tracer.md: a help page as it really prints ----------------------------------

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide-tracer.md"
HELP_HEADING = "## Help at 80 and 60 columns"


def _lines(text: str) -> list[str]:
    """A screen's lines as a Markdown page keeps them: no trailing spaces, no blank first or last line."""
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n").splitlines()


def _guide_help_blocks() -> dict[int, str]:
    section = GUIDE.read_text().split(HELP_HEADING, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```console\n\$ COLUMNS=(\d+) tracekit case add --help\n(.*?)```", section, re.DOTALL)
    return {int(width): text for width, text in blocks}


@pytest.mark.parametrize("width", [80, 60])
def test_guide_shows_case_add_help_as_it_prints(width, capsys):
    printed = help_page("case add", width, capsys)
    shown = _guide_help_blocks()[width]
    assert _lines(shown) == _lines(printed), "docs/guide-tracer.md is stale: regenerate the help pages there"
    assert max(len(line) for line in printed.splitlines()) == width


# -- item 9: completion ----------------------------------------------------------------------


def _complete(command_line: str) -> list[str]:
    """The values zsh is offered for the last word of ``command_line``: Click's
    ShellComplete API, as Typer's zsh completion calls it."""
    from typer._completion_classes import ZshComplete

    words = shlex.split(command_line)
    args, incomplete = (words[1:], "") if command_line.endswith(" ") else (words[1:-1], words[-1])
    completer = ZshComplete(ROOT, {}, "tracekit", "_TRACEKIT_COMPLETE")
    return [item.value for item in completer.get_completions(args, incomplete)]


def test_setting_completes_the_rule_settings():
    from tracekit.domain.rules import SETTINGS

    assert _complete("tracekit contact add C-7K2M9Q --setting ") == list(SETTINGS)
    assert _complete("tracekit contact update E-7K2M9Q --setting ") == list(SETTINGS)
    assert _complete("tracekit contact list --setting h") == ["household", "healthcare"]


def test_outcome_completes_the_call_outcomes():
    from tracekit.records.models import CallOutcome

    assert _complete("tracekit contact call E-7K2M9Q --outcome ") == [o.value for o in CallOutcome]


def test_role_completes_the_sensitive_and_recipient_roles():
    from tracekit.records.sensitive import RECIPIENT_ROLES, ROLES

    assert _complete("tracekit role mark P-7K2M9Q --role ") == list(ROLES)
    assert _complete("tracekit recipients add North age1x --role ") == list(RECIPIENT_ROLES)


def test_references_complete_the_expected_kind_prefix_only():
    assert _complete("tracekit case show ") == ["C-"]
    assert _complete("tracekit contact add ") == ["C-"]
    assert _complete("tracekit contact call ") == ["E-"]
    assert _complete("tracekit contact promote ") == ["E-", "P-"]
    assert _complete("tracekit contact promote P-7K2M9Q --source ") == ["E-"]
    assert _complete("tracekit case add --person ") == ["P-"]
    assert _complete("tracekit person merge P-7K2M9Q ") == ["P-"]
    assert _complete("tracekit refer ") == ["P-"]
    assert _complete("tracekit referrals export --ref ") == ["R-"]
    assert _complete("tracekit audit show --ref ") == ["C-", "P-", "E-", "R-"]


def test_statuses_and_test_values_complete():
    from tracekit.records.models import CaseStatus, TestResult, TestType, TraceStatus

    assert _complete("tracekit case list --status ") == [s.value for s in CaseStatus]
    assert _complete("tracekit contact list --status ") == [s.value for s in TraceStatus]
    assert _complete("tracekit case add --test-type ") == [t.value for t in TestType]
    assert _complete("tracekit case update C-7K2M9Q --result ") == [r.value for r in TestResult]


def test_reference_completion_says_what_each_prefix_names():
    from tracekit.cli.completion import complete_ref

    assert complete_ref("CASE", "EXPOSURE")("") == [
        ("C-", "a case reference, e.g. C-7K2M9Q"),
        ("E-", "an exposure reference, e.g. E-7K2M9Q"),
    ]


def test_completion_in_the_shell_never_opens_or_writes_anything(tmp_path):
    """The real zsh protocol in a child process: values with their descriptions, no
    passphrase asked (stdin closed), nothing written next to the store or in HOME."""
    environment = {
        **os.environ,
        "_TRACEKIT_COMPLETE": "complete_zsh",
        "_TYPER_COMPLETE_ARGS": "tracekit role mark P-7K2M9Q --role ",
        "TRACEKIT_STORE": str(tmp_path / "casebook.store"),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "PYTHONPATH": str(GUIDE.parents[1]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tracekit"],
        capture_output=True,
        text=True,
        env=environment,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert '"victim":"victim of crime (e.g. living in a refuge)"' in result.stdout
    assert list(tmp_path.iterdir()) == []
