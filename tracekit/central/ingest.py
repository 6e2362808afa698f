"""Central ingest: verified bundles into the central team's PostgreSQL database.

Per bundle:

1. ``read_bundle`` decrypts and verifies it completely (signature, every hash, the
   counts) before anything touches the database; the bundle must be a records bundle for
   a central team (a vetted-team bundle carries sensitive people in full and is refused);
2. its signer must be an active tracer of the registry (:mod:`tracekit.central.registry`);
3. a bundle already ingested (its ``bundle_id``) is left as it is: nothing changes;
4. one transaction: the bundle's row, then a second pass over the file
   (``read_members``) streams each ``records/*.jsonl`` member into a ``COPY`` as it is
   decrypted, every record checked strictly (a signed bundle is only as careful as the
   tracekit that wrote it), every member against the verified manifest's hash; then the
   bundle's pseudonyms join ``pseudonym_tracers``. Any failure rolls it all back.

Two cores are used (:func:`ingest_bundles`): the second pass and its checks run in a
:class:`LoadWorker` process while this one feeds its rows to the server, and the first
pass over the next bundle runs in a thread meanwhile; a bundle's transaction still starts
only once it has verified.

What is stored: references, dates, choices, numbers and the keyed pseudonym. Clear
identifiers (name, date of birth, NHS number, phone, email, address, postcode) and free
text (notes) are never stored, whatever the bundle's policy carried: the central picture
and its cross-tracer links need none of them (docs/central-guide.md). A withheld stub
stays a stub: its reason and referral are kept, every marker field is NULL and named in
``withheld_fields``, and it never has a person or a pseudonym, so it links to nothing.

Rows go to ``COPY ... FROM STDIN`` as COPY text built here: every value that reaches a
text column has been matched against a pattern without tabs, newlines or backslashes,
so no escaping is needed.
"""

from __future__ import annotations

import operator
import pickle
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tracekit import errors
from tracekit.bundle.reader import Verified, read_bundle, read_members
from tracekit.central import registry
from tracekit.central.database import failure
from tracekit.errors import BundleInvalid, EnvironmentProblem, TracekitError, UnknownSigner
from tracekit.redaction.policy import FREE_TEXT_FIELDS, IDENTITY_FIELDS, RECORD_FIELDS

NULL = "\\N"
WITHHELD_REASONS = frozenset({"sensitive-role", "sensitive-by-association"})
#: Rows written to the COPY stream at once.
_FLUSH_ROWS = 2000

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}")
_BASE32 = "[0-9A-HJKMNP-TV-Z]"
_REF = {
    "person": re.compile(f"P-{_BASE32}{{6}}"),
    "case": re.compile(f"C-{_BASE32}{{6}}"),
    "source_exposure": re.compile(f"E-{_BASE32}{{6}}"),
}
_STUB_ID = re.compile(f"W-{_BASE32}{{16}}")
_REFERRAL = re.compile(f"R-{_BASE32}{{6}}")
_PSEUDONYM = re.compile(r"PS-([0-9a-f]{24})")
_MEMBER = re.compile(r"records/(cases|contacts)-[0-9]{5}\.jsonl")


class _Refused(ValueError):
    """A value that is not what tracekit writes there: the message says what was expected."""


# ---------------------------------------------------------------------------- values → COPY cells


def _date(value: Any) -> str:
    if type(value) is str and _DATE.fullmatch(value):
        return value  # PostgreSQL refuses a date that does not exist (2020-02-30)
    raise _Refused("a date YYYY-MM-DD")


def _time(value: Any) -> str:
    if type(value) is str and _TIME.fullmatch(value):
        return value
    raise _Refused("an ISO 8601 time with a zone")


def _token(value: Any) -> str:
    if type(value) is str and _TOKEN.fullmatch(value):
        return value
    raise _Refused("a short identifier such as an id of tracekit's choices")


def _boolean(value: Any) -> str:
    if value is True:
        return "t"
    if value is False:
        return "f"
    raise _Refused("true or false")


def _number(value: Any) -> str:
    kind = type(value)
    if kind is int and 0 <= value <= 10**9:
        return str(value)
    if kind is float and 0.0 <= value <= 1e9:  # also refuses NaN
        return repr(value)
    raise _Refused("a number from 0 to 1,000,000,000")


