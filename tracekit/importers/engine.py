"""The import pass: read, map, validate and write, in batches, inside one transaction.

One streaming pass over the input, all inside one store transaction:

1. rows are read (see :mod:`tracekit.importers.readers`) and mapped to fields;
2. every :data:`BATCH_ROWS` rows, the batch is checked against the store with a few
   set-based queries (external ids already imported, the cases contacts name, people
   already stored with the same NHS number or name and date of birth), each row is
   validated (every problem of every row is collected, never the cell's value), and
   the valid rows are written with ``executemany``: the same column values the
   :class:`~tracekit.records.Casebook` writes, computed with its own rule functions;
3. at the end, in strict mode, any invalid row rolls the whole transaction back and
   :class:`ImportInvalid` lists the problems; otherwise the import's log row and its one
   audit entry are added and the transaction commits.

So the store has either the whole import or none of it, also when the process is killed
(SQLite's rollback journal undoes an unfinished transaction when the store is next
opened), memory stays flat whatever the file size, and standard input works (nothing is
read twice and nothing is written outside the store, except the rejects file the user
asked for). ``dry_run`` is the same pass, always rolled back.

People in sensitive roles (see :mod:`tracekit.importers.triage`) are marked in the same
transaction as the row that creates them: they never enter the search index, appear in
the summary by reference only (and only once committed: a rolled-back pass's references
never existed), and their rows are withheld from the rejects file (a line saying so and
what to do instead, skipped when the rejects file is imported). Every other rejected row
is scrubbed of marked people's details. No message ever contains a cell's value.

Problems are kept in full only for the first ``max_problems``; every problem is counted
in its kind (:class:`ProblemGroup`), so the report stays small whatever the file size.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, NamedTuple

from tracekit import audit, files
from tracekit.bundle.recalls import create_recall, handed_over_in_clear
from tracekit.domain.refs import RefKind, parse_ref
from tracekit.errors import StoreExists, TracekitError, ValidationError
from tracekit.importers import columns as cols
from tracekit.importers import triage
from tracekit.importers.fastpath import draw_block_refs, name_and_key, printable_text, search_terms_for
from tracekit.importers.readers import NOT_A_VALUE, OpenedInput, RowError, cell_text, open_input
from tracekit.records import association
from tracekit.records.casebook import Casebook, new_case_values, new_exposure_values, utcnow
from tracekit.records.derived import RuleValues
from tracekit.records.identity import WITHHELD_IN_TEXT, identifier_keys, identity_matcher
from tracekit.records.inputs import (
    ADDRESS_MAX_LENGTH,
    CASE_VALIDATORS,
    EXPOSURE_VALIDATORS,
    NOTES_MAX_LENGTH,
    PERSON_VALIDATORS,
)
from tracekit.records.models import CaseStatus, Person
from tracekit.records.tables import CASES, EXPOSURES, PEOPLE, PERSON_DETAILS_BESIDES_NAME, Table
from tracekit.store import Store, search_index

BATCH_ROWS = 2000
MAX_PROBLEMS = 100
#: Kinds of problem (field, column, problem) counted separately; the rest are counted together.
MAX_PROBLEM_GROUPS = 200
#: Example lines kept per kind of problem (and shown on the terminal).
GROUP_EXAMPLE_LINES = 20
SHOWN_EXAMPLE_LINES = 5
#: Lines listed for contacts exposed outside their case's infectious period.
MAX_LISTED_LINES = 1000
EXTERNAL_ID_MAX_LENGTH = 200
#: Values per ``IN (...)`` list.
IN_CHUNK = 500
#: Low-cardinality validations (dates, choices, numbers) are memoised up to this size.
MEMO_LIMIT = 50_000
CASE_CACHE_LIMIT = 20_000


# ------------------------------------------------------------------------ results


@dataclass
class Problem:
    """One problem of one row: where, which field, what is wrong, what was expected."""

    line: int | None
    column: str | None
    field: str
    problem: str
    expected: str | None

    @classmethod
    def from_error(cls, error: ValidationError) -> Problem:
        return cls(error.row, error.column, error.field, error.problem, error.expected)

    def text(self) -> str:
        return ValidationError(
            self.field, self.problem, expected=self.expected, row=self.line, column=self.column
        ).message

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "problem": self.problem,
            "expected": self.expected,
        }


@dataclass
class ProblemGroup:
    """One kind of problem (same field, column and problem) across all rows, with its
    count, example lines, and (see :func:`_diagnose`) the likely cause and the fix."""

    field: str
    column: str | None
    problem: str
    expected: str | None
    count: int = 0
    lines: list[int] = dataclasses.field(default_factory=list)
    cause: str | None = None
    fix: str | None = None

    def add(self, line: int | None) -> None:
        self.count += 1
        if line is not None and len(self.lines) < GROUP_EXAMPLE_LINES:
            self.lines.append(line)

    def text(self) -> list[str]:
        """The group as terminal lines: one problem as before, many with a count and lines."""
        first = Problem(self.lines[0] if self.lines else None, self.column, self.field, self.problem, self.expected)
        if self.count == 1:
            lines = [first.text()]
        else:
            shown = ", ".join(str(n) for n in self.lines[:SHOWN_EXAMPLE_LINES])
            more = self.count - min(len(self.lines), SHOWN_EXAMPLE_LINES)
            where = f"lines {shown}" + (f" and {more:,} more" if more else "")
            lines = [
                f"{self.count:,} rows: {Problem(None, self.column, self.field, self.problem, self.expected).text()}"
                f" - {where}"
            ]
        if self.cause:
            lines.append(f"  likely cause: {self.cause}")
        if self.fix:
            lines.append(f"  fix: {self.fix}")
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "column": self.column,
            "problem": self.problem,
            "expected": self.expected,
            "count": self.count,
            "lines": self.lines,
            "cause": self.cause,
            "fix": self.fix,
        }


@dataclass
class ImportSummary:
    kind: str
    file: str
    format: str
    sha256: str = ""
    bytes: int = 0
    dry_run: bool = False
    skip_invalid: bool = False
    committed: bool = False
    import_id: int | None = None
    rows_read: int = 0
    imported: int = 0
    linked: int = 0
    unchanged: int = 0
    invalid: int = 0
    people_created: int = 0
    #: People marked by this import: ``{"person", "record", "role"}`` (references only).
    marked: list[dict[str, Any]] = field(default_factory=list)
    #: Imported rows about people in sensitive roles (newly marked or marked before).
    sensitive_rows: int = 0
    outside_infectious_period: int = 0
    #: ``{"line", "case"}`` of the first :data:`MAX_LISTED_LINES` of them.
    outside_infectious_period_lines: list[dict[str, Any]] = field(default_factory=list)
    #: Lines of an earlier rejects file standing for withheld rows (see :data:`WITHHELD_LINE`).
    withheld_skipped: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    problems_total: int = 0
    problem_groups: dict[tuple[str, str | None, str, str | None], ProblemGroup] = field(default_factory=dict)
    #: Problems of kinds beyond :data:`MAX_PROBLEM_GROUPS` (counted, not grouped).
    problems_ungrouped: int = 0
    rejects_file: str | None = None
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        return self.unchanged + self.withheld_skipped + (self.invalid if self.skip_invalid else 0)

    def marked_by_role(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in self.marked:
            counts[entry["role"]] = counts.get(entry["role"], 0) + 1
        return dict(sorted(counts.items()))

    def add_problem(self, error: ValidationError, max_listed: int) -> None:
        problem = Problem.from_error(error)
        self.problems_total += 1
        if len(self.problems) < max_listed:
            self.problems.append(problem)
        key = (problem.field, problem.column, problem.problem, problem.expected)
        group = self.problem_groups.get(key)
        if group is None:
            if len(self.problem_groups) >= MAX_PROBLEM_GROUPS:
                self.problems_ungrouped += 1
                return
            group = self.problem_groups[key] = ProblemGroup(*key)
        group.add(problem.line)

    def problem_report(self) -> list[str]:
        """The problems for the terminal: grouped by kind, most frequent first."""
        lines: list[str] = []
        for group in sorted(self.problem_groups.values(), key=lambda g: -g.count):
            lines += group.text()
        if self.problems_ungrouped:
            lines.append(f"... and {self.problems_ungrouped:,} more problems of other kinds (fix the ones above first)")
        return lines

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    @property
    def nothing_changed(self) -> bool:
        return self.imported == 0 and not self.marked

    def to_json(self) -> dict[str, Any]:
        # Until the import commits, nothing was imported and no reference drawn is real:
        # the counts say "would", and no person or record reference is given.
        done = self.committed
        rows: dict[str, Any] = {
            "read": self.rows_read,
            "imported": self.imported if done else 0,
            "linked": self.linked,
            "unchanged": self.unchanged,
            "invalid": self.invalid,
            "withheld_skipped": self.withheld_skipped,
            "skipped": self.skipped,
            "marked_sensitive": len(self.marked) if done else 0,
            "sensitive": self.sensitive_rows if done else 0,
        }
        would: dict[str, Any] = {}
        if not done:
            rows.update(
                would_import=self.imported,
                would_mark_sensitive=len(self.marked),
                would_be_sensitive=self.sensitive_rows,
            )
            would = {"people_would_be_created": self.people_created}
        return {
            "kind": self.kind,
            "file": self.file,
            "format": self.format,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "dry_run": self.dry_run,
            "mode": "skip-invalid" if self.skip_invalid else "strict",
            "committed": self.committed,
            "import_id": self.import_id,
            "rows": rows,
            "people_created": self.people_created if done else 0,
            **would,
            "marked_sensitive": self.marked if done else [],
            "marked_by_role": self.marked_by_role(),
            "outside_infectious_period": self.outside_infectious_period,
            "outside_infectious_period_lines": self.outside_infectious_period_lines,
            "columns": self.columns,
            "ignored_columns": self.ignored_columns,
            "problems": [p.to_json() for p in self.problems],
            "problems_total": self.problems_total,
            "problem_groups": [g.to_json() for g in sorted(self.problem_groups.values(), key=lambda g: -g.count)],
            "problems_ungrouped": self.problems_ungrouped,
            "rejects_file": self.rejects_file,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
        }

    def audit_reason(self) -> str:
        return (
            f"{self.file} sha256:{self.sha256}: {self.rows_read} read, {self.imported} imported, "
            f"{self.linked} linked, {self.unchanged} unchanged, {self.invalid} invalid, "
            f"{len(self.marked)} marked sensitive"
        )


class ImportInvalid(ValidationError):
    """Strict mode found invalid rows, so nothing was imported. ``summary`` has them all."""

    def __init__(self, summary: ImportSummary) -> None:
        self.summary = summary
        self.field = "rows"
        self.problem = f"{summary.invalid} invalid"
        self.expected = None
        self.row = None
        self.column = None
        TracekitError.__init__(
            self,
            _invalid_message(summary),
            hint="fix those rows and run the same command again (rows already imported are skipped), "
            "or import the valid rows with --skip-invalid --rejects FILE",
        )


def _invalid_message(summary: ImportSummary) -> str:
    what = "dry run: nothing was written" if summary.dry_run else "strict mode: nothing was imported"
    lines = [f"{summary.invalid:,} of {summary.rows_read:,} rows of {summary.file} are invalid ({what}):"]
    lines += [f"  {line}" for line in summary.problem_report()]
    if summary.rejects_file:
        lines.append(f"  The invalid rows are in {summary.rejects_file}.")
    return "\n".join(lines)


@dataclass
class ImportOptions:
    format: str | None = None
    #: header text -> field name or "ignore" (``--map`` and the mapping file)
    mapping: dict[str, str] = field(default_factory=dict)
    dry_run: bool = False
    skip_invalid: bool = False
    rejects: Path | None = None
    today: date | None = None
    batch_rows: int = BATCH_ROWS
    max_problems: int = MAX_PROBLEMS


# ------------------------------------------------------------------------- rows


class _Row:
    """One data row on its way through a batch."""

    __slots__ = (
        "case",
        "case_ext",
        "case_ref",
        "cells",
        "ext",
        "line",
        "name_key",
        "person_ext",
        "person_id",
        "person_new",
        "person_ok",
        "problems",
        "raw",
        "role",
        "role_reason",
        "sensitive",
        "values",
    )

    def __init__(self, line: int, cells: Any) -> None:
        self.line = line
        self.cells = cells
        self.raw: dict[str, Any] = {}
        self.ext: str | None = None
        self.values: dict[str, Any] = {}
        self.problems: list[ValidationError] = []
        self.sensitive = False
        self.role: str | None = None
        self.role_reason: str | None = None
        self.person_ok = False
        self.name_key: str | None = None
        self.person_ext: str | None = None
        self.person_id: int | None = None
        self.person_new = False
        self.case: _CaseFacts | None = None
        self.case_ref: str | None = None
        self.case_ext: str | None = None


def _memo(fn: Callable[[Any], Any], limit: int = MEMO_LIMIT) -> Callable[[Any], Any]:
    """Memoise a validator, errors included (they carry no value, only the field)."""
    cache: dict[Any, Any] = {}

    def call(value: Any) -> Any:
        try:
            result = cache[value]
        except KeyError:
            try:
                result = fn(value)
            except ValidationError as error:
                result = error
            if len(cache) >= limit:
                cache.clear()
            cache[value] = result
        if isinstance(result, ValidationError):
            raise result
        return result

    return call


def _external_id(text: Any, field_name: str) -> str:
    value = " ".join(str(text).split())
    if len(value) > EXTERNAL_ID_MAX_LENGTH:
        raise ValidationError(
            field_name, f"is {len(value)} characters long", expected=f"at most {EXTERNAL_ID_MAX_LENGTH}"
        )
    if not value.isprintable():
        raise ValidationError(field_name, "contains control characters", expected="plain text")
    return value


class _LRU(OrderedDict):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.limit:
            self.popitem(last=False)


def _chunks(values: Iterable[Any], size: int = IN_CHUNK) -> Iterable[list[Any]]:
    items = list(values)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


# ---------------------------------------------------------------------- rejects


class _Rejects:
    """The rejects file: invalid rows as read, plus the reason; written atomically (0600).

    It is plaintext outside the store, so it is scrubbed like every other output (see
    docs/import-guide.md): a row about a person in a sensitive role is one line saying
    so (its input line number and problems, no cell), and in every other row any cell
    carrying a marked person's details reads ``[withheld]`` there (``scrubber``). Rows
    are held back (up to :data:`REJECTS_HELD_ROWS`) and scrubbed when written, so that a
    person marked further down the file is scrubbed from earlier rows too.
    """

    def __init__(
        self,
        dest: Path,
        opened: OpenedInput,
        plan: cols.ColumnPlan | None,
        stack: contextlib.ExitStack,
        scrubber: Callable[[list[Person]], Callable[[str], str]],
        *,
        replace: bool = False,
    ) -> None:
        self.dest = dest
        #: ``dest`` is a rejects file tracekit wrote before (see :func:`rejects_destination`):
        #: it is replaced, also by an empty one when no row is rejected this time.
        self.replace = replace
        self.opened = opened
        self.plan = plan
        self.stack = stack
        self.scrubber = scrubber
        self.count = 0
        self._writer: Any = None
        self._text: io.TextIOWrapper | None = None
        self._headers: list[str] = []
        self._held: list[tuple[_Row, str]] = []
        #: The people of rejected sensitive rows: stored nowhere, scrubbed from other rows.
        self._sensitive_people: list[Person] = []

    def _open(self) -> None:
        handle = self.stack.enter_context(files.atomic_output(self.dest, overwrite=self.replace))
        self._text = io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=False)
        self.stack.callback(self._text.detach)  # flush; atomic_output closes the handle
        self.stack.callback(self._text.flush)
        if self.opened.has_bom or self.opened.format == "xlsx":
            self._text.write("\ufeff")  # as the input (a spreadsheet's rows open in Excel as UTF-8)
        if self.opened.format != "jsonl":
            dialect = self.opened.dialect or csv.excel
            self._writer = csv.writer(self._text, dialect)
            self._headers = [str(h) if h is not None else "" for h in (self.plan.headers if self.plan else [])]
            self._writer.writerow([*self._headers, cols.REJECTS_COLUMN])

    def sync(self) -> None:
        """Flush and fsync what was written, before the import commits: a full disk must
        fail the import (rolled back), not be reported after it has committed."""
        if self._text is not None:
            self._text.flush()
            handle = self._text.buffer
            handle.flush()
            os.fsync(handle.fileno())

    def write(self, row: _Row, reason: str) -> None:
        self.count += 1
        if row.sensitive:
            self._sensitive_people.append(_person_of(row))
            reason = withheld_reason(row.line, self.opened.name, reason)
        self._held.append((row, reason))
        if len(self._held) >= REJECTS_HELD_ROWS:
            self.flush()

    def flush(self, *, final: bool = False) -> None:
        """Write the held rows, scrubbed against everyone marked by now (at the end, an
        earlier rejects file being replaced is replaced even when no row was rejected)."""
        if not self._held and not (final and self.replace and self._text is None):
            return
        if self._text is None:
            self._open()
        assert self._text is not None
        scrub = self.scrubber(self._sensitive_people)
        for row, reason in self._held:
            if self.opened.format == "jsonl":
                obj = row.cells if isinstance(row.cells, dict) and not row.sensitive else {}
                obj = {k: _scrub_json(v, scrub) for k, v in obj.items() if k != cols.REJECTS_COLUMN}
                self._text.write(
                    json.dumps({**obj, cols.REJECTS_COLUMN: reason}, ensure_ascii=False, default=str) + "\n"
                )
                continue
            cells = list(row.cells) if isinstance(row.cells, list) and not row.sensitive else []
            cells += [None] * (len(self._headers) - len(cells))
            self._writer.writerow([*("" if v in (None, "") else scrub(str(v)) for v in cells), reason])
        self._held = []


#: What the rejects file says instead of a row about a person in a sensitive role.
SENSITIVE_REJECT = "withheld: concerns a person in a sensitive role, so its cells are not copied here"
#: A rejects-file line standing for a withheld row: skipped when the rejects file is imported.
WITHHELD_LINE = re.compile(r"line \d+ withheld: ")
#: How much of an existing file is read to tell whether tracekit wrote it as a rejects file.
REJECTS_HEAD_BYTES = 64 * 1024


def withheld_reason(line: int, source: str, problems: str) -> str:
    """The rejects file's line for a withheld row: what to do, since its values are not there."""
    return (
        f"line {line} {SENSITIVE_REJECT}; fix line {line} of {source} itself and import {source} again "
        f"(its rows imported before are skipped as unchanged); importing this file skips this line; "
        f"problems: {problems}"
    )


