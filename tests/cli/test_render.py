"""Rendering tables: Rich's Table, with the columns that fit the terminal chosen here: a
narrow terminal drops columns rather than cutting, wrapping or splitting a value."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape

from tracekit.cli import render
from tracekit.cli.render import Column

HEADERS = ("ref", "person", "phone", "exposed", "status", "note")
COLUMNS = {
    "ref": Column("ref"),
    "person": Column("person", text=True),
    "phone": Column("phone"),
    "exposed": Column("exposed", 1),
    "status": Column("status", 2),
    "note": Column("note", 3, text=True),
}

# Names, references and dates as they appear in tables, with accents and wide characters.
cell_text = st.text(
    alphabet=st.sampled_from(list("abcXYZ019 -'.") + ["é", "ł", "ç", "日", "本", "👍", "\n"]), min_size=0, max_size=40
)


def _print(renderable: object, width: int, *, color: bool = False) -> str:
    console = Console(
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        no_color=not color,
        emoji=False,
        highlight=False,
        soft_wrap=False,
    )
    with console.capture() as captured:
        console.print(renderable, crop=False)
    return captured.get()


def _table(columns: list[str], rows: list[list[str]], *, bold_first: bool = True) -> render._FitTable:
    table = render._table(*(COLUMNS[name] for name in columns))
    for row in rows:
        cells = [escape(cell) for cell in row]
        if bold_first and cells:
            cells[0] = f"[bold]{cells[0]}[/bold]"
        table.add_row(*cells)
    return table


# A value that must stay whole: a reference, a date, a phone number (spaces inside).
whole_value = st.one_of(
    st.from_regex(r"[PCE]-[0-9A-Z]{6}", fullmatch=True),
    st.builds(lambda d, m, y: f"{d} {m} {y}", st.integers(1, 31), st.sampled_from(["Oct", "Nov"]), st.just(2020)),
    st.from_regex(r"07700 900[0-9]{3}", fullmatch=True),
)
free_text = st.text(alphabet=st.sampled_from(list("abcdeXYZ -'") + ["é", "日"]), max_size=30)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(whole_value, free_text, whole_value, whole_value, whole_value, free_text), min_size=1, max_size=6
    ),
    width=st.integers(min_value=30, max_value=160),
)
def test_whole_values_are_never_cut_wrapped_or_split(rows: list[tuple[str, ...]], width: int) -> None:
    """Every value of a column that is not free text is on one line, whole, in every
    column kept; the table fits the width whenever its kept columns can; no line ends
    in a space."""
    shown = _print(_table(list(HEADERS), [list(row) for row in rows]), width)
    lines = shown.splitlines()
    kept = lines[0].split()
    assert "…" not in shown
    assert all(line == line.rstrip() for line in lines)
    for row in rows:
        for name, value in zip(HEADERS, row):
            if name in kept and not COLUMNS[name].text:
                assert any(value in line for line in lines), (name, value)
    assert "ref" in kept and "phone" in kept and "person" in kept  # never dropped
    least = sum(max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS) if h in ("ref", "phone"))
    names = ["person", *(r[1] for r in rows)]
    least += max(min(12, max(cell_len(n) for n in names)), *(cell_len(w) for n in names for w in n.split()))
    if least + 2 * 3 <= width:  # the three columns never dropped fit at their narrowest: so does the table
        assert all(cell_len(line) <= width for line in lines)


def test_values_are_never_cut_when_columns_can_be_dropped() -> None:
    rows = [["P-ABC123", "Bartholomew Longname-Example", "07700 900222", "31 Dec 2020", "not yet reached", "x"]]
    shown = _print(_table(list(HEADERS), rows), 50)
    assert "…" not in shown
    assert "07700 900222" in shown and "P-ABC123" in shown
    assert "not yet reached" not in shown  # a low-priority column went instead
    assert all(len(line) <= 50 for line in shown.splitlines())


def test_audit_table_keeps_the_time_whole_and_folds_a_long_reason() -> None:
    from types import SimpleNamespace

    entries = [
        SimpleNamespace(
            seq=74277,
            at="2026-11-22T22:21:32.123456+00:00",
            action="export.handover",
            refs=[],
            reason="bundle cb1d9a4215594566b40e6055d8efdb70 to Profile Central (central-team)",
        ),
        SimpleNamespace(
            seq=74278,
            at="2026-11-23T00:54:24.5+00:00",
            action="role.mark",
            refs=["P-ABC123", "C-XYZ789"],
            reason="[bold]not markup[/bold]",
        ),
    ]
    shown = _print(render.audit_table(entries), 80)
    lines = shown.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert "2026-11-22T22:21:32" in shown and "2026-11-23T00:54:24" in shown and "…" not in shown
    assert "P-ABC123," in shown and "C-XYZ789" in shown  # the references stay (wrapped)
    assert "[bold]not" in shown and "markup[/bold]" in shown  # a reason is text, never markup
    assert "".join(line[lines[0].index("reason") :].strip() for line in lines[2:7]).startswith(
        "bundlecb1d9a4215594566b40e6055d8efdb70"
    )


def test_audit_table_on_a_narrow_terminal_drops_the_reason_before_cutting_a_number() -> None:
    from types import SimpleNamespace

    entries = [
        SimpleNamespace(
            seq=74277 + n,
            at=f"2026-11-22T22:21:3{n}+00:00",
            action="export.handover",
            refs=["P-ABC123"],
            reason="bundle cb1d9a4215594566 to Profile Central",
        )
        for n in range(3)
    ]
    shown = _print(render.audit_table(entries), 60)
    assert "reason" not in shown.splitlines()[0] and "references" in shown.splitlines()[0]
    for n in range(3):
        assert f"{74277 + n}   2026-11-22T22:21:3{n}" in shown


@settings(max_examples=60, deadline=None)
@given(
    cells=st.lists(cell_text, min_size=1, max_size=6),
    width=st.integers(min_value=1, max_value=30),
    no_wrap=st.booleans(),
    color=st.booleans(),
)
def test_a_cell_that_fits_is_drawn_as_rich_draws_it(cells: list[str], width: int, no_wrap: bool, color: bool) -> None:
    """render._Cell hands over the segments of a text that fits its column: the table
    prints exactly what Rich's own drawing of the Text prints."""
    from rich.table import Table
    from rich.text import Text

    def table(wrap_cell) -> Table:  # type: ignore[no-untyped-def]
        t = Table(box=None, pad_edge=False, show_header=False)
        t.add_column(width=width, no_wrap=no_wrap, overflow="fold")
        t.add_column(width=5)
        for n, cell in enumerate(cells):
            text = Text.from_markup(f"[bold]{escape(cell[:2])}[/bold]{escape(cell[2:])}", emoji=False)
            t.add_row(wrap_cell(text), str(n))
        return t

    assert _print(table(render._Cell), 60, color=color) == _print(table(lambda text: text), 60, color=color)
