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
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any

from tracekit.errors import ValidationError

FORMATS = ("csv", "jsonl", "xlsx")
HEAD_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"
_CANDIDATE_DELIMITERS = ",;\t|"
csv.field_size_limit(1 << 20)


class HashingReader(io.RawIOBase):
    """A raw reader that hashes and counts what passes through it.

    The first :data:`HEAD_BYTES` are read at once (for format detection) and served
    again from memory, so standard input need not be seekable.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0
        chunks, size = [], 0
        while size < HEAD_BYTES:
            chunk = raw.read(HEAD_BYTES - size)
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

    def readinto(self, buffer: Any) -> int:
        if len(self._pending):
            n = min(len(buffer), len(self._pending))
            buffer[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        n = self._raw.readinto(buffer) if hasattr(self._raw, "readinto") else _read_into(self._raw, buffer)
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
        raise _file_error("is an old Excel .xls workbook", "an .xlsx workbook or a CSV file (save it again as one of those)")
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
    buffered = io.BufferedReader(reader, buffer_size=1 << 20)  # type: ignore[arg-type]
    rows = csv.reader(_utf8_lines(buffered), dialect)
    start = 1
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _file_error(f"cannot be read as CSV ({_csv_problem(exc)})", "well-formed CSV", start) from None
        line, start = start, rows.line_num + 1
        if not cells or not any(cells):
            continue
        yield line, cells


def _utf8_lines(buffered: Iterator[bytes]) -> Iterator[str]:
    """The file's lines decoded one at a time (line ends kept), so a decoding error
    names its line; a byte-order mark at the start is dropped."""
    for number, raw in enumerate(buffered, 1):
        if number == 1:
            raw = raw.removeprefix(_BOM)
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _file_error("is not UTF-8 text", 'UTF-8 (in a spreadsheet, save as "CSV UTF-8")', number) from None


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
    buffered = io.BufferedReader(reader, buffer_size=1 << 20)  # type: ignore[arg-type]
    for number, raw in enumerate(buffered, 1):
        if number == 1:
            raw = raw.removeprefix(_BOM)
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except UnicodeDecodeError:
            yield number, RowError(_file_error("is not UTF-8 text", "UTF-8 JSON", number))
            continue
        except ValueError:
            yield number, RowError(ValidationError("row", "is not valid JSON", expected="one JSON object per line", row=number))
            continue
        if not isinstance(value, dict):
            yield number, RowError(ValidationError("row", "is not a JSON object", expected='an object like {"name": ...}', row=number))
            continue
        yield number, value


# ----------------------------------------------------------------------------- xlsx


def xlsx_rows(data: IO[bytes]) -> Iterator[tuple[int, list[Any] | RowError]]:
    """``(row number, cells)`` of the first worksheet, streamed (openpyxl read-only)."""
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - a declared dependency
        raise _file_error("is a spreadsheet, but openpyxl is not installed", "pip install openpyxl") from None
    # A damaged workbook can fail inside openpyxl, zipfile, zlib or the XML parser, while
    # opening or half-way through the rows, with many exception types (found by fuzzing:
    # tests/importers/test_fuzz_import.py). Any of them means "not a readable workbook".
    try:
        workbook = openpyxl.load_workbook(data, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - third-party parser of hostile input
        raise _file_error(f"is not a readable .xlsx workbook ({type(exc).__name__})", "an .xlsx workbook") from None
    try:
        try:
            sheet = workbook.worksheets[0]
            sheet.reset_dimensions()
            rows = sheet.iter_rows(values_only=True)
            number = 0
            while True:
                try:
                    values = next(rows)
                except StopIteration:
                    break
                number += 1
                cells = [_cell_value(v) for v in values]
                if not any(c not in (None, "") for c in cells):
                    continue
                yield number, cells
        except Exception as exc:  # noqa: BLE001 - as above, damage found while reading rows
            raise _file_error(f"is a damaged .xlsx workbook ({type(exc).__name__})", "an .xlsx workbook") from None
    finally:
        try:
            workbook.close()
        except Exception:  # noqa: BLE001 - closing a damaged archive
            pass


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
    import sys

    if str(source) == "-":
        raw: IO[bytes] = stdin if stdin is not None else sys.stdin.buffer
        name, total = "<stdin>", None
    else:
        path = Path(source)
        try:
            raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed with the reader
        except FileNotFoundError:
            raise _file_error(f"{path} does not exist", "the path of a CSV, JSON Lines or .xlsx file") from None
        except IsADirectoryError:
            raise _file_error(f"{path} is a directory", "the path of a CSV, JSON Lines or .xlsx file") from None
        except OSError as exc:
            raise _file_error(f"{path} cannot be read ({exc.strerror})", "a readable file") from None
        name, total = path.name, path.stat().st_size
    reader = HashingReader(raw)
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
                buffer.write(chunk[:n])
            buffer.seek(0)
            opened._xlsx_data = buffer
        else:
            reader.drain()
            opened._xlsx_data = open(Path(source), "rb")  # noqa: SIM115 - closed by close()
    return opened