def rejects_destination(path: Path) -> bool:
    """Whether ``--rejects path`` replaces a file: False for a new path, True for a rejects
    file tracekit wrote (its header or first object has the ``import_error`` column) or an
    empty file; any other file raises :class:`StoreExists` (never clobbered)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return False
    refuse = StoreExists(
        f"{path} already exists and is not a rejects file tracekit wrote; tracekit never overwrites it"
    )
    if path.is_symlink():
        raise refuse
    try:
        with files.open_regular_file(path, what="rejects file", error=lambda _: refuse) as handle:
            head = handle.read(REJECTS_HEAD_BYTES)
    except OSError:
        raise refuse from None
    if not head:
        return True
    first = head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8-sig", errors="replace")
    if first.startswith("{"):
        try:
            written = isinstance(obj := json.loads(first), dict) and cols.REJECTS_COLUMN in obj
        except ValueError:
            written = False
    else:
        written = first.rstrip().endswith((cols.REJECTS_COLUMN, f'"{cols.REJECTS_COLUMN}"'))
    if not written:
        raise refuse
    return True


#: Rejected rows held back before writing (see :class:`_Rejects`); beyond this many they
#: are written as they come, scrubbed against the people marked so far, so memory stays flat.
REJECTS_HELD_ROWS = 10_000


def _person_of(row: _Row) -> Person:
    """The details a rejected sensitive row gives (those that passed validation; the name as typed)."""
    v = row.values
    name = v.get("name") or " ".join(str(row.raw.get(f) or "") for f in ("name", "given_name", "family_name"))
    return Person(
        id=0,
        ref="",
        name=name,
        date_of_birth=v.get("date_of_birth"),
        nhs_number=v.get("nhs_number"),
        phone=v.get("phone"),
        email=v.get("email"),
        postcode=v.get("postcode"),
    )


def _scrub_json(value: Any, scrub: Callable[[str], str]) -> Any:
    """A JSON Lines cell, scrubbed: text in place; a number or nested value as a whole."""
    if value is None or isinstance(value, bool):
        return value
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    clean = scrub(text)
    if isinstance(value, str) or clean == text:
        return clean if isinstance(value, str) else value
    return WITHHELD_IN_TEXT


# ----------------------------------------------------------------- what is imported


class _CaseFacts(NamedTuple):
    """What a contact row needs of the case it names."""

    id: int
    ref: str
    person_id: int
    status: str
    infectious_start: str
    infectious_end: str


#: The SELECT list of :class:`_CaseFacts` (cases as ``c``).
_CASE_FACTS_SQL = ", ".join(f"c.{name}" for name in _CaseFacts._fields)


class _Kind:
    """What differs between importing cases and contacts (one instance per import)."""

    #: The import kind ("cases", "contacts"), as the command and the audit name it.
    name: str
    #: The kind of record in ``external_ids``.
    external: str
    table: Table
    ref_kind: RefKind
    #: The record's own fields, validated in this order.
    fields: tuple[str, ...]
    #: Those of them that are dates (checked against today).
    dates: tuple[str, ...]

    def __init__(self, importer: _Importer) -> None:
        self.importer = importer
        #: Each field's validator, as the case book's.
        self.validators: dict[str, Callable[..., Any]] = {}

    def converters(
        self, dated: Callable[[Callable[..., Any]], Callable[[Any], Any]]
    ) -> dict[str, Callable[[Any], Any]]:
        """The fields' validators for many rows: dates against today, notes by the fast
        path for free text, the rest memoised (they have few distinct values)."""
        converters = {}
        for name in self.fields:
            validate = self.validators[name]
            if name == "notes":
                converters[name] = printable_text(validate, NOTES_MAX_LENGTH, collapse=False)
            elif name in self.dates:
                converters[name] = dated(validate)
            else:
                converters[name] = _memo(validate)
        return converters

    def check(self, row: _Row) -> None:
        """The checks across fields, once each field is validated."""
        raise NotImplementedError

    def resolve(self, rows: list[_Row]) -> None:
        """Look up in the store what the batch's rows refer to (besides their people)."""

    def values(self, row: _Row) -> dict[str, Any]:
        """The new record's columns from a valid row (but its id, reference and times)."""
        raise NotImplementedError