#: The cells whose value is text of one form, written as it is (:meth:`_RecordTable.plain_rows`
#: checks a whole column against the form at once): cell function -> its pattern.
_TEXT_PATTERN: dict[Callable[[Any], str], re.Pattern[str]] = {_date: _DATE, _time: _TIME, _token: _TOKEN}


def _reference(name: str) -> Callable[[Any], str]:
    pattern = _REF[name]

    def check(value: Any) -> str:
        if type(value) is str and pattern.fullmatch(value):
            return value
        raise _Refused(f"a reference such as {pattern.pattern[:2]}7K2M9Q")

    _TEXT_PATTERN[check] = pattern
    return check


def _case_reference(value: Any) -> str:
    """A contact's case: its reference, or the stub id of its withheld case in this bundle."""
    if type(value) is str and (_REF["case"].fullmatch(value) or _STUB_ID.fullmatch(value)):
        return value
    raise _Refused("a case reference C-... or a stub id W-...")


_TEXT_PATTERN[_case_reference] = re.compile(f"{_REF['case'].pattern}|{_STUB_ID.pattern}")


def _pseudonym(value: Any) -> str:
    match = _PSEUDONYM.fullmatch(value) if type(value) is str else None
    if match:
        return "\\\\x" + match.group(1)  # bytea in hex, its backslash escaped for COPY text
    raise _Refused("a pseudonym PS- and 24 hex digits")


#: How each stored field is checked and written; ``None``: not stored (clear identifiers, free text).
_CELL: dict[str, Callable[[Any], str] | None] = {
    **dict.fromkeys(
        ("test_date", "symptom_onset", "infectious_start", "infectious_end", "isolation_end", "last_exposure"), _date
    ),
    **dict.fromkeys(
        ("test_type", "test_result", "status", "setting", "clause", "trace_status", "ruleset", "role"), _token
    ),
    **dict.fromkeys(("asymptomatic", "face_to_face", "direct_contact", "close_contact"), _boolean),
    **dict.fromkeys(("proximity_m", "duration_min"), _number),
    "updated_at": _time,
    "person": _reference("person"),
    "source_exposure": _reference("source_exposure"),
    "case": _case_reference,
    "pseudonym": _pseudonym,
    **dict.fromkeys((*IDENTITY_FIELDS, *FREE_TEXT_FIELDS), None),
}
#: A bundle field stored under another column name.
_COLUMN_OF = {"case": "case_ref"}
#: Columns in table order (migration 1); ``bundle``, ``line`` and ``tracer_id`` come from the ingest.
COLUMNS: dict[str, tuple[str, ...]] = {
    "case": (
        "bundle",
        "line",
        "tracer_id",
        "ref",
        "person",
        "pseudonym",
        "withheld",
        "referral",
        "withheld_fields",
        "role",
        "test_date",
        "test_type",
        "test_result",
        "symptom_onset",
        "asymptomatic",
        "status",
        "infectious_start",
        "infectious_end",
        "isolation_end",
        "ruleset",
        "source_exposure",
        "updated_at",
    ),
    "contact": (
        "bundle",
        "line",
        "tracer_id",
        "ref",
        "case_ref",
        "person",
        "pseudonym",
        "withheld",
        "referral",
        "withheld_fields",
        "role",
        "last_exposure",
        "setting",
        "proximity_m",
        "duration_min",
        "face_to_face",
        "direct_contact",
        "close_contact",
        "clause",
        "trace_status",
        "isolation_end",
        "ruleset",
        "updated_at",
    ),
}
TABLES = {"case": "cases", "contact": "contacts"}


def _copy_sql(record_type: str) -> str:
    return f"COPY {TABLES[record_type]} ({', '.join(COLUMNS[record_type])}) FROM STDIN"


#: Cells checked once per distinct value (dates and choices repeat across millions of records).
_MEMOISED = frozenset({_date, _token})
#: Distinct values remembered per field (a few hundred dates, a handful of choices; bounded for hostile input).
_MEMO_LIMIT = 4096


