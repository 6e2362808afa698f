"""``tracekit import cases|contacts|template``: scripted bulk import, thin over tracekit.importers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tracekit.cli.context import command, emit_json, err, note, open_current_store, out, settings, warn
from tracekit.cli.safe_text import safe_markup, visible

if TYPE_CHECKING:
    from tracekit.importers.engine import ImportSummary

import_app = typer.Typer(
    help="Bulk-import cases and contacts from CSV, JSON Lines or .xlsx: strict, atomic, re-runnable.",
    no_args_is_help=True,
)

IMPORT_PANEL = "Import options"

FileArg = Annotated[
    str, typer.Argument(help="The file to import (CSV, JSON Lines or .xlsx), or - for standard input.", metavar="FILE")
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Force the format: csv, jsonl or xlsx (default: detected from the content).",
        rich_help_panel=IMPORT_PANEL,
        show_default=False,
        metavar="FORMAT",
    ),
]
MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help='Map a column to a field, e.g. --map "Mobile Tel=phone" (repeatable; FIELD "ignore" skips the column).',
        rich_help_panel=IMPORT_PANEL,
        show_default=False,
        metavar="COLUMN=FIELD",
    ),
]
MappingOption = Annotated[
    Path | None,
    typer.Option(
        "--mapping",
        help='A TOML mapping file: a \\[columns] table of "Column Name" = "field" (--map wins).',
        rich_help_panel=IMPORT_PANEL,
        show_default=False,
    ),
]
DryRunOption = Annotated[
    bool,
    typer.Option("--dry-run", help="Validate every row and report, writing nothing.", rich_help_panel=IMPORT_PANEL),
]
SkipInvalidOption = Annotated[
    bool,
    typer.Option(
        "--skip-invalid",
        help="Import the valid rows and skip the invalid ones (default: any invalid row stops the whole import).",
        rich_help_panel=IMPORT_PANEL,
    ),
]
RejectsOption = Annotated[
    Path | None,
    typer.Option(
        "--rejects",
        help="Write the invalid rows here, with the reason as an extra column (0600; replaces only a rejects file tracekit wrote).",
        rich_help_panel=IMPORT_PANEL,
        show_default=False,
    ),
]

#: Contacts outside their case's infectious period listed on the terminal (--json lists more).
_OUTSIDE_SHOWN = 20
#: Rows between progress updates (the importer reports after each batch).
_PROGRESS_MIN_INTERVAL = 0.2


@contextlib.contextmanager
def _progress(total_bytes: int | None) -> Iterator[Callable[[int, int], None] | None]:
    """A Rich progress bar on stderr, only at a terminal and without --quiet or --json."""
    console = err()
    if settings().quiet or settings().json or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("importing"),
        BarColumn(),
        TextColumn("{task.fields[rows]:>12,} rows"),
        TextColumn("{task.fields[rate]:>9,.0f} rows/s"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task("import", total=total_bytes or None, rows=0, rate=0.0)
    started = time.perf_counter()
    last = [0.0]

    def update(rows: int, bytes_read: int) -> None:
        now = time.perf_counter()
        if now - last[0] < _PROGRESS_MIN_INTERVAL and (total_bytes is None or bytes_read < total_bytes):
            return
        last[0] = now
        progress.update(task, completed=bytes_read, rows=rows, rate=rows / max(now - started, 1e-9))

    with progress:
        yield update


def _mapping(maps: list[str] | None, mapping_file: Path | None) -> dict[str, str]:
    from tracekit.importers.columns import parse_map_options, read_mapping_file

    mapping = read_mapping_file(mapping_file) if mapping_file else {}
    mapping.update(parse_map_options(maps or []))
    return mapping


def _run(
    kind: str,
    file: str,
    fmt: str | None,
    maps: list[str] | None,
    mapping_file: Path | None,
    dry_run: bool,
    skip_invalid: bool,
    rejects: Path | None,
) -> None:
    from tracekit.errors import ValidationError
    from tracekit.importers import ImportInvalid, ImportOptions, import_file
    from tracekit.importers.engine import rejects_destination
    from tracekit.importers.readers import FORMATS

    if fmt is not None and fmt.lower() not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    options = ImportOptions(
        format=fmt.lower() if fmt else None,
        mapping=_mapping(maps, mapping_file),
        dry_run=dry_run,
        skip_invalid=skip_invalid,
        rejects=rejects,
    )
    # Problems with the paths are reported before the passphrase is asked for.
    if file != "-" and not Path(file).is_file():
        raise ValidationError(
            "file", f"{file} is not a file", expected="the path of a CSV, JSON Lines or .xlsx file, or -"
        )
    if rejects is not None:
        rejects_destination(rejects)  # refuses any existing file but a rejects file tracekit wrote
    total = None if file == "-" else _size(Path(file))
    with open_current_store() as store:
        try:
            with _progress(total) as progress:
                summary = import_file(store, kind, file, options, progress=progress)
        except ImportInvalid as failure:
            if settings().json:
                emit_json({**failure.summary.to_json(), "ok": False})
            raise
    if settings().json:
        emit_json({**summary.to_json(), "ok": True})
        return
    _show(summary)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _show(summary: ImportSummary) -> None:
    from rich.table import Table

    from tracekit.cli import render

    console = out()
    verb = "Checked" if summary.dry_run else "Imported"
    console.print(
        f"{verb} {summary.kind} from {visible(summary.file)} ({summary.format}, sha256 {summary.sha256[:16]}…)",
        markup=False,
        highlight=False,
    )
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column()
    rows = summary.rows_read
    table.add_row("rows read", f"{rows:,}", "")
    table.add_row(
        "would import" if summary.dry_run else "imported",
        f"{summary.imported:,}",
        f"({render.count(summary.people_created, 'new person', 'new people')})",
    )
    table.add_row("linked", f"{summary.linked:,}", "to people already in the store or earlier in the file")
    table.add_row("unchanged", f"{summary.unchanged:,}", "imported before (same external id)")
    if summary.invalid:
        where = f"in {safe_markup(summary.rejects_file)}" if summary.rejects_file else "listed below"
        table.add_row("invalid", f"{summary.invalid:,}", f"skipped, {where}")
    if summary.withheld_skipped:
        table.add_row(
            "withheld",
            f"{summary.withheld_skipped:,}",
            "lines of a rejects file standing for withheld rows: fix those in the original file",
        )
    # Counts by role, never one line per person: the people are listed by 'tracekit role list'.
    by_role = ", ".join(f"{role} {n:,}" for role, n in summary.marked_by_role().items())
    where = "; see 'tracekit role list'" if summary.committed else ""
    would = "" if summary.committed else "would be "
    table.add_row(f"{would}marked sensitive", f"{len(summary.marked):,}", f"({by_role}{where})" if by_role else "")
    if summary.sensitive_rows:
        table.add_row(
            "sensitive rows", f"{summary.sensitive_rows:,}", "about people in sensitive roles, shown withheld"
        )
    table.add_row("time", f"{summary.seconds:,.1f} s", f"{summary.rows_per_second:,.0f} rows/s")
    console.print(table)
    if summary.dry_run:
        console.print("Dry run: nothing was written.")
    elif summary.nothing_changed:
        console.print(
            "Nothing changed: every valid row had been imported before."
            if rows
            else "Nothing to import: the file has no rows."
        )
    recalled = [m for m in summary.marked if m.get("recall")]
    if recalled and not summary.committed:
        warn(
            f"{len(recalled)} person(s) this import would mark went in clear in earlier bundles: "
            "the real import will make recall requests for them"
        )
    elif recalled:
        warn(
            f"{len(recalled)} newly marked person(s) went in clear in earlier bundles ("
            + ", ".join(f"{m['person']}: {len(m['handed_over_in_clear'])} bundle(s)" for m in recalled)
            + "); recall requests go to the vetted team in the next vetted-team handover (see tracekit role mark)"
        )
    if summary.invalid:
        warn(f"{summary.invalid:,} invalid row(s) skipped ({summary.problems_total:,} problem(s)):")
        for line in summary.problem_report():
            err().print(f"  {visible(line)}", markup=False, highlight=False)
    if summary.outside_infectious_period:
        listed = summary.outside_infectious_period_lines
        shown = ", ".join(f"line {o['line']} ({o['case']})" for o in listed[:_OUTSIDE_SHOWN])
        more = summary.outside_infectious_period - min(len(listed), _OUTSIDE_SHOWN)
        warn(
            f"{summary.outside_infectious_period:,} contact(s) were exposed outside their case's infectious period "
            f"(recorded anyway; check them): {shown}" + (f" and {more:,} more (all lines: --json)" if more else "")
        )
    if summary.ignored_columns:
        # header cells come from the file: each is quoted and shown as it is
        columns = ", ".join(f"'{safe_markup(c)}'" for c in summary.ignored_columns)
        note(f"Ignored columns (not mapped to a field): {columns}")


@import_app.command("cases")
@command
def import_cases(
    file: FileArg,
    fmt: FormatOption = None,
    maps: MapOption = None,
    mapping: MappingOption = None,
    dry_run: DryRunOption = False,
    skip_invalid: SkipInvalidOption = False,
    rejects: RejectsOption = None,
) -> None:
    """Import cases (people with a test result), one per row.

    Every row is validated first: if any is invalid, nothing is written and each problem
    is listed with its line and column (exit code 11). Rows whose external id was
    imported before are skipped, so re-running the same command is safe. People already
    in the store (same NHS number, or name and date of birth) are linked, not duplicated;
    rows about people in sensitive roles are imported already marked.
    """
    _run("cases", file, fmt, maps, mapping, dry_run, skip_invalid, rejects)


@import_app.command("contacts")
@command
def import_contacts(
    file: FileArg,
    fmt: FormatOption = None,
    maps: MapOption = None,
    mapping: MappingOption = None,
    dry_run: DryRunOption = False,
    skip_invalid: SkipInvalidOption = False,
    rejects: RejectsOption = None,
) -> None:
    """Import contacts of cases, one per row.

    Each row names its case by reference (case_ref, C-...) or by the external id of a
    case imported before (case_external_id). Otherwise as 'import cases': strict and
    atomic by default, re-runnable, linking known people, marking sensitive rows.
    """
    _run("contacts", file, fmt, maps, mapping, dry_run, skip_invalid, rejects)


@import_app.command("template")
@command
def import_template(
    kind: Annotated[str, typer.Argument(help="cases or contacts.", metavar="cases|contacts")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write to this new file (0600) instead of standard output.", show_default=False
        ),
    ] = None,
) -> None:
    """Write a CSV template: the expected headers and one example row of made-up data."""
    import csv
    import io
    import sys

    from tracekit.importers.columns import KINDS, template_rows

    if kind not in KINDS:
        raise typer.BadParameter("must be cases or contacts", param_hint="KIND")
    rows = template_rows(kind)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    text = buffer.getvalue()
    if output is not None:
        from tracekit import files

        with files.atomic_output(output) as handle:
            handle.write(text.encode("utf-8"))
        if settings().json:
            emit_json({"path": str(output), "kind": kind, "headers": rows[0]})
        else:
            note(f"Wrote the {kind} template to {output}.")
        return
    if settings().json:
        emit_json({"kind": kind, "headers": rows[0], "example": rows[1]})
        return
    sys.stdout.write(text)
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
