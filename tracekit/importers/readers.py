"""Reading import files as a stream of rows: CSV, JSON Lines and .xlsx.

The input (a file or standard input) is read once, front to back, through
:class:`HashingReader`, which keeps the SHA-256 of every byte and the count for the
progress bar. Nothing is written anywhere while reading: no temporary files (the input
is personal data). The format is detected from the first bytes: a ZIP header is a
spreadsheet, a ``{`` is JSON Lines, anything else is CSV, whose dialect (delimiter) is
sniffed. CSV may be UTF-8 with or without a byte-order mark, with CRLF or LF line ends and
quoted line breaks.

Each reader yields ``(line, cells)``: the line of the file where the row starts (for
spreadsheets, the sheet's row number) and the row's cells in header order (CSV, xlsx) or
the row's object (JSON Lines). A row that cannot be read at all yields a
:class:`RowError` in place of the cells.

Every read is bounded, so memory stays flat whatever the input (a file of one endless
line, ``/dev/zero``, a spreadsheet claiming a billionth row): a CSV record or JSON line is
at most :data:`MAX_RECORD_BYTES`, a CSV field at most :data:`MAX_FIELD_CHARS`, a sheet at
most :data:`MAX_SHEET_ROWS` by :data:`MAX_SHEET_COLUMNS` (Excel's own limits), a
spreadsheet on standard input at most :data:`MAX_STDIN_XLSX_BYTES`. The limits are listed
in docs/import-guide.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any

from tracekit.errors import ValidationError
from tracekit.files import describe_os_error, format_size, open_regular_file

FORMATS = ("csv", "jsonl", "xlsx")
HEAD_BYTES = 64 * 1024
#: The longest CSV record (its lines together) or JSON line, in bytes.
MAX_RECORD_BYTES = 4 << 20
#: The longest CSV field, in characters.
MAX_FIELD_CHARS = 1 << 20
#: Excel's own limits: 1,048,576 rows by 16,384 columns (A to XFD).
MAX_SHEET_ROWS = 1 << 20
MAX_SHEET_COLUMNS = 1 << 14
#: A spreadsheet on standard input is held in memory (compressed) to be read.
MAX_STDIN_XLSX_BYTES = 100 << 20
#: The parts of a workbook other than its worksheets (shared strings, styles) are read
#: whole: at most this much, as their zip entries declare.
MAX_XLSX_PARTS_BYTES = 256 << 20
_BOM = b"\xef\xbb\xbf"
_CANDIDATE_DELIMITERS = ",;\t|"
csv.field_size_limit(MAX_FIELD_CHARS)


class HashingReader(io.RawIOBase):
    """A raw reader that hashes and counts what passes through it.

    The first :data:`HEAD_BYTES` are read at once (for format detection) and served
    again from memory, so standard input need not be seekable.
    """

    def __init__(self, raw: IO[bytes], name: str = "the input") -> None:
        super().__init__()
        self._raw = raw
        self._name = name
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0
        chunks, size = [], 0
        while size < HEAD_BYTES:
            chunk = self._read_raw(HEAD_BYTES - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        self.head = b"".join(chunks)
        self._pending = memoryview(self.head)
        self.sha256.update(self.head)
        self.bytes_read = len(self.head)

    def readable(self) -> bool:
        return True

    def _read_raw(self, size: int) -> bytes:
        try:
            return self._raw.read(size) or b""
        except OSError as exc:  # e.g. standard input opened write-only, an I/O error
            raise _file_error(f"{self._name} cannot be read ({describe_os_error(exc)})", "a readable file") from None

    def readinto(self, buffer: Any) -> int:
        if len(self._pending):
            n = min(len(buffer), len(self._pending))
            buffer[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        try:
            n = self._raw.readinto(buffer) if hasattr(self._raw, "readinto") else _read_into(self._raw, buffer)
        except OSError as exc:
            raise _file_error(f"{self._name} cannot be read ({describe_os_error(exc)})", "a readable file") from None
        if n:
            self.sha256.update(memoryview(buffer)[:n])
            self.bytes_read += n
        return n or 0

    def drain(self) -> None:
        """Read (and hash) whatever the parser left unread."""
        buffer = bytearray(1 << 20)
        while self.readinto(buffer):
            pass


def _read_into(raw: IO[bytes], buffer: Any) -> int:
    data = raw.read(len(buffer))
    buffer[: len(data)] = data
    return len(data)


def _file_error(problem: str, expected: str, line: int | None = None) -> ValidationError:
    return ValidationError("file", problem, expected=expected, row=line)


def detect_format(head: bytes) -> str:
    """The format of a file from its first bytes."""
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise _file_error(
            "is an old Excel .xls workbook", "an .xlsx workbook or a CSV file (save it again as one of those)"
        )
    text = head.removeprefix(_BOM).lstrip()
    if not text:
        raise _file_error("is empty", "a header row and at least one row of data")
    if text.startswith(b"{"):
        return "jsonl"
    if text.startswith(b"["):
        raise _file_error("is a JSON array", "JSON Lines: one JSON object per line")
    return "csv"


@dataclass
class RowError:
    """A row that could not be read (bad JSON, ragged CSV): a problem without a field."""

    error: ValidationError


# ----------------------------------------------------------------------------- CSV


def sniff_dialect(head: bytes) -> type[csv.Dialect]:
    """The CSV dialect of a file from its first bytes: only the delimiter is guessed.

    ``csv.Sniffer`` looks at the first lines; its answer is kept when it is one of
    ``, ; TAB |``, otherwise the most frequent of those in the header line wins.
    """
    text = head.removeprefix(_BOM).decode("utf-8", errors="ignore")
    cut = max(text.rfind("\n", 0, len(text)), 0) if len(head) >= HEAD_BYTES else len(text)
    sample = "\n".join(text[:cut].splitlines()[:50])
    delimiter = None
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=_CANDIDATE_DELIMITERS).delimiter
    except csv.Error:
        pass
    first_line = sample.split("\n", 1)[0]
    counts = {d: first_line.count(d) for d in _CANDIDATE_DELIMITERS}
    if delimiter not in counts or (counts[delimiter] == 0 and max(counts.values()) > 0):
        delimiter = max(counts, key=lambda d: (counts[d], d == ","))
        if counts[delimiter] == 0:
            delimiter = ","

    class Sniffed(csv.excel):
        pass

    Sniffed.delimiter = delimiter
    Sniffed.skipinitialspace = False
    return Sniffed


def csv_rows(reader: HashingReader, dialect: type[csv.Dialect]) -> Iterator[tuple[int, list[str] | RowError]]:
    """``(line, cells)`` for every non-blank record, the header first."""
    buffered: IO[bytes] = io.BufferedReader(reader, buffer_size=1 << 20)
    feed = _CsvLineFeed(buffered)
    rows = csv.reader(feed, dialect)
    start = 1
    header: list[str] | None = None
    while True:
        feed.start_record(start)
        try:
            cells = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _file_error(f"cannot be read as CSV ({_csv_problem(exc)})", "well-formed CSV", start) from None
        if feed.ended:
            # The csv module ends a record at the end of the file only inside quotes.
            raise _unclosed_quote(start, cells, header)
        line, start = start, rows.line_num + 1
        if not cells or not any(cells):
            continue
        header = header or cells
        yield line, cells


class _CsvLineFeed:
    """The file's lines for ``csv.reader``, decoded one at a time (line ends kept) so a
    decoding error names its line; a byte-order mark at the start is dropped. A record
    (the lines one quoted field spans, together) longer than :data:`MAX_RECORD_BYTES` is
    refused, and :attr:`ended` tells whether the end of the file has been met."""

    def __init__(self, buffered: IO[bytes]) -> None:
        self._lines = bounded_lines(buffered)
        self._record_line = 1
        self._record_bytes = 0
        self.ended = False

    def start_record(self, line: int) -> None:
        self._record_line, self._record_bytes = line, 0

    def __iter__(self) -> _CsvLineFeed:
        return self

    def __next__(self) -> str:
        try:
            number, raw = next(self._lines)
        except StopIteration:
            self.ended = True
            raise
        self._record_bytes += len(raw)
        if self._record_bytes > MAX_RECORD_BYTES:
            raise _file_error(
                f"has a record longer than the limit of {format_size(MAX_RECORD_BYTES)} "
                "(perhaps a quoted field is never closed)",
                "well-formed CSV",
                self._record_line,
            )
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _file_error("is not UTF-8 text", 'UTF-8 (in a spreadsheet, save as "CSV UTF-8")', number) from None


def bounded_lines(buffered: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(number, line)`` for each line (line end kept, a leading byte-order mark dropped),
    refusing a line longer than :data:`MAX_RECORD_BYTES` before holding more of it."""
    number = 0
    while line := buffered.readline(MAX_RECORD_BYTES + 1):
        number += 1
        if len(line) > MAX_RECORD_BYTES:
            raise _file_error(
                f"has a line longer than the limit of {format_size(MAX_RECORD_BYTES)}", "one record per line", number
            )
        yield number, line.removeprefix(_BOM) if number == 1 else line