class _RecordTable:
    """One record type's layout: for each bundle field, its column index, cell function and memo.

    :meth:`row` is the hot loop of an ingest (once per field of millions of records), so
    it is written flat: one dict lookup per field, a memo lookup for dates and choices,
    a pattern match only for values that differ record by record."""

    def __init__(self, record_type: str, allowed: set[str]) -> None:
        self.record_type = record_type
        self.table = TABLES[record_type]
        self.columns = COLUMNS[record_type]
        index = {column: i for i, column in enumerate(self.columns)}
        #: name -> (column index or -1 when not stored, cell function, memo or None)
        self.cells: dict[str, tuple[int, Callable[[Any], str] | None, dict[str, str] | None]] = {}
        for name in allowed - {"ref"}:
            cell = _CELL.get(name)
            if cell is None:
                self.cells[name] = (-1, None, None)
            else:
                self.cells[name] = (index[_COLUMN_OF.get(name, name)], cell, {} if cell in _MEMOISED else None)
        if "role" not in self.cells:
            self.cells["role"] = (index["role"], _token, {})  # stubs name their role under role_category
        self.withheld_at = index["withheld"]
        self.referral_at = index["referral"]
        self.fields_at = index["withheld_fields"]
        self.ref_at = index["ref"]
        self.ref = _REF["case"] if record_type == "case" else re.compile(f"E-{_BASE32}{{6}}")
        self.links_at = [index[c] for c in ("person", "pseudonym") if c in index]
        #: An ordinary record as tracekit writes it: every field of its policy, then withheld
        #: and ref (no referral), taken out of each record of a batch at once.
        policy_fields = sorted(allowed - {"ref"})
        self.plain_fields = (*policy_fields, "withheld", "ref")
        self.plain_values = operator.itemgetter(*self.plain_fields)
        self.ref_column = _column_pattern(self.ref)
        #: per policy field, in plain_fields order: (column index or -1 when not stored, how
        #: its column is checked and written)
        self.plain_columns = [
            (at, _column_cells(cell) if cell is not None else None)
            for at, cell, _ in map(self.cells.__getitem__, policy_fields)
        ]

    def plain_rows(self, records: list[Any], first_line: int, bundle: str, tracer: str) -> list[str] | None:
        """The COPY rows of a batch of ordinary records, checked a column at a time, or None
        when the batch is not only ordinary records holding exactly their policy's fields
        (a stub, a marker, a missing or extra field, anything :meth:`row` would refuse): then
        :meth:`row` takes them one by one, and names what it refuses. Of ordinary records it
        accepts only what :meth:`row` accepts, and writes the same cells
        (tests/central/test_ingest_columns.py); the work is then mostly in C (one pattern
        match over a whole column, set and join operations), not a Python step per field."""
        if set(map(type, records)) != {dict} or set(map(len, records)) != {len(self.plain_fields)}:
            return None
        try:
            table = list(zip(*map(self.plain_values, records), strict=True))  # every field present, so no other field
        except KeyError:
            return None
        *values_of, withheld, refs = table
        if set(map(type, withheld)) != {bool} or any(withheld):
            return None  # not only ordinary records
        if set(map(type, refs)) != {str} or not _column_matches(self.ref_column, refs):
            return None
        count = len(records)
        columns: list[Any] = [(NULL,) * count] * len(self.columns)
        columns[0], columns[1], columns[2] = (
            (bundle,) * count,
            map(str, range(first_line, first_line + count)),
            (tracer,) * count,
        )
        columns[self.ref_at] = refs
        for (at, cells_of), values in zip(self.plain_columns, values_of, strict=True):
            kinds = set(map(type, values))
            if dict in kinds:
                return None  # a withheld detail: its marker is checked and listed by row()
            if cells_of is None or kinds == {_NONE}:
                continue
            cells = cells_of(values, kinds)
            if cells is None:
                return None
            columns[at] = cells
        return list(map("\t".join, zip(*columns, strict=True)))

    def row(self, record: Any, head: list[str]) -> tuple[list[str], bool]:
        """The COPY cells of one record (``head``: bundle, line, tracer), and whether it is a stub."""
        if type(record) is not dict:
            raise _Refused("a JSON object per line")
        row = [NULL] * len(self.columns)
        row[0], row[1], row[2] = head
        withheld: Any = record.pop("withheld", None)
        referral = record.pop("referral", None)
        ref = record.pop("ref", None)
        if withheld is not False and not (type(withheld) is str and withheld in WITHHELD_REASONS):
            raise _Refused("withheld: false or a withheld reason")
        if referral is not None and not (type(referral) is str and _REFERRAL.fullmatch(referral)):
            raise _Refused("referral: null or a referral reference R-...")
        stub = withheld is not False
        if stub:
            row[self.withheld_at] = str(withheld)  # a reason, checked above
            if referral is not None:
                row[self.referral_at] = referral
        elif referral is not None:
            raise _Refused("no referral on a record that is not withheld")
        markers: list[str] = []
        cells = self.cells
        name = ""
        try:
            for name, value in record.items():
                spec = cells.get(name)
                if spec is None:
                    raise _Refused(f"only the fields its policy lists ({name[:40]!r} is not one of them)")
                at, cell, memo = spec
                kind = type(value)
                if kind is dict:
                    _check_marker(value)
                    markers.append(name)
                elif at < 0 or value is None:
                    continue
                elif memo is not None and kind is str:
                    checked = memo.get(value)
                    if checked is None:
                        checked = cell(value)  # type: ignore[misc]
                        if len(memo) < _MEMO_LIMIT:
                            memo[value] = checked
                    row[at] = checked
                else:
                    row[at] = cell(value)  # type: ignore[misc]
        except _Refused as refused:
            raise _Refused(f"{name[:40]}: {refused}") from None
        if stub:
            if not (type(ref) is str and _STUB_ID.fullmatch(ref)):
                raise _Refused("ref: a withheld stub's stub id W-...")
            for at in self.links_at:
                row[at] = NULL  # a stub links to nothing (tracekit writes markers there)
        elif not (type(ref) is str and self.ref.fullmatch(ref)):
            raise _Refused(f"ref: a reference {self.ref.pattern[:2]}...")
        row[self.ref_at] = ref
        if markers:
            row[self.fields_at] = "{" + ",".join(sorted(markers)) + "}"
        return row, stub


