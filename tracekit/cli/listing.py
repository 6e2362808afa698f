"""Lists for scripts: ``--all`` as JSON Lines, written as the rows are read.

A page of any list command is one JSON document in the shape of
:func:`tracekit.records.models.list_json` (docs/json.md, "Lists"). ``--all --json``
writes every matching row instead, one JSON object a line: each row is written as soon
as it is read from the store, never collected, so memory stays flat however many rows
there are (a national store's millions of contacts or audit entries).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TextIO

from tracekit.cli.context import settings


def check_all(all_rows: bool) -> None:
    """Refuse ``--all`` without ``--json``: it is for scripts (a table of every row would
    have to be held whole to be laid out)."""
    if all_rows and not settings().json:
        from tracekit.errors import UsageProblem

        raise UsageProblem(
            "--all writes every row as JSON Lines, for scripts: add --json",
            hint="at a terminal, page through with --limit N and --offset N",
        )


def write_json_lines(rows: Iterable[Any], stream: TextIO | None = None) -> int:
    """Write each row (a record with ``to_json()``, or a dict) as one line of JSON, in
    the order given, as it comes: ``rows`` is consumed one at a time and nothing is kept.
    Returns how many were written."""
    from tracekit.cli.safe_text import terminal_json

    out = stream if stream is not None else sys.stdout
    written = 0
    for row in rows:
        out.write(terminal_json(row.to_json() if hasattr(row, "to_json") else row) + "\n")
        written += 1
    out.flush()
    return written