class _Cases(_Kind):
    name, external, table, ref_kind = "cases", "case", CASES, RefKind.CASE
    fields = (*CASES.details, "asymptomatic")
    dates = ("test_date", "symptom_onset")

    def __init__(self, importer: _Importer) -> None:
        super().__init__(importer)
        self.validators = {**CASE_VALIDATORS, "asymptomatic": _flag("asymptomatic")}

    def check(self, row: _Row) -> None:
        problem = self.importer._problem
        values, raw = row.values, row.raw
        if not _given(raw.get("test_date")):
            problem(row, ValidationError("test_date", "is required", expected="the date of the positive test"))
        onset = values.get("symptom_onset")
        asymptomatic = values.get("asymptomatic", False)
        if not _given(raw.get("symptom_onset")) and not asymptomatic:
            problem(
                row,
                ValidationError(
                    "symptom_onset", "is required", expected="the date symptoms started, or asymptomatic = yes"
                ),
            )
        if onset is not None and asymptomatic:
            problem(
                row,
                ValidationError(
                    "symptom_onset",
                    "was given for an asymptomatic case",
                    expected="either an onset date or asymptomatic = yes",
                ),
            )
        test_date = values.get("test_date")
        if test_date is not None:
            try:
                self.importer.casebook._check_case_dates(test_date, onset, values.get("date_of_birth"))
            except ValidationError as error:
                problem(row, error)

    def values(self, row: _Row) -> dict[str, Any]:
        v = row.values
        return new_case_values(v, self.importer.rules.case(v["test_date"], v.get("symptom_onset")))