# ---------------------------------------------------------------------------- a column at a time

_NONE = type(None)
_BOOLEAN_CELLS = {True: "t", False: "f", None: NULL}


def _column_pattern(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """Values of the form ``pattern``, one per line."""
    return re.compile(f"(?:{pattern.pattern})(?:\n(?:{pattern.pattern}))*")


def _column_matches(column: re.Pattern[str], values: Sequence[str]) -> bool:
    """Every value (text) is of the column's form: one match over them all, joined by line
    breaks; a value holding a line break of its own is caught by the count."""
    if not values:
        return True
    joined = "\n".join(values)
    return joined.count("\n") == len(values) - 1 and column.fullmatch(joined) is not None


def _column_cells(cell: Callable[[Any], str]) -> Callable[[Sequence[Any], set[type]], Sequence[str] | None]:
    """How a whole column of ``cell`` values is checked and written: its cells, or None
    for anything ``cell`` would refuse (a marker, a wrong type or form, a number out of range)."""
    if cell is _boolean:

        def booleans(values: Sequence[Any], kinds: set[type]) -> Sequence[str] | None:
            return [_BOOLEAN_CELLS[value] for value in values] if kinds <= {bool, _NONE} else None

        return booleans
    if cell is _number:

        def numbers(values: Sequence[Any], kinds: set[type]) -> Sequence[str] | None:
            if not kinds <= {int, float, _NONE}:
                return None
            present = [value for value in values if value is not None]
            if not all(0 <= value <= 1_000_000_000 for value in present):  # NaN fails too
                return None
            return [NULL if value is None else str(value) if type(value) is int else repr(value) for value in values]

        return numbers
    if cell is _pseudonym:
        column = _column_pattern(_PSEUDONYM)

        def pseudonyms(values: Sequence[Any], kinds: set[type]) -> Sequence[str] | None:
            if not kinds <= {str, _NONE} or not _column_matches(column, [v for v in values if v is not None]):
                return None
            return [NULL if value is None else "\\\\x" + value[3:] for value in values]

        return pseudonyms
    column = _column_pattern(_TEXT_PATTERN[cell])

    def texts(values: Sequence[Any], kinds: set[type]) -> Sequence[str] | None:
        if not kinds <= {str, _NONE}:
            return None
        present = values if _NONE not in kinds else [value for value in values if value is not None]
        if not _column_matches(column, present):
            return None
        return present if present is values else [NULL if value is None else value for value in values]

    return texts


def _check_marker(value: dict[str, Any]) -> None:
    if (
        len(value) != 2
        or not (type(value.get("withheld")) is str and value["withheld"] in WITHHELD_REASONS)
        or not (
            value.get("referral") is None or (type(value["referral"]) is str and _REFERRAL.fullmatch(value["referral"]))
        )
    ):
        raise _Refused('a withheld marker {"withheld": reason, "referral": null or R-...}')


# ---------------------------------------------------------------------------- loading one member


@dataclass
class _Totals:
    records: dict[str, int] = field(default_factory=lambda: {"case": 0, "contact": 0})
    withheld: int = 0


class _MemberLoader:
    """A ``records/*.jsonl`` member streamed into a COPY as it is decrypted."""

    def __init__(
        self, copy_context: Any, layout: _RecordTable, member: str, bundle_pk: int, tracer_id: int, totals: _Totals
    ) -> None:
        """``copy_context``: the ``cursor.copy(...)`` context manager of the COPY to feed."""
        self._layout = layout
        self._member = member
        self._bundle = str(bundle_pk)
        self._tracer = str(tracer_id)
        self._totals = totals
        self._pending = b""
        self._rows: list[str] = []
        self._line = 0
        self._failed = False
        self._copy_context = copy_context
        self._copy = self._copy_context.__enter__()

    def write(self, block: bytes, /) -> None:
        try:
            data = self._pending + block
            end = data.rfind(b"\n")
            if end < 0:
                self._pending = data
                return
            self._pending = data[end + 1 :]
            self._load(data[:end].split(b"\n"))
        except BaseException:
            self._failed = True
            raise

    def _load(self, lines: list[bytes]) -> None:
        layout, totals, record_type = self._layout, self._totals, self._layout.record_type
        rows = self._rows
        try:
            records = list(map(orjson.loads, lines))
        except orjson.JSONDecodeError:
            records = None  # the line is found and named below
        if records is not None:
            plain = layout.plain_rows(records, totals.records[record_type] + 1, self._bundle, self._tracer)
            if plain is not None:
                self._line += len(plain)
                totals.records[record_type] += len(plain)
                rows.extend(plain)
                if len(rows) >= _FLUSH_ROWS:
                    self._flush()
                return
        for line in lines:
            self._line += 1
            try:
                record = orjson.loads(line)
                row, stub = layout.row(record, [self._bundle, str(totals.records[record_type] + 1), self._tracer])
            except orjson.JSONDecodeError:
                raise self._invalid("is not JSON") from None
            except _Refused as refused:
                raise self._invalid(f"is not what tracekit writes (expected {refused})") from None
            totals.records[record_type] += 1
            totals.withheld += stub
            rows.append("\t".join(row))
            if len(rows) >= _FLUSH_ROWS:
                self._flush()

    def _invalid(self, problem: str) -> BundleInvalid:
        return BundleInvalid(
            f"{self._member}, line {self._line}: the record {problem}; nothing of this bundle was ingested"
        )

    def _flush(self) -> None:
        if self._rows:
            self._copy.write("\n".join(self._rows) + "\n")
            self._rows.clear()

    def close(self) -> None:
        error: BaseException | None = None
        if not self._failed:
            try:
                if self._pending:
                    raise BundleInvalid(
                        f"{self._member} does not end with a complete line; nothing of this bundle was ingested"
                    )
                self._flush()
            except BaseException as exc:
                error = exc
        if self._failed or error is not None:
            failed = error or BundleInvalid("the load stopped")
            self._copy_context.__exit__(type(failed), failed, None)  # ends the COPY with an error
            if error is not None:
                raise error
            return
        self._copy_context.__exit__(None, None, None)


# ---------------------------------------------------------------------------- the second pass in a worker


class _PipeCopy:
    """Stands in for a ``COPY`` in the worker: its rows go to the ingesting process, which feeds the real one."""

    def __init__(self, pipe: Any, record_type: str) -> None:
        self._pipe = pipe
        self._record_type = record_type

    def __enter__(self) -> _PipeCopy:
        self._pipe.send(("copy", self._record_type))
        return self

    def write(self, text: str) -> None:
        self._pipe.send_bytes(text.encode())

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> None:
        if kind is None:
            self._pipe.send(("end",))
        # on an error, the worker's next message says what failed


def _worker_main(pipe: Any, identity_texts: list[str]) -> None:
    """The worker process: for each job, the second pass of one verified bundle, its
    records checked and turned into COPY text, sent to the ingesting process."""
    import signal

    from pyrage import x25519

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the ingesting process's to handle: it stops this one
    identities = [x25519.Identity.from_str(text) for text in identity_texts]
    del identity_texts
    try:
        _serve(pipe, identities)
    except OSError:
        return  # the ingesting process went away


def _serve(pipe: Any, identities: list[Any]) -> None:
    while True:
        try:
            job = pipe.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            totals = _second_pass(pipe, identities, *job)
            pipe.send(("done", totals.records, totals.withheld))
        except TracekitError as error:
            pipe.send(("failed", type(error).__name__, vars(error)))
        except Exception as error:  # a bug: the ingesting process reports it as one
            pipe.send(("bug", type(error).__name__))


def _second_pass(
    pipe: Any,
    identities: list[Any],
    path: Path,
    verified: Verified,
    allowed: dict[str, set[str]],
    bundle_pk: int,
    tracer_id: int,
) -> _Totals:
    layouts = {record_type: _RecordTable(record_type, allowed[record_type]) for record_type in TABLES}
    totals = _Totals()

    def consume(name: str) -> _MemberLoader | None:
        match = _MEMBER.fullmatch(name)
        if match is None:
            return None  # CSV copies, the redaction report: checked in the verified pass, not loaded
        layout = layouts["case" if match.group(1) == "cases" else "contact"]
        return _MemberLoader(_PipeCopy(pipe, layout.record_type), layout, name, bundle_pk, tracer_id, totals)

    read_members(path, identities, verified, consume)
    return totals


class LoadWorker:
    """A worker process that does each bundle's second pass (decrypting it again, checking
    every record, writing it as COPY text) while this process feeds its rows to PostgreSQL:
    the checks and the server's COPY run side by side on two cores.

    Only the rows cross over (through a pipe, never a file); the worker receives the age
    identities over the same pipe when it starts. One worker serves every bundle of an
    ``ingest``; use it as a context manager."""

    def __init__(self, identities: list[Any]) -> None:
        self._identities = [str(identity) for identity in identities]
        self._process: Any = None
        self._pipe: Any = None

    def __enter__(self) -> LoadWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads or connections
        pipe, child = context.Pipe()
        process = context.Process(
            target=_worker_main, args=(child, self._identities), name="tracekit-central-ingest-worker", daemon=True
        )
        try:
            process.start()
        finally:
            child.close()
        self._process, self._pipe = process, pipe

    def stop(self) -> None:
        """End the worker (between bundles it ends at once; mid-bundle it is terminated)."""
        if self._process is None:
            return
        try:
            self._pipe.send(None)
        except OSError:
            pass
        self._pipe.close()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._process = self._pipe = None

    def load(
        self, cursor: Any, path: Path, verified: Verified, allowed: dict[str, set[str]], bundle_pk: int, tracer_id: int
    ) -> _Totals:
        """The bundle's records (``allowed``: the fields its policy lists) into their tables
        by ``COPY`` on ``cursor``; what was loaded."""
        if self._process is None:
            self._start()
        self._pipe.send((path, verified, allowed, bundle_pk, tracer_id))
        copy_context: Any = None
        copy: Any = None
        finished = False
        try:
            while True:
                try:
                    message = self._pipe.recv_bytes()
                except (EOFError, OSError):
                    self._process.join(timeout=5)
                    raise EnvironmentProblem(
                        f"the ingest's worker process stopped unexpectedly (exit code {self._process.exitcode}, "
                        "out of memory or killed?); nothing of this bundle was ingested"
                    ) from None
                if message[:1] != b"\x80":  # rows: COPY text starts with the bundle id (digits), a pickle with 0x80
                    copy.write(message)
                    continue
                kind, *rest = pickle.loads(message)
                if kind == "copy":
                    copy_context = cursor.copy(_copy_sql(rest[0]))
                    copy = copy_context.__enter__()
                elif kind == "end":
                    context, copy_context = copy_context, None
                    context.__exit__(None, None, None)
                elif kind == "done":
                    finished = True
                    return _Totals(records=rest[0], withheld=rest[1])
                elif kind == "failed":
                    finished = True
                    raise _rebuilt(*rest)
                else:
                    finished = True
                    raise RuntimeError(f"the central ingest worker failed: {rest[0]}")
        except BaseException as exc:
            if copy_context is not None:
                copy_context.__exit__(type(exc), exc, None)  # ends the COPY with an error
            if not finished:
                self.stop()  # mid-bundle (the database refused a row, Ctrl-C): the next bundle gets a fresh worker
            raise


def _rebuilt(name: str, attributes: dict[str, Any]) -> TracekitError:
    """The worker's error, as raised there."""
    kind = getattr(errors, name, None)
    if not (isinstance(kind, type) and issubclass(kind, TracekitError)):
        raise RuntimeError(f"the central ingest worker failed with an unknown error {name!r}")
    error = kind.__new__(kind)
    TracekitError.__init__(error, attributes["message"], hint=attributes.get("hint"))
    vars(error).update(attributes)
    return error


# ---------------------------------------------------------------------------- one bundle


@dataclass
class Ingested:
    file: Path
    bundle_id: str
    tracer: str
    fingerprint: str
    already: bool
    cases: int = 0
    contacts: int = 0
    withheld: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "file": str(self.file),
            "bundle_id": self.bundle_id,
            "tracer": self.tracer,
            "signer_fingerprint": self.fingerprint,
            "status": "already-ingested" if self.already else "ingested",
            "cases": self.cases,
            "contacts": self.contacts,
            "withheld": self.withheld,
            "seconds": round(self.seconds, 3),
        }


