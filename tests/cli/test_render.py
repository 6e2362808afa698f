"""Rendering tables: the direct one-line layout must print what Rich's Table prints, and a
narrow terminal drops columns rather than cutting values short."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.markup import escape

from tracekit.cli import render

HEADERS = ("ref", "person", "phone", "exposed", "status", "note")
PRIORITIES = {"ref": 0, "person": 0, "phone": 0, "exposed": 1, "status": 2, "note": 3}

# Names, references and dates as they appear in tables, with accents and wide characters.
cell_text = st.text(
    alphabet=st.sampled_from(list("abcXYZ019 -'.") + ["é", "ł", "ç", "日", "本", "👍", "\n"]), min_size=0, max_size=40
)


def _print(renderable: object, width: int, *, color: bool = False) -> str:
    console = Console(width=width, force_terminal=color, color_system="standard" if color else None,
                      no_color=not color, emoji=False, highlight=False, soft_wrap=False)
    with console.capture() as captured:
        console.print(renderable)
    return captured.get()


def _table(columns: list[str], rows: list[list[str]], *, bold_first: bool = True) -> render._FitTable:
    table = render._table(*((name, PRIORITIES[name]) for name in columns))
    for row in rows:
        cells = [escape(cell) for cell in row]
        if bold_first and cells:
            cells[0] = f"[bold]{cells[0]}[/bold]"
        table.add_row(*cells)
    return table


def _with_rich_table(monkeypatch: pytest.MonkeyPatch, table: render._FitTable, width: int, color: bool = False) -> str:
    with monkeypatch.context() as patch:
        patch.setattr(render._FitTable, "simple_layout", False)
        return _print(table, width, color=color)


@settings(max_examples=300, deadline=None)
@given(
    columns=st.lists(st.sampled_from(HEADERS), min_size=1, max_size=6, unique=True),
    data=st.data(),
    width=st.integers(min_value=20, max_value=200),
)
def test_direct_layout_prints_what_rich_prints(columns: list[str], data: st.DataObject, width: int) -> None:
    rows = data.draw(st.lists(st.lists(cell_text, min_size=len(columns), max_size=len(columns)), max_size=8))
    table = _table(columns, rows)
    with pytest.MonkeyPatch.context() as monkeypatch:
        expected = _with_rich_table(monkeypatch, table, width)
    assert _print(table, width) == expected


def test_direct_layout_is_used_and_keeps_the_header_bold(monkeypatch: pytest.MonkeyPatch) -> None:
    table = _table(["ref", "person"], [["P-ABC123", "Ann Lee"], ["P-XYZ789", "Bo Example"]])
    used = []
    original = render._FitTable._simple
    monkeypatch.setattr(render._FitTable, "_simple", staticmethod(lambda *a: used.append(1) or original(*a)))
    shown = _print(table, 80, color=True)
    assert used, "one-line rows should take the direct layout"
    assert "\x1b[1mref" in shown and "\x1b[1mP-ABC123\x1b[0m" in shown
    plain = _print(table, 80)
    assert plain.splitlines()[0].rstrip() == "ref        person"
    assert plain.splitlines()[2].rstrip() == "P-ABC123   Ann Lee"


def test_wrapped_names_match_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [["E-ABC123", "P-XYZ789 Bartholomew Longname-Example", "07700 900222"], ["E-DEF456", "Jo\nLee", "-"]]
    table = _table(["ref", "person", "phone"], rows)
    expected = _with_rich_table(monkeypatch, table, 50)
    shown = _print(table, 50)
    assert shown == expected
    assert len(shown.splitlines()) > 2 + len(rows)  # the names did wrap


def test_values_are_never_cut_when_columns_can_be_dropped() -> None:
    rows = [["P-ABC123", "Bartholomew Longname-Example", "07700 900222", "31 Dec 2020", "not yet reached", "x"]]
    shown = _print(_table(list(HEADERS), rows), 50)
    assert "…" not in shown
    assert "07700 900222" in shown and "P-ABC123" in shown
    assert "not yet reached" not in shown  # a low-priority column went instead
    assert all(len(line) <= 50 for line in shown.splitlines())


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(cell_text.map(lambda t: t.replace("\n", " ")), max_size=6), width=st.integers(min_value=10, max_value=120))
def test_block_of_lines_prints_what_rich_prints(lines: list[str], width: int) -> None:
    """The worklist's lines: short ones as they are, long ones wrapped exactly as Rich wraps."""
    marked = [f"[bold]{escape(line[:3])}[/bold]{escape(line[3:])}" for line in lines]
    from rich.text import Text

    expected = _print(Text.from_markup("\n".join(marked), emoji=False), width)
    assert _print(render._Block(marked), width) == expected