class _Contacts(_Kind):
    name, external, table, ref_kind = "contacts", "contact", EXPOSURES, RefKind.EXPOSURE
    fields = EXPOSURES.details
    dates = ("last_exposure",)

    def __init__(self, importer: _Importer) -> None:
        super().__init__(importer)
        self.validators = EXPOSURE_VALIDATORS
        self._case_by_ref = _LRU(CASE_CACHE_LIMIT)
        self._case_by_ext = _LRU(CASE_CACHE_LIMIT)

    def check(self, row: _Row) -> None:
        problem = self.importer._problem
        raw = row.raw
        if not _given(raw.get("last_exposure")):
            problem(row, ValidationError("last_exposure", "is required", expected="the date of last contact"))
        if not _given(raw.get("setting")):
            problem(row, ValidationError("setting", "is required", expected="where it happened"))
        case_ref, case_ext = raw.get("case_ref"), raw.get("case_external_id")
        if _given(case_ref):
            try:
                row.case_ref = parse_ref(str(case_ref), RefKind.CASE)
            except ValidationError as error:
                problem(row, ValidationError("case_ref", error.problem, expected=error.expected))
        if _given(case_ext):
            try:
                row.case_ext = _external_id(case_ext, "case_external_id")
            except ValidationError as error:
                problem(row, error)
        if not _given(case_ref) and not _given(case_ext):
            problem(
                row,
                ValidationError(
                    "case_ref",
                    "is required",
                    expected="the case's reference (C-...) or its external id from a case import",
                ),
            )

    def resolve(self, rows: list[_Row]) -> None:
        """The cases the rows name, by reference or external id (checked: known, the
        same case by both, not referred)."""
        conn, problem = self.importer.conn, self.importer._problem
        # The batch's cases are resolved into local dicts: the caches only save queries
        # (adding to a cache may evict an entry this very batch still needs).
        cases_by_ref: dict[str, _CaseFacts | None] = {}
        cases_by_ext: dict[str, _CaseFacts | None] = {}
        for row in rows:
            if row.case_ref and row.case_ref not in cases_by_ref and row.case_ref in self._case_by_ref:
                cases_by_ref[row.case_ref] = self._case_by_ref[row.case_ref]
            if row.case_ext and row.case_ext not in cases_by_ext and row.case_ext in self._case_by_ext:
                cases_by_ext[row.case_ext] = self._case_by_ext[row.case_ext]
        refs = {r.case_ref for r in rows if r.case_ref and r.case_ref not in cases_by_ref}
        exts = {r.case_ext for r in rows if r.case_ext and r.case_ext not in cases_by_ext}
        for ref in refs:
            cases_by_ref[ref] = None
        for ext in exts:
            cases_by_ext[ext] = None
        for chunk in _chunks(refs):
            for found in conn.execute(
                f"SELECT {_CASE_FACTS_SQL} FROM cases c WHERE c.ref IN ({_marks(len(chunk))})", chunk
            ):
                facts = _CaseFacts._make(found)
                cases_by_ref[facts.ref] = facts
        for chunk in _chunks(exts):
            for ext, *found in conn.execute(
                f"SELECT x.external_id, {_CASE_FACTS_SQL} FROM external_ids x JOIN cases c ON c.id = x.record_id "
                f"WHERE x.kind = 'case' AND x.external_id IN ({_marks(len(chunk))})",
                chunk,
            ):
                cases_by_ext[ext] = _CaseFacts._make(found)
        for ref in refs:
            self._case_by_ref.put(ref, cases_by_ref[ref])
        for ext in exts:
            self._case_by_ext.put(ext, cases_by_ext[ext])
        for row in rows:
            by_ref = cases_by_ref.get(row.case_ref) if row.case_ref else None
            by_ext = cases_by_ext.get(row.case_ext) if row.case_ext else None
            if row.case_ref and by_ref is None:
                problem(
                    row,
                    ValidationError(
                        "case_ref",
                        "is not the reference of a case in the store",
                        expected="a case reference such as C-7K2M9Q",
                    ),
                )
            if row.case_ext and by_ext is None:
                problem(
                    row,
                    ValidationError(
                        "case_external_id",
                        "is not the external id of a case imported before",
                        expected="the external id of a case from an earlier 'tracekit import cases'",
                    ),
                )
            if by_ref and by_ext and by_ref.id != by_ext.id:
                problem(
                    row,
                    ValidationError(
                        "case_ref",
                        f"names {by_ref.ref} but case_external_id names {by_ext.ref}",
                        expected="both columns naming the same case",
                    ),
                )
            case = by_ref or by_ext
            if case is not None and case.status == CaseStatus.REFERRED.value:
                problem(
                    row,
                    ValidationError(
                        "case_ref",
                        f"{case.ref} has been referred",
                        expected="an open or closed case; add a referred case's contacts through the vetted team",
                    ),
                )
            row.case = case

    def values(self, row: _Row) -> dict[str, Any]:
        v = row.values
        case = row.case
        assert case is not None
        last = v["last_exposure"].isoformat()
        summary = self.importer.summary
        if not case.infectious_start <= last <= case.infectious_end:
            summary.outside_infectious_period += 1
            if len(summary.outside_infectious_period_lines) < MAX_LISTED_LINES:
                summary.outside_infectious_period_lines.append({"line": row.line, "case": case.ref})
        return {**new_exposure_values(v, self.importer.rules.exposure(v)), "case_id": case.id}


#: The import kinds, by name.
KINDS: dict[str, type[_Kind]] = {kind.name: kind for kind in (_Cases, _Contacts)}


# ------------------------------------------------------------------------ the pass