def check_central_records_bundle(verified: Verified) -> None:
    """Only records bundles made for a central team are ingested."""
    model = verified.model
    if model.recipient.role != "central-team" or model.policy.definition.scope != "standard":
        raise BundleInvalid(
            f"this bundle was made for a {model.recipient.role} ({model.recipient.name}) under the policy "
            f"{model.policy.name!r}; central ingest takes only bundles for a central team"
        )
    if model.policy.kind != "records":
        raise BundleInvalid(
            f"this bundle holds statistics (policy {model.policy.name!r}), not records; central ingest takes records bundles"
        )


def _allowed_fields(verified: Verified, record_type: str) -> set[str]:
    listed = verified.model.policy.definition.fields.get(f"{record_type}", [])
    known = set(RECORD_FIELDS[record_type])
    unknown = [name for name in listed if name not in known]
    if unknown:
        raise BundleInvalid(
            f"the bundle's policy lists the {record_type} field {unknown[0]!r}, which tracekit does not know"
        )
    return set(listed)


def _verified(path: Path, identities: list[Any]) -> Verified:
    """The first pass: the whole bundle decrypted and verified, nothing written."""
    verified = read_bundle(path, identities)
    check_central_records_bundle(verified)
    return verified


def ingest_bundles(conn: Any, url: str, paths: list[Path], identities: list[Any]) -> Iterator[Ingested]:
    """Each bundle verified, then loaded in its own transaction (or found loaded already), in order.

    The first pass over the next bundle runs in a thread while this one loads, and each
    bundle's second pass in a :class:`LoadWorker`; a bundle's transaction still starts only
    once it has verified. Stops at the first bundle refused (the ones before it stay loaded)."""
    paths = [Path(path).expanduser() for path in paths]
    verifier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracekit-verify")
    try:
        with LoadWorker(identities) as worker:
            upcoming = verifier.submit(_verified, paths[0], identities) if paths else None
            for number, path in enumerate(paths):
                started = time.perf_counter()
                verified = upcoming.result()  # type: ignore[union-attr]
                if number + 1 < len(paths):
                    upcoming = verifier.submit(_verified, paths[number + 1], identities)
                yield _load(conn, url, path, verified, worker, started)
    finally:
        verifier.shutdown(wait=True, cancel_futures=True)


