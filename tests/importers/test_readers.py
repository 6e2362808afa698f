"""Reading files: format detection, CSV dialects and encodings, JSON Lines, spreadsheets, line numbers."""

from __future__ import annotations

import io

import pytest

from tracekit.errors import ValidationError
from tracekit.importers.readers import detect_format, open_input


def rows_of(data: bytes, fmt: str | None = None):
    opened = open_input("-", fmt, stdin=io.BytesIO(data))
    try:
        return opened.format, list(opened.rows()), opened
    finally:
        opened.close()


def test_detects_each_format_from_content():
    assert detect_format(b"name,phone\n") == "csv"
    assert detect_format(b'\xef\xbb\xbf  {"name": 1}\n') == "jsonl"
    assert detect_format(b"PK\x03\x04rest") == "xlsx"
    with pytest.raises(ValidationError, match="JSON array"):
        detect_format(b"[{}]")
    with pytest.raises(ValidationError, match="empty"):
        detect_format(b"\xef\xbb\xbf \r\n")
    with pytest.raises(ValidationError, match="xls"):
        detect_format(b"\xd0\xcf\x11\xe0....")


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_csv_bom_crlf_quoted_newlines_and_blank_lines(bom, newline):
    data = bom + newline.join(
        [
            b"Name,Notes,Phone",
            b'Ada,"two' + newline + b'lines",07700 900101',
            b"",
            b"Basil,,07700 900102",
            b"",
            b"",
        ]
    )
    fmt, rows, _ = rows_of(data)
    assert fmt == "csv"
    assert rows[0] == (1, ["Name", "Notes", "Phone"])  # the BOM is not part of the first header
    assert rows[1][0] == 2 and rows[1][1][1].replace("\r\n", "\n") == "two\nlines"
    assert rows[2] == (5, ["Basil", "", "07700 900102"])  # line numbers count the quoted line break
    assert len(rows) == 3  # blank and trailing lines are skipped


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiter_is_sniffed(delimiter):
    sep = delimiter.encode()
    data = (
        sep.join([b"Name", b"Date of birth", b"Phone"])
        + b"\n"
        + sep.join([b'"Lovelock, Ada"', b"14/03/1985", b"07700 900101"])
        + b"\n"
    )
    _, rows, _ = rows_of(data)
    assert rows[1][1] == ["Lovelock, Ada", "14/03/1985", "07700 900101"]


def test_csv_that_is_not_utf8_is_refused_with_its_line():
    data = b"Name,Town\nAda,London\nBasil,Z\xfcrich\n"
    with pytest.raises(ValidationError) as caught:
        rows_of(data)
    assert "UTF-8" in str(caught.value) and caught.value.row == 3


def test_hash_covers_every_byte_read():
    import hashlib

    data = b"Name\n" + b"x\n" * 100_000
    _, _, opened = rows_of(data)
    assert opened.sha256 == hashlib.sha256(data).hexdigest()
    assert opened.reader.bytes_read == len(data)


def test_jsonl_rows_and_bad_lines():
    data = b'{"name": "Ada", "nhs": 9990000018}\n\n[1, 2]\n{not json\n{"name": "Basil"}\n'
    fmt, rows, _ = rows_of(data)
    assert fmt == "jsonl"
    assert rows[0] == (1, {"name": "Ada", "nhs": 9990000018})
    assert rows[1][0] == 3 and "not a JSON object" in str(rows[1][1].error)
    assert rows[2][0] == 4 and "not valid JSON" in str(rows[2][1].error)
    assert rows[3] == (5, {"name": "Basil"})


def test_format_can_be_forced():
    fmt, rows, _ = rows_of(b'{"a": 1}\n', "csv")
    assert fmt == "csv" and rows[0][1] == ['{"a": 1}']


def test_xlsx_rows_with_dates_numbers_and_row_numbers(tmp_path):
    from datetime import date, datetime

    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Name", "DOB", "NHS number", "Distance"])
    sheet.append(["Ada", datetime(1985, 3, 14), 9990000018, 1.5])
    sheet.append([None, None, None, None])
    sheet.append(["Basil", "02/07/1990", 9990000026.0, 2])
    path = tmp_path / "book.xlsx"
    workbook.save(path)
    opened = open_input(path)
    try:
        assert opened.format == "xlsx"
        rows = list(opened.rows())
    finally:
        opened.close()
    assert rows[0] == (1, ["Name", "DOB", "NHS number", "Distance"])
    assert rows[1] == (2, ["Ada", date(1985, 3, 14), "9990000018", "1.5"])
    assert rows[2] == (4, ["Basil", "02/07/1990", "9990000026", "2"])
    import hashlib

    assert opened.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        open_input(tmp_path / "nope.csv")