class _Importer:
    def __init__(
        self,
        store: Store,
        kind: str,
        opened: OpenedInput,
        options: ImportOptions,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.store = store
        self.kind = KINDS[kind](self)
        self.opened = opened
        self.options = options
        self.progress = progress
        self.casebook = Casebook(store, today=options.today)
        self.today = self.casebook.today
        # The pinned rule set cannot change inside the import's transaction: read once.
        self.rules = RuleValues(self.casebook.pinned_ruleset)
        self.summary = ImportSummary(
            kind, opened.name, opened.format, dry_run=options.dry_run, skip_invalid=options.skip_invalid
        )
        self.plan: cols.ColumnPlan | None = None
        self._json_fields: dict[str, str | None] = {}
        self.conn: Any = None
        self.import_id = 0
        self._converters = self._build_converters()
        self.rejects: _Rejects | None = None
        self.replace_rejects = False
        self._rejects_index: int | None = None

    # -- validators -------------------------------------------------------------------
    def _build_converters(self) -> dict[str, Callable[[Any], Any]]:
        today = self.today
        P = PERSON_VALIDATORS

        def dated(fn: Callable[..., Any]) -> Callable[[Any], Any]:
            return _memo(lambda value: fn(value, today))

        # Every person detail of the spec is validated as the case book validates it;
        # some faster (memoised, or the fast path for free text).
        converters = {name: P[name] for name in PERSON_DETAILS_BESIDES_NAME}
        converters.update(
            {
                "date_of_birth": dated(P["date_of_birth"]),
                "address": printable_text(P["address"], ADDRESS_MAX_LENGTH, collapse=True),
                "postcode": _memo(P["postcode"]),
                "occupation": _memo(P["occupation"]),
            }
        )
        converters.update(self.kind.converters(dated))
        return converters

    # -- mapping ----------------------------------------------------------------------
    def _set_header(self, cells: list[Any]) -> None:
        headers = ["" if c is None else str(c) for c in cells]
        self.plan = cols.plan_columns(self.kind.name, headers, self.options.mapping)
        self.summary.columns = self.plan.mapping()
        self.summary.ignored_columns = list(self.plan.ignored)
        self._index_items = sorted(self.plan.index.items(), key=lambda kv: kv[1])
        self._width = len(headers)
        self._column_of = {name: headers[i] for name, i in self.plan.index.items()}
        rejects_column = cols.normal_header(cols.REJECTS_COLUMN)
        self._rejects_index = next((i for i, h in enumerate(headers) if cols.normal_header(h) == rejects_column), None)

    def _stands_for_withheld_row(self, cells: Any) -> bool:
        """A line of a rejects file standing for a withheld row: no cell but its import_error."""
        if isinstance(cells, dict):
            given = [(k, v) for k, v in cells.items() if v not in (None, "")]
            if len(given) != 1 or cols.normal_header(given[0][0]) != cols.normal_header(cols.REJECTS_COLUMN):
                return False
            note = given[0][1]
        elif isinstance(cells, list) and self._rejects_index is not None and self._rejects_index < len(cells):
            note = cells[self._rejects_index]
            if any(c not in (None, "") for i, c in enumerate(cells) if i != self._rejects_index):
                return False
        else:
            return False
        return isinstance(note, str) and WITHHELD_LINE.match(note) is not None

    def _json_field(self, key: str) -> str | None:
        try:
            return self._json_fields[key]
        except KeyError:
            plan = cols.plan_columns(self.kind.name, [key], self.options.mapping, complete=False)
            name = next(iter(plan.index), None)
            self._json_fields[key] = name
            if name is None and cols.normal_header(key) != cols.normal_header(cols.REJECTS_COLUMN):
                self.summary.ignored_columns.append(key)
            elif name is not None:
                self.summary.columns[key] = name
            return name

    def _column(self, name: str) -> str | None:
        if self.opened.format == "jsonl":
            for key, mapped in self._json_fields.items():
                if mapped == name:
                    return key
            return name
        return self._column_of.get(name)

    def _map_row(self, row: _Row) -> None:
        """Fill ``row.raw`` (field -> cell) from the row's cells."""
        cells = row.cells
        if isinstance(cells, dict):
            seen: dict[str, str] = {}
            for key, value in cells.items():
                name = self._json_field(key)
                if name is None:
                    continue
                if name in seen:
                    row.problems.append(
                        ValidationError(
                            name,
                            f"is given twice (keys {seen[name]!r} and {key!r})",
                            expected="one key per field",
                            row=row.line,
                        )
                    )
                    continue
                seen[name] = key
                text = cell_text(value)
                if text is NOT_A_VALUE:
                    row.problems.append(
                        ValidationError(
                            name, "is not a single value", expected="text or a number", row=row.line, column=key
                        )
                    )
                    continue
                row.raw[name] = text
            return
        if len(cells) > self._width and any(c not in (None, "") for c in cells[self._width :]):
            row.problems.append(
                ValidationError(
                    "row",
                    f"has {len(cells)} cells but the header has {self._width}",
                    expected="one cell per column (check the quoting)",
                    row=row.line,
                )
            )
        raw = row.raw
        n = len(cells)
        for name, i in self._index_items:
            if i < n:
                raw[name] = cells[i]

    # -- validation -------------------------------------------------------------------
    def _problem(self, row: _Row, error: ValidationError, name: str | None = None) -> None:
        column = self._column(name or error.field)
        row.problems.append(error.at(row=row.line, column=column))

    def _validate(self, row: _Row) -> None:
        """Validate every field of ``row``; collect all problems; decide sensitivity."""
        raw = row.raw
        values = row.values
        convert = self._converters
        # Sensitivity first: it decides what the rejects file may show.
        role_text = raw.get("role")
        if isinstance(role_text, str) and role_text.strip():
            try:
                row.role = triage.role_from_cell(role_text)
            except ValidationError as error:
                row.sensitive = True
                self._problem(row, error)
            if row.role:
                row.role_reason = triage.ROLE_REASON
        occupation = raw.get("occupation")
        if row.role is None and isinstance(occupation, str) and occupation and _occupation_sensitive(occupation):
            row.role, row.role_reason = "other", triage.OCCUPATION_REASON
        if row.role:
            row.sensitive = True
        # Person.
        person_problems = len(row.problems)
        name_text = raw.get("name")
        if name_text in (None, "") or (isinstance(name_text, str) and not name_text.strip()):
            given, family = raw.get("given_name"), raw.get("family_name")
            parts = [str(p) for p in (given, family) if p not in (None, "") and str(p).strip()]
            name_text = " ".join(parts) if parts else None
        if name_text is None:
            self._problem(row, ValidationError("name", "is required", expected="the person's full name"))
        else:
            try:
                values["name"], row.name_key = name_and_key(str(name_text))
            except ValidationError as error:
                self._problem(row, error, "name")
        # Cells are text, a date (spreadsheets) or None (see readers).
        for name in PERSON_DETAILS_BESIDES_NAME:
            value = raw.get(name)
            if not value or (value.__class__ is str and value.isspace()):
                continue
            try:
                values[name] = convert[name](value)
            except ValidationError as error:
                self._problem(row, error, name)
        person_ext = raw.get("person_external_id")
        if person_ext not in (None, "") and str(person_ext).strip():
            try:
                row.person_ext = _external_id(person_ext, "person_external_id")
            except ValidationError as error:
                self._problem(row, error)
        row.person_ok = len(row.problems) == person_problems and "name" in values
        # The record's own fields.
        for name in self.kind.fields:
            value = raw.get(name)
            if not value or (value.__class__ is str and value.isspace()):
                continue
            try:
                values[name] = convert[name](value)
            except ValidationError as error:
                self._problem(row, error, name)
        self.kind.check(row)

    # -- batches ----------------------------------------------------------------------
    def _process(self, batch: list[_Row]) -> None:
        rows = self._drop_unchanged(batch)
        for row in rows:
            if not isinstance(row.cells, RowError):
                self._validate(row)
        self.kind.resolve(rows)
        self._resolve_people(rows)
        self._write(rows)
        for row in rows:
            if row.problems:
                self._reject(row)

    def _drop_unchanged(self, batch: list[_Row]) -> list[_Row]:
        """Rows whose external id was imported before are counted and skipped."""
        wanted: dict[str, _Row] = {}
        for row in batch:
            ext = row.raw.get("external_id")
            if not _given(ext):
                row.problems.append(
                    ValidationError(
                        "external_id",
                        "is required",
                        expected="the record's id in the source system",
                        row=row.line,
                        column=self._column("external_id"),
                    )
                )
                continue
            try:
                row.ext = _external_id(ext, "external_id")
            except ValidationError as error:
                self._problem(row, error)
                continue
            if row.ext in wanted:
                self._problem(
                    row,
                    ValidationError(
                        "external_id",
                        f"repeats the external id of line {wanted[row.ext].line}",
                        expected="a different id on every row",
                    ),
                )
                continue
            wanted[row.ext] = row
        known: dict[str, int | None] = {}
        for chunk in _chunks(wanted):
            for ext, import_id in self.conn.execute(
                f"SELECT external_id, import_id FROM external_ids WHERE kind = ? AND external_id IN ({_marks(len(chunk))})",
                (self.kind.external, *chunk),
            ):
                known[ext] = import_id
        kept = []
        for row in batch:
            if row.ext is not None and row.ext in known and wanted.get(row.ext) is row:
                if known[row.ext] == self.import_id:
                    self._problem(
                        row,
                        ValidationError(
                            "external_id",
                            "repeats the external id of an earlier row of this file",
                            expected="a different id on every row",
                        ),
                    )
                else:
                    self.summary.unchanged += 1
                    continue
            kept.append(row)
        return kept

    def _resolve_people(self, rows: list[_Row]) -> None:
        """Link each row to a person already stored (or made by an earlier row), or mark it new."""
        conn = self.conn
        lookup = [r for r in rows if r.person_ok]
        by_ext: dict[str, int] = {}
        by_nhs: dict[str, set[int]] = {}
        by_key: dict[tuple[str, str], list[tuple[int, str | None]]] = {}
        exts = {r.person_ext for r in lookup if r.person_ext}
        for chunk in _chunks(exts):
            for ext, pid in conn.execute(
                f"SELECT external_id, record_id FROM external_ids WHERE kind = 'person' AND external_id IN ({_marks(len(chunk))})",
                chunk,
            ):
                by_ext[ext] = pid
        nhs_numbers = {r.values["nhs_number"] for r in lookup if "nhs_number" in r.values}
        for chunk in _chunks(nhs_numbers):
            for nhs, pid in conn.execute(
                f"SELECT nhs_number, id FROM people WHERE nhs_number IN ({_marks(len(chunk))})", chunk
            ):
                by_nhs.setdefault(nhs, set()).add(pid)
        keys = {(r.name_key, r.values["date_of_birth"].isoformat()) for r in lookup if "date_of_birth" in r.values}
        # The exact (name, date of birth) pairs: a common name has thousands of people in
        # a large store, and asking for the name alone read them all.
        for chunk in _chunks(keys):
            pairs_sql = ", ".join(["(?, ?)"] * len(chunk))
            for key, dob, pid, nhs in conn.execute(
                "SELECT name_key, date_of_birth, id, nhs_number FROM people "
                f"WHERE (name_key, date_of_birth) IN (VALUES {pairs_sql})",
                [value for pair in chunk for value in pair],
            ):
                by_key.setdefault((key, dob), []).append((pid, nhs))
        candidates = (
            set(by_ext.values()) | {p for s in by_nhs.values() for p in s} | {p for v in by_key.values() for p, _ in v}
        )
        self._marked_now: dict[int, str] = {}
        for chunk in _chunks(candidates):
            for pid, role in conn.execute(
                f"SELECT person_id, role FROM person_roles WHERE person_id IN ({_marks(len(chunk))})", chunk
            ):
                self._marked_now[pid] = role
        # (case, person) pairs already stored, for rows that name a case (contacts).
        pairs: set[tuple[int, int]] = set()
        if candidates and any(r.case is not None for r in lookup):
            for chunk in _chunks(candidates):
                pairs.update(
                    conn.execute(
                        f"SELECT case_id, person_id FROM exposures WHERE person_id IN ({_marks(len(chunk))})", chunk
                    ).fetchall()
                )
        # Rows in file order: a valid row may create a person later rows link to.
        pending_ext: dict[str, int] = {}
        pending_nhs: dict[str, int] = {}
        pending_key: dict[tuple[str, str], list[tuple[int, str | None]]] = {}
        for row in lookup:
            values = row.values
            nhs = values.get("nhs_number")
            dob = values.get("date_of_birth")
            key = (str(row.name_key), dob.isoformat()) if dob else None
            found: set[int] = set()
            if row.person_ext and (row.person_ext in by_ext or row.person_ext in pending_ext):
                found = {by_ext.get(row.person_ext) or pending_ext[row.person_ext]}
            else:
                if nhs:
                    found |= by_nhs.get(nhs, set())
                    if nhs in pending_nhs:
                        found.add(pending_nhs[nhs])
                if key:
                    for pid, their_nhs in (*by_key.get(key, ()), *pending_key.get(key, ())):
                        if nhs is None or their_nhs is None or their_nhs == nhs:
                            found.add(pid)
            if len(found) > 1:
                self._problem(
                    row,
                    ValidationError(
                        "person",
                        f"matches {len(found)} people already in the store (same NHS number, or name and date of birth)",
                        expected="details that match at most one person: merge the duplicates first "
                        "(tracekit person merge), or give a person_external_id",
                    ),
                )
                continue
            if found:
                pid = next(iter(found))
                if pid in self._marked_now:
                    row.sensitive = True
            if not found and not self._tombstones.empty:
                self._check_referred(row)
            if row.problems:
                continue  # resolved only to decide what the rejects file may show
            if row.case is not None:
                if found and pid == row.case.person_id:
                    self._problem(
                        row,
                        ValidationError(
                            "person",
                            f"is the person of case {row.case.ref}",
                            expected="a contact who is not the case themself",
                        ),
                    )
                    continue
                if found and (row.case.id, pid) in pairs:
                    self._problem(
                        row,
                        ValidationError(
                            "person",
                            f"is already a contact of {row.case.ref}",
                            expected="each person once per case (change an existing contact with 'tracekit contact update')",
                        ),
                    )
                    continue
            if found:
                row.person_id, row.person_new = pid, False
            else:
                row.person_id, row.person_new = self._next_person_id, True
                self._next_person_id += 1
                if nhs:
                    pending_nhs[nhs] = row.person_id
                if key:
                    pending_key.setdefault(key, []).append((row.person_id, nhs))
            if row.person_ext and row.person_ext not in by_ext:
                pending_ext.setdefault(row.person_ext, row.person_id)
            if row.case is not None:
                pairs.add((row.case.id, row.person_id))

    def _check_referred(self, row: _Row) -> None:
        """A new person whose details hit a referred person's tombstones: the referred
        person themself is refused (and withheld from the rejects file); someone sharing
        their phone, email or address is stored without it (see docs/threat-model.md)."""
        values = dict(row.values, name_key=row.name_key)
        hits = self._tombstones.hits(identifier_keys(values))
        if not hits:
            return
        if association.is_referred_person(hits):
            row.sensitive = True
            self._problem(
                row,
                ValidationError(
                    "person",
                    "matches a person referred to the vetted team",
                    expected="no such row here: send it to the vetted team instead",
                ),
            )
            return
        for kind in hits.keys() - {"name"}:
            for name in association.KIND_FIELDS.get(kind, ()):
                row.values.pop(name, None)

    # -- writing ----------------------------------------------------------------------
    def _unique_refs(self, kind: RefKind, table: str, count: int) -> list[str]:
        """Fresh references not used in ``table`` (nor as person aliases), in one block (see
        ``draw_block_refs``: their index stays append-mostly); redrawn on collision."""
        refs = draw_block_refs(kind, count)
        block = refs[0][2:4] if refs else None
        todo = list(range(count))
        while todo:
            drawn = {refs[i] for i in todo}
            taken: set[str] = set()
            for chunk in _chunks(drawn):
                taken.update(
                    r
                    for (r,) in self.conn.execute(f"SELECT ref FROM {table} WHERE ref IN ({_marks(len(chunk))})", chunk)
                )
                if kind is RefKind.PERSON:
                    taken.update(
                        r
                        for (r,) in self.conn.execute(
                            f"SELECT ref FROM person_aliases WHERE ref IN ({_marks(len(chunk))})", chunk
                        )
                    )
            seen: set[str] = set()
            again = []
            for i in range(count):
                ref = refs[i]
                if ref in taken or ref in seen:
                    again.append(i)
                seen.add(ref)
            fresh = draw_block_refs(kind, len(again), block)
            for i, ref in zip(again, fresh):
                refs[i] = ref
            todo = again
        return refs

    def _write(self, rows: list[_Row]) -> None:
        valid = [r for r in rows if not r.problems]
        if not valid:
            return
        conn = self.conn
        now = utcnow()
        new_people = [r for r in valid if r.person_new]
        person_refs = self._unique_refs(RefKind.PERSON, "people", len(new_people))
        ref_of: dict[int, str] = {}
        people, roles = [], []
        newly_marked: list[tuple[_Row, int]] = []
        for row, ref in zip(new_people, person_refs):
            v = row.values
            dob = v.get("date_of_birth")
            ref_of[row.person_id] = ref  # type: ignore[index]
            if row.role:
                terms = None  # marked people are never in the search index
                roles.append((row.person_id, row.role, row.role_reason, now))
                newly_marked.append((row, row.person_id))  # type: ignore[arg-type]
                self._marked_now[row.person_id] = row.role  # type: ignore[index]
            else:
                terms = search_terms_for(row.name_key, v.get("phone"), v.get("nhs_number"), v.get("postcode"))  # type: ignore[arg-type]
            people.append(
                PEOPLE.row(
                    {
                        **v,
                        "id": row.person_id,
                        "ref": ref,
                        "name_key": row.name_key,
                        "date_of_birth": dob.isoformat() if dob else None,
                        "search_terms": terms,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            )
        marked_existing: list[int] = []
        for row in valid:
            if not row.person_new and row.role and row.person_id not in self._marked_now:
                self._marked_now[row.person_id] = row.role  # type: ignore[index]
                roles.append((row.person_id, row.role, row.role_reason, now))
                marked_existing.append(row.person_id)  # type: ignore[arg-type]
                newly_marked.append((row, row.person_id))  # type: ignore[arg-type]
        # The rows Casebook._insert_person writes, a batch at a time (their search entries: at the end, in run).
        conn.executemany(PEOPLE.insert_sql, people)
        if roles:
            conn.executemany("INSERT INTO person_roles(person_id, role, reason, marked_at) VALUES(?, ?, ?, ?)", roles)
        # As SensitiveRoles.mark: out of the search index, all at once at the end (run).
        self._unindex.extend(marked_existing)
        record_refs = self._write_records(valid, now)
        externals = [
            (self.kind.external, row.ext, record_id, self.import_id) for row, record_id in record_refs.values()
        ]
        person_exts: dict[str, int] = {}
        for row in valid:
            if row.person_ext:
                person_exts.setdefault(row.person_ext, row.person_id)  # type: ignore[arg-type]
        if person_exts:
            known: set[str] = set()
            for chunk in _chunks(person_exts):
                known.update(
                    e
                    for (e,) in conn.execute(
                        f"SELECT external_id FROM external_ids WHERE kind = 'person' AND external_id IN ({_marks(len(chunk))})",
                        chunk,
                    )
                )
            externals += [("person", ext, pid, self.import_id) for ext, pid in person_exts.items() if ext not in known]
        conn.executemany(
            "INSERT INTO external_ids(kind, external_id, record_id, import_id) VALUES(?, ?, ?, ?)", externals
        )
        # Counts, and the marks' audit entries (references only).
        summary = self.summary
        summary.imported += len(valid)
        summary.people_created += len(new_people)
        summary.linked += len(valid) - len(new_people)
        summary.sensitive_rows += sum(1 for row in valid if row.person_id in self._marked_now)
        if newly_marked:
            missing = [pid for _, pid in newly_marked if pid not in ref_of]
            for chunk in _chunks(missing):
                ref_of.update(
                    conn.execute(f"SELECT id, ref FROM people WHERE id IN ({_marks(len(chunk))})", chunk).fetchall()
                )
            counts: dict[str, int] = {}
            already_there = set(marked_existing)
            for row, pid in newly_marked:
                entry: dict[str, Any] = {
                    "person": ref_of[pid],
                    "record": self._record_refs.get(row.line, ""),
                    "role": row.role or "",
                }
                label = f"{row.role}: {row.role_reason}"
                counts[label] = counts.get(label, 0) + 1
                # As SensitiveRoles.mark: someone already in the store may have been
                # handed over in clear; the vetted team gets a recall request.
                earlier = handed_over_in_clear(conn, pid) if pid in already_there else []
                if earlier:
                    entry["recall"] = create_recall(conn, ref_of[pid], row.role or "", earlier, now)
                    entry["handed_over_in_clear"] = [h.bundle_id for h in earlier]
                    audit.append(
                        conn,
                        "recall.create",
                        [ref_of[pid]],
                        f"recall {entry['recall']}: in clear in bundle(s) {', '.join(entry['handed_over_in_clear'])}",
                    )
                summary.marked.append(entry)
            # One entry for the batch's marks, with their references only (as role.mark
            # entries of 'tracekit role mark' have the person's reference and the reason).
            audit.append(
                conn,
                "role.mark",
                [ref_of[pid] for _, pid in newly_marked],
                "; ".join(f"{label} ({n})" for label, n in sorted(counts.items())),
            )

    def _write_records(self, valid: list[_Row], now: str) -> dict[int, tuple[_Row, int]]:
        """Insert the cases or exposures; return line -> (row, record id) (refs: ``_record_refs``)."""
        table = self.kind.table
        out: dict[int, tuple[_Row, int]] = {}
        self._record_refs: dict[int, str] = {}
        refs = self._unique_refs(self.kind.ref_kind, table.name, len(valid))
        rows: list[tuple[Any, ...]] = []
        for row, ref in zip(valid, refs):
            record_id = self._next_record_id
            self._next_record_id += 1
            rows.append(
                table.row(
                    {
                        **self.kind.values(row),
                        "id": record_id,
                        "ref": ref,
                        "person_id": row.person_id,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            )
            out[row.line] = (row, record_id)
            self._record_refs[row.line] = ref
        self.conn.executemany(table.insert_sql, rows)
        return out

    # -- problems and rejects -----------------------------------------------------------
    def _reject(self, row: _Row) -> None:
        summary = self.summary
        summary.invalid += 1
        for error in row.problems:
            summary.add_problem(error, self.options.max_problems)
        if self.rejects is not None:
            self.rejects.write(row, "; ".join(_reject_reason(e) for e in row.problems))

    def _diagnose(self) -> None:
        """Name the likely cause and the fix of the problems a whole column explains: a
        blank onset without an asymptomatic column, and a check every row fails."""
        summary = self.summary
        checked = summary.rows_read - summary.unchanged - summary.withheld_skipped
        mapped = set(summary.columns.values())
        unmapped = summary.ignored_columns
        candidates = ""
        if unmapped:
            candidates = (
                "; columns not mapped to any field: "
                + ", ".join(repr(c) for c in unmapped[: cols.MAX_IGNORED_SHOWN])
                + (" ..." if len(unmapped) > cols.MAX_IGNORED_SHOWN else "")
            )
        for group in summary.problem_groups.values():
            if group.field == "symptom_onset" and group.problem == "is required":
                if "asymptomatic" not in mapped:
                    group.cause = "the file has no asymptomatic column, and a blank symptom onset is not taken to mean no symptoms"
                    group.fix = "give the onset dates, or add " + cols.ASYMPTOMATIC_ADVICE
                else:
                    group.cause = (
                        f"these rows have no onset date, and {self._column('asymptomatic')!r} does not say yes"
                    )
                    group.fix = "give the date symptoms started, or yes in the asymptomatic column"
                continue
            if checked < 2 or group.count < checked or group.column is None or group.field not in cols.FIELD_BY_NAME:
                continue
            if group.problem == "is required":
                group.cause = f"column {group.column!r} is empty in every row"
                group.fix = f'map the column that holds {group.field}: --map "Your Column={group.field}"{candidates}'
            else:
                group.cause = (
                    f"every row fails this check: column {group.column!r} is probably not "
                    f"{group.field}, or all of it is in another form"
                )
                group.fix = (
                    f'map the right column with --map "Your Column={group.field}", '
                    f"or convert the column to {group.expected or 'the expected form'}"
                )

    def _rejects_scrubber(self, sensitive_people: list[Person]) -> Callable[[str], str]:
        """What every cell of a rejected row goes through: the Casebook's free-text scrubber
        (everyone marked in the store, this import's marks so far included), and the same
        pattern for the people of this file's rejected sensitive rows (stored nowhere)."""
        self.casebook.forget_marks()
        also = identity_matcher(sensitive_people)

        def scrub(text: str) -> str:
            text = self.casebook._scrub(text) or text
            return also.scrub(text, WITHHELD_IN_TEXT) if also is not None else text

        return scrub

    # -- the whole pass -----------------------------------------------------------------
    def run(self, stack: contextlib.ExitStack) -> ImportSummary:
        started = time.perf_counter()
        summary = self.summary
        rows_iter = self.opened.rows()
        batch: list[_Row] = []
        batch_rows = self.options.batch_rows
        with self.store.transaction() as conn:
            self.conn = conn
            self._begin()
            if self.options.rejects is not None and not self.options.dry_run:
                self.rejects = _Rejects(
                    Path(self.options.rejects),
                    self.opened,
                    None,
                    stack,
                    self._rejects_scrubber,
                    replace=self.replace_rejects,
                )
            header_done = self.opened.format == "jsonl"
            for line, cells in rows_iter:
                if not header_done:
                    if isinstance(cells, RowError):  # pragma: no cover - CSV/xlsx rows are never RowError
                        raise cells.error
                    self._set_header(cells)
                    if self.rejects is not None:
                        self.rejects.plan = self.plan
                    header_done = True
                    continue
                row = _Row(line, cells)
                summary.rows_read += 1
                if self._stands_for_withheld_row(cells):
                    summary.withheld_skipped += 1
                    continue
                if isinstance(cells, RowError):
                    row.problems.append(cells.error)
                else:
                    self._map_row(row)
                batch.append(row)
                if len(batch) >= batch_rows:
                    self._process(batch)
                    batch = []
                    if self.progress is not None:
                        self.progress(summary.rows_read, self.opened.reader.bytes_read)
            if not header_done:
                raise ValidationError("file", "has no header row", expected="a header row naming the columns", row=1)
            if batch:
                self._process(batch)
            if self.rejects is not None:
                self.rejects.flush(final=True)
            self._diagnose()
            self.opened.reader.drain()
            if self.progress is not None:
                self.progress(summary.rows_read, self.opened.reader.bytes_read)
            summary.sha256 = self.opened.sha256
            summary.bytes = self.opened.reader.bytes_read
            summary.seconds = time.perf_counter() - started
            if self.rejects is not None and self.rejects.count:
                summary.rejects_file = str(self.rejects.dest)
            if summary.invalid and not self.options.skip_invalid:
                stack.close()  # publish the rejects file; the transaction rolls back
                raise ImportInvalid(summary)
            if self.options.dry_run:
                raise _DryRun()
            if self.rejects is not None:
                self.rejects.sync()  # only the rename into place is left for after the commit
            # The search index last, and only for an import that commits (see there).
            search_index.finish_bulk_write(conn, self._unindex, self._first_person_id)
            self._finish(now=utcnow())
        summary.committed = True
        summary.import_id = self.import_id
        summary.seconds = time.perf_counter() - started
        return summary

    def _begin(self) -> None:
        conn = self.conn
        self._next_person_id = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM people").fetchone()[0])
        self._first_person_id = self._next_person_id
        self._next_record_id = int(
            conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {self.kind.table.name}").fetchone()[0]
        )
        self._tombstones = association.Tombstones(conn)
        #: Existing people this import marks: taken out of the search index at the end.
        self._unindex: list[int] = []
        cursor = conn.execute(
            "INSERT INTO imports(kind, file_name, input_sha256, started_at) VALUES(?, ?, '', ?)",
            (self.kind.name, self.opened.name, utcnow()),
        )
        self.import_id = int(cursor.lastrowid)

    def _finish(self, now: str) -> None:
        summary = self.summary
        summary.import_id = self.import_id
        summary.committed = True  # to_json gives the real counts and references
        document = summary.to_json()
        summary.committed = False  # until the transaction has committed
        document.pop("problems")
        self.conn.execute(
            "UPDATE imports SET input_sha256 = ?, finished_at = ?, summary = ? WHERE id = ?",
            (summary.sha256, now, json.dumps(document, ensure_ascii=False), self.import_id),
        )
        audit.append(self.conn, f"import.{self.kind.name}", [], summary.audit_reason())


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


def _given(value: Any) -> bool:
    return value is not None and value != "" and not (isinstance(value, str) and not value.strip())


def _flag(field_name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        text = str(value).strip().lower()
        if text in ("y", "yes", "true", "1"):
            return True
        if text in ("n", "no", "false", "0"):
            return False
        raise ValidationError(field_name, "is not yes or no", expected="yes/no, true/false or 1/0")

    return check


_occupation_sensitive = _memo(triage.occupation_is_sensitive)


def _reject_reason(error: ValidationError) -> str:
    text = f"{error.field}: {error.problem}"
    if error.expected:
        text += f" (expected {error.expected})"
    return text


# --------------------------------------------------------------------------- entry


def import_file(
    store: Store,
    kind: str,
    source: str | Path,
    options: ImportOptions | None = None,
    *,
    stdin: IO[bytes] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    """Import ``source`` (a path, or ``-`` for ``stdin``) as ``kind`` ("cases" or "contacts").

    Returns the summary. Raises :class:`ImportInvalid` (exit code 11) when strict mode
    finds invalid rows, after rolling back; other :class:`TracekitError` for files that
    cannot be read at all. ``progress(rows, bytes)`` is called after each batch.
    """
    if kind not in cols.KINDS:
        raise ValidationError("kind", "is not an import kind", expected="cases or contacts")
    options = options or ImportOptions()
    replace_rejects = options.rejects is not None and rejects_destination(Path(options.rejects))
    opened = open_input(source, options.format, stdin=stdin)
    importer = _Importer(store, kind, opened, options, progress)
    importer.replace_rejects = replace_rejects
    try:
        with store.bulk_writes(), contextlib.ExitStack() as stack:
            try:
                return importer.run(stack)
            except _DryRun:
                summary = importer.summary
                summary.committed = False
                summary.import_id = None
                return summary
    finally:
        opened.close()