def ingest_bundle(conn: Any, url: str, path: Path, identities: list[Any]) -> Ingested:
    """Verify one bundle, then load it in one transaction (or find it was loaded already)."""
    return next(ingest_bundles(conn, url, [path], identities))


def _load(conn: Any, url: str, path: Path, verified: Verified, worker: LoadWorker, started: float) -> Ingested:
    import psycopg

    model = verified.model
    try:
        tracer = registry.active_tracer(conn, verified.signer_fingerprint)
        if tracer is None:
            raise UnknownSigner(
                f"{path.name} is signed by {verified.signer_fingerprint}, which is not a registered tracer; nothing was ingested",
                hint="if the tracer confirms this fingerprint: tracekit central tracers add --name NAME --signer FINGERPRINT",
            )
        result = Ingested(path, model.bundle_id, tracer.name, verified.signer_fingerprint, already=False)
        allowed = {record_type: _allowed_fields(verified, record_type) for record_type in TABLES}
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO bundles (bundle_id, tracer_id, created_at, changes_since, changes_until, policy, policy_sha256, "
                "audit_head, cases, contacts, withheld) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 0, 0, 0) "
                "ON CONFLICT (bundle_id) DO NOTHING RETURNING id",
                (
                    model.bundle_id,
                    tracer.id,
                    model.created_at,
                    model.changes.since,
                    model.changes.until,
                    model.policy.name,
                    model.policy.sha256,
                    model.audit_head or "",
                ),
            ).fetchone()
            if row is None:
                result.already = True
            else:
                bundle_pk = row[0]
                with conn.cursor() as cursor:
                    totals = worker.load(cursor, path, verified, allowed, bundle_pk, tracer.id)
                conn.execute(
                    "UPDATE bundles SET cases = %s, contacts = %s, withheld = %s WHERE id = %s",
                    (totals.records["case"], totals.records["contact"], totals.withheld, bundle_pk),
                )
                _link_pseudonyms(conn, bundle_pk, tracer.id, model.created_at)
                result.cases, result.contacts, result.withheld = (
                    totals.records["case"],
                    totals.records["contact"],
                    totals.withheld,
                )
        if result.already:
            counts = conn.execute(
                "SELECT cases, contacts, withheld FROM bundles WHERE bundle_id = %s", (model.bundle_id,)
            ).fetchone()
            result.cases, result.contacts, result.withheld = counts
    except psycopg.errors.DataError as exc:
        raise BundleInvalid(
            f"{path.name}: a record holds a value PostgreSQL refuses for its column ({type(exc).__name__}, "
            f"{_copy_context(exc)}); nothing of this bundle was ingested"
        ) from None
    except psycopg.Error as exc:
        raise failure(exc, url, f"ingesting {path.name}") from None
    result.seconds = time.perf_counter() - started
    return result