# A worklist entry's fields: dates, names and numbers (no field holds the separator).
field_text = st.text(alphabet=st.sampled_from(list("abcXYZ019 -'.") + ["é", "日", "👍"]), min_size=1, max_size=30).filter(
    lambda t: " · " not in t and t.strip() == t and "  " not in t
)


@settings(max_examples=300, deadline=None)
@given(
    fields=st.lists(field_text, min_size=1, max_size=5),
    sep=st.sampled_from([" · ", "  "]),
    width=st.integers(min_value=15, max_value=120),
)
def test_an_entry_too_long_for_the_terminal_breaks_between_its_fields(fields: list[str], sep: str, width: int) -> None:
    indent = 5
    line = " " * indent + sep.join(fields)
    marked = " " * indent + sep.join(f"[bold]{escape(f)}[/bold]" if n % 2 else escape(f) for n, f in enumerate(fields))
    shown = _print(render._Block([(marked, sep, indent)]), width).splitlines()
    from rich.cells import cell_len

    if cell_len(line) <= width:
        assert shown == [line]
        return
    if any(indent + cell_len(f) > width for f in fields):
        return  # a field wider than a line is word-wrapped by Rich (checked below)
    # Every line fits; every field is whole on one line; nothing is lost or reordered.
    assert all(cell_len(s) <= width for s in shown)
    assert all(s.startswith(" " * indent) for s in shown)
    assert sep.join(s[indent:] for s in shown) == sep.join(fields)
    assert [f for s in shown for f in s[indent:].split(sep)] == fields


def test_an_entry_with_a_field_wider_than_the_terminal_is_word_wrapped() -> None:
    long_name = "Bartholomew Maximilian Longname-Example"
    shown = _print(render._Block([(f"  1. E-ABC123  {long_name}  07700 900222", "  ", 5)]), 30).splitlines()
    assert all(len(s) <= 30 for s in shown)
    assert shown[0] == "  1. E-ABC123"
    assert shown[1:] == ["     Bartholomew Maximilian", "     Longname-Example", "     07700 900222"]


# Markup as tracekit writes it (style tags around escaped text), and some it never
# writes (stray brackets, escapes, unbalanced or anonymous closing tags, newlines).
style_names = st.sampled_from(["bold", "dim", "red", "bold red", "red bold", "yellow", "table.header", "italic"])
markup_pieces = st.one_of(
    cell_text.map(escape),
    style_names.map(lambda name: f"[{name}]"),
    style_names.map(lambda name: f"[/{name}]"),
    st.sampled_from(["[", "]", "[/]", "\\[", "[1]", "[case C-1]", "\\", "\x07", "[@click]", "[link=x]"]),
)


@settings(max_examples=1000, deadline=None)
@given(pieces=st.lists(markup_pieces, max_size=12))
def test_markup_text_is_rich_markup(pieces: list[str]) -> None:
    from rich.errors import MarkupError
    from rich.text import Text

    markup = "".join(pieces)
    try:
        expected = Text.from_markup(markup, emoji=False)
    except MarkupError:
        with pytest.raises(MarkupError):
            render.markup_text(markup)
        return
    got = render.markup_text(markup)
    assert (got.plain, got.spans, got.end, got.justify, got.overflow) == (
        expected.plain, expected.spans, expected.end, expected.justify, expected.overflow,
    )