def _unclosed_quote(start: int, cells: list[str], header: list[str] | None) -> ValidationError:
    """Where a quoted field that runs to the end of the file opened: its line and column."""
    index = len(cells) - 1
    opened_on = start + sum(cell.count("\n") for cell in cells[:index])
    column = header[index][:64] if header is not None and index < len(header) else f"field {index + 1}"
    return ValidationError(
        "file",
        f"a quoted field is never closed: the quote opened in column {column!r} runs to the end of the file",
        expected='a closing " for every opening one (a " inside a quoted field is written "")',
        row=opened_on,
    )


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "field larger than field limit" in text:
        return "a field is too long, perhaps an unclosed quote"
    if "NUL" in text:
        return "it contains NUL bytes"
    return "malformed quoting"


# ----------------------------------------------------------------------- JSON Lines


def jsonl_rows(reader: HashingReader) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """``(line, object)`` for every non-blank line."""
    buffered: IO[bytes] = io.BufferedReader(reader, buffer_size=1 << 20)
    for number, raw in bounded_lines(buffered):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw, object_pairs_hook=_object_without_repeated_keys)
        except UnicodeDecodeError:
            yield number, RowError(_file_error("is not UTF-8 text", "UTF-8 JSON", number))
            continue
        except _RepeatedKey as repeated:
            yield (
                number,
                RowError(
                    ValidationError(
                        "row",
                        f"has the key {repeated.key!r} more than once",
                        expected="each key once per object",
                        row=number,
                    )
                ),
            )
            continue
        except RecursionError:
            yield (
                number,
                RowError(
                    ValidationError(
                        "row",
                        "nests objects or arrays too deeply",
                        expected='one flat object like {"name": ...}',
                        row=number,
                    )
                ),
            )
            continue
        except ValueError:
            yield (
                number,
                RowError(ValidationError("row", "is not valid JSON", expected="one JSON object per line", row=number)),
            )
            continue
        if not isinstance(value, dict):
            yield (
                number,
                RowError(
                    ValidationError("row", "is not a JSON object", expected='an object like {"name": ...}', row=number)
                ),
            )
            continue
        yield number, value