def _copy_context(exc: Any) -> str:
    """Where in a COPY PostgreSQL's error was, without the value (``COPY cases, line 12, column test_date``)."""
    context = (getattr(exc.diag, "context", None) or "").splitlines()
    match = re.match(r"COPY (\w+), line ([0-9]+)(, column (\w+))?", context[0]) if context else None
    if not match:
        return "no position given"
    return f"{match.group(1)} record {match.group(2)}" + (f", field {match.group(4)}" if match.group(4) else "")


def _link_pseudonyms(conn: Any, bundle_pk: int, tracer_id: int, created_at: str) -> None:
    """Add the bundle's pseudonyms to ``pseudonym_tracers`` (in pseudonym order: concurrent ingests lock rows alike)."""
    conn.execute(
        "INSERT INTO pseudonym_tracers AS pt (pseudonym, tracer_id, records, first_seen, last_seen) "
        "SELECT pseudonym, %(tracer)s, count(*), %(at)s, %(at)s FROM ("
        " SELECT pseudonym FROM cases WHERE bundle = %(bundle)s AND pseudonym IS NOT NULL"
        " UNION ALL SELECT pseudonym FROM contacts WHERE bundle = %(bundle)s AND pseudonym IS NOT NULL"
        ") AS seen GROUP BY pseudonym ORDER BY pseudonym "
        "ON CONFLICT (pseudonym, tracer_id) DO UPDATE SET records = pt.records + EXCLUDED.records, "
        "first_seen = least(pt.first_seen, EXCLUDED.first_seen), last_seen = greatest(pt.last_seen, EXCLUDED.last_seen)",
        {"tracer": tracer_id, "at": created_at, "bundle": bundle_pk},
    )