def test_markup_text_takes_the_fast_path_for_tags_around_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.text import Text

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("went to Rich's parser")

    monkeypatch.setattr(Text, "from_markup", refuse)
    got = render.markup_text("  1. [bold]E-ABC123[/bold]  Ann Lee  [dim](case C-XYZ789)[/dim] · [bold red]close[/bold red]")
    assert got.plain == "  1. E-ABC123  Ann Lee  (case C-XYZ789) · close"
    assert [(s.start, s.end, s.style) for s in got.spans] == [(5, 13, "bold"), (24, 39, "dim"), (42, 47, "bold red")]


def _with_rich_grid(monkeypatch: pytest.MonkeyPatch, grid: object, width: int, color: bool = False) -> str:
    with monkeypatch.context() as patch:
        patch.setattr(render._Grid, "simple_layout", False)
        return _print(grid, width, color=color)


labels = st.sampled_from(["name", "phone", "date of birth", "infectious period", "x", "notes"])


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.tuples(labels, cell_text), min_size=1, max_size=8),
    width=st.integers(min_value=10, max_value=160),
    color=st.booleans(),
)
def test_direct_grid_prints_what_rich_prints(rows: list[tuple[str, str]], width: int, color: bool) -> None:
    """A record's details (case, person, contact show): wrapped values, notes with
    newlines, wide characters; with and without colour."""
    marked = [(label, f"[dim]{escape(value[:4])}[/dim]{escape(value[4:])}" if len(value) % 2 else escape(value))
              for label, value in rows]
    grid = render._grid(marked)
    with pytest.MonkeyPatch.context() as monkeypatch:
        expected = _with_rich_grid(monkeypatch, grid, width, color)
    shown = _print(grid, width, color=color)
    if not color:
        assert shown == expected
    else:  # the same characters in the same styles (Rich may split a run into two codes)
        assert _styled_cells(shown) == _styled_cells(expected)


def _styled_cells(ansi: str) -> list[tuple[str, str]]:
    from rich.text import Text

    text = Text.from_ansi(ansi)
    console = Console(width=1000, color_system="standard", force_terminal=True)
    return [(ch, str(segment.style or "")) for segment in text.render(console) for ch in segment.text]


def test_audit_table_keeps_the_time_whole_and_folds_a_long_reason() -> None:
    from types import SimpleNamespace

    entries = [
        SimpleNamespace(seq=74277, at="2026-11-22T22:21:32.123456+00:00", action="export.handover", refs=[],
                        reason="bundle cb1d9a4215594566b40e6055d8efdb70 to Profile Central (central-team)"),
        SimpleNamespace(seq=74278, at="2026-11-23T00:54:24.5+00:00", action="role.mark", refs=["P-ABC123", "C-XYZ789"],
                        reason="[bold]not markup[/bold]"),
    ]
    shown = _print(render.audit_table(entries), 80)
    lines = shown.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "2026-11-22T22:21:32" in shown and "2026-11-23T00:54:24" in shown and "…" not in shown
    assert "P-ABC123," in shown and "C-XYZ789" in shown  # the references stay (wrapped)
    assert "[bold]not" in shown and "markup[/bold]" in shown  # a reason is text, never markup
    assert "".join(line[lines[0].index("reason"):].strip() for line in lines[2:7]).startswith(
        "bundlecb1d9a4215594566b40e6055d8efdb70"
    )


def test_audit_table_on_a_narrow_terminal_drops_the_reason_before_cutting_a_number() -> None:
    from types import SimpleNamespace

    entries = [SimpleNamespace(seq=74277 + n, at=f"2026-11-22T22:21:3{n}+00:00", action="export.handover",
                               refs=["P-ABC123"], reason="bundle cb1d9a4215594566 to Profile Central") for n in range(3)]
    shown = _print(render.audit_table(entries), 60)
    assert "reason" not in shown.splitlines()[0] and "references" in shown.splitlines()[0]
    for n in range(3):
        assert f"{74277 + n}   2026-11-22T22:21:3{n}" in shown
