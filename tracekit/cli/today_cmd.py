"""``tracekit today``: the day's worklist."""

from __future__ import annotations

from typing import Annotated

import typer

from tracekit.cli.context import command, emit_json, open_current_store, out, settings
from tracekit.cli.options import DEFAULT_LIMIT, MAX_LIMIT, AllOption, OffsetOption

#: Above this many contacts to call, `today` says "more than N" instead of the exact count.
TODAY_COUNT_CAP = 1000


@command
def today(
    day: Annotated[
        str | None,
        typer.Option(
            "--date", help="The day to plan for (default: today); ISO or day first.", show_default=False, metavar="DATE"
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="Show at most this many contacts to call.")
    ] = DEFAULT_LIMIT,
    offset: OffsetOption = 0,
    all_rows: AllOption = False,
) -> None:
    """Who to call today, highest risk first, with the reason and the number to ring.

    Contacts not yet reached, ordered by the close-contact clause that applies (household
    first, not close last) and then by the most recent exposure; then the contacts whose
    isolation ends that day.
    """
    from tracekit.cli import render
    from tracekit.cli.listing import check_all, write_json_lines
    from tracekit.domain.identifiers import parse_date
    from tracekit.errors import ValidationError
    from tracekit.records import Casebook

    try:
        when = parse_date(day, "date") if day else None
    except ValidationError:
        from tracekit.cli import forms  # (only to word the error: it names the option)

        with forms.option_hints():
            raise
    # The screen says "more than 1,000" rather than counting a national backlog exactly
    # (tens of ms on a million contacts); --json always gives the exact total.
    count_up_to = None if settings().json else max(TODAY_COUNT_CAP, offset + limit)
    check_all(all_rows)
    with open_current_store() as store:
        if all_rows:  # the contacts to call only (the isolation ends are in the page)
            write_json_lines(Casebook(store).iter_to_call(when, offset=offset))
            return
        work = Casebook(store).worklist(when, limit=limit, offset=offset, count_up_to=count_up_to)
    if settings().json:
        emit_json(work.to_json())
        return
    out().print(f"[bold]Worklist for {render.day(work.day)}[/bold]\n", highlight=False)
    out().print(render.worklist(work))


def register(app: typer.Typer) -> None:
    app.command()(today)