class _RepeatedKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key[:64]  # a key is a column name; a long one is cut for the message


def _object_without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object; a key given twice is refused (json keeps the last one silently)."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return value


# ----------------------------------------------------------------------------- xlsx


def _check_parts_read_whole(data: IO[bytes]) -> None:
    """Refuse a workbook whose parts that openpyxl reads whole (shared strings, styles...) are too large.

    Worksheets are streamed, but the shared-strings table and the other parts are loaded
    into memory in full: a small zip can declare gigabytes there (a zip bomb). A zip
    member never yields more than its declared size, so the declared sizes bound it.
    """
    import zipfile

    start = data.tell()
    try:
        with zipfile.ZipFile(data) as archive:
            whole = sum(info.file_size for info in archive.infolist() if not info.filename.startswith("xl/worksheets/"))
    except Exception:
        return
    finally:
        data.seek(start)
    if whole > MAX_XLSX_PARTS_BYTES:
        raise _file_error(
            f"declares {format_size(whole)} of shared strings, styles and other parts that are read whole, "
            f"beyond the limit of {format_size(MAX_XLSX_PARTS_BYTES)}",
            "an .xlsx workbook as Excel writes it (or save the sheet as CSV)",
        )


def xlsx_rows(data: IO[bytes]) -> Iterator[tuple[int, list[Any] | RowError]]:
    """``(row number, cells)`` of the first worksheet, streamed (openpyxl read-only)."""
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - a declared dependency
        raise _file_error("is a spreadsheet, but openpyxl is not installed", "pip install openpyxl") from None
    # A damaged workbook can fail inside openpyxl, zipfile, zlib or the XML parser, while
    # opening or half-way through the rows, with many exception types (found by fuzzing:
    # tests/importers/test_fuzz_import.py). Any of them means "not a readable workbook".
    _check_parts_read_whole(data)
    try:
        workbook = openpyxl.load_workbook(data, read_only=True, data_only=True)
    except Exception as exc:
        raise _file_error(f"is not a readable .xlsx workbook ({type(exc).__name__})", "an .xlsx workbook") from None
    try:
        try:
            for number, values in _sheet_rows(workbook, workbook.worksheets[0]):
                cells = [_cell_value(v) for v in values]
                if not any(c not in (None, "") for c in cells):
                    continue
                yield number, cells
        except ValidationError:
            raise
        except Exception as exc:
            raise _file_error(f"is a damaged .xlsx workbook ({type(exc).__name__})", "an .xlsx workbook") from None
    finally:
        try:
            workbook.close()
        except Exception:
            pass


