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