def _sheet_rows(workbook: Any, sheet: Any) -> Iterator[tuple[int, list[Any]]]:
    """``(row number, values)`` of the rows the sheet's XML holds, in order.

    openpyxl's ``iter_rows`` yields every empty row up to the last one, one by one: a
    few kilobytes claiming a row numbered 1,000,000,000 would keep it busy for minutes.
    Its row parser is used directly instead, so empty rows cost nothing, and row and
    column numbers beyond Excel's limits are refused.
    """
    from openpyxl.worksheet._reader import WorkSheetParser

    with sheet._get_source() as source:
        parser = WorkSheetParser(
            source,
            sheet._shared_strings,
            data_only=True,
            epoch=workbook.epoch,
            date_formats=workbook._date_formats,
            timedelta_formats=workbook._timedelta_formats,
        )
        for number, cells in parser.parse():
            if number > MAX_SHEET_ROWS:
                raise _file_error(
                    f"has a row numbered {number:,}, beyond the limit of {MAX_SHEET_ROWS:,} rows",
                    "an .xlsx workbook within Excel's limits",
                )
            if not cells:
                continue
            width = max(cell["column"] for cell in cells)
            if width > MAX_SHEET_COLUMNS:
                raise _file_error(
                    f"has a cell in column {width:,}, beyond the limit of {MAX_SHEET_COLUMNS:,} columns",
                    "an .xlsx workbook within Excel's limits",
                    number,
                )
            values: list[Any] = [None] * width
            for cell in cells:
                values[cell["column"] - 1] = cell["value"]
            yield number, values


def _cell_value(value: Any) -> Any:
    """A spreadsheet cell as text, or a date (date cells)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.date() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cell_text(value: Any) -> Any:
    """A JSON value as a cell: text, None, or RowError-worthy (returns a marker)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return _NOT_A_VALUE


class _NotAValue:
    def __repr__(self) -> str:
        return "<not a single value>"


_NOT_A_VALUE = _NotAValue()
NOT_A_VALUE = _NOT_A_VALUE


# ------------------------------------------------------------------------ opening


@dataclass
class OpenedInput:
    """An input being read: its name, format, reader and (CSV) dialect."""

    name: str
    format: str
    reader: HashingReader
    total_bytes: int | None
    dialect: type[csv.Dialect] | None = None
    _xlsx_data: IO[bytes] | None = None

    def rows(self) -> Iterator[tuple[int, Any]]:
        if self.format == "csv":
            assert self.dialect is not None
            return csv_rows(self.reader, self.dialect)
        if self.format == "jsonl":
            return jsonl_rows(self.reader)
        assert self._xlsx_data is not None
        return xlsx_rows(self._xlsx_data)

    @property
    def sha256(self) -> str:
        return self.reader.sha256.hexdigest()

    @property
    def has_bom(self) -> bool:
        """Whether the text starts with a UTF-8 byte-order mark (Excel's "CSV UTF-8")."""
        return self.format != "xlsx" and self.reader.head.startswith(_BOM)

    def close(self) -> None:
        for handle in (self._xlsx_data, self.reader._raw):
            if handle is not None and handle is not _stdin_buffer():
                try:
                    handle.close()
                except OSError:
                    pass


def _stdin_buffer() -> Any:
    import sys

    return getattr(sys.stdin, "buffer", None)


def open_input(source: str | Path, fmt: str | None = None, *, stdin: IO[bytes] | None = None) -> OpenedInput:
    """Open ``source`` (a path, or ``-`` for standard input) and detect its format."""
    if str(source) == "-":
        raw: IO[bytes] = stdin if stdin is not None else _stdin_buffer()
        if raw is None or raw.closed:
            raise _file_error("standard input is closed", "the file on standard input (import ... - < FILE)")
        name, total = "<stdin>", None
    else:
        path = Path(source)
        raw = open_regular_file(  # closed with the reader
            path,
            what="import file",
            error=lambda problem: _file_error(problem, "the path of a CSV, JSON Lines or .xlsx file"),
        )
        name, total = path.name, os.fstat(raw.fileno()).st_size
    reader = HashingReader(raw, "standard input" if name == "<stdin>" else f"import file {source}")
    detected = fmt or detect_format(reader.head)
    if fmt is not None and fmt not in FORMATS:
        raise ValidationError("format", "is not a known format", expected="csv, jsonl or xlsx")
    opened = OpenedInput(name, detected, reader, total)
    if detected == "csv":
        opened.dialect = sniff_dialect(reader.head)
    elif detected == "xlsx":
        # A ZIP needs random access. A file is hashed in one pass and then opened by
        # path; standard input is held in memory (compressed; nothing goes to disk).
        if str(source) == "-":
            buffer = io.BytesIO()
            chunk = bytearray(1 << 20)
            while n := reader.readinto(chunk):
                if buffer.tell() + n > MAX_STDIN_XLSX_BYTES:
                    raise _file_error(
                        f"is a spreadsheet on standard input larger than the limit of {format_size(MAX_STDIN_XLSX_BYTES)}",
                        "the spreadsheet's path instead of standard input",
                    )
                buffer.write(chunk[:n])
            buffer.seek(0)
            opened._xlsx_data = buffer
        else:
            reader.drain()  # hashed in one pass, then read again from the same open file
            raw.seek(0)
            opened._xlsx_data = io.BufferedReader(raw)  # type: ignore[type-var]
    return opened
