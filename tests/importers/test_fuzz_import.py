"""Hostile input to the importers: success or a tracekit error, never a crash, and the
store exactly as it was after a failure.

Random bytes, CSV and JSON Lines built from hostile fragments, and damaged xlsx files
(a real workbook with bytes flipped, truncated, or random zip members).
"""

from __future__ import annotations

import io
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import CHEAP_KDF
from tests.plaintext import logical_dump
from tracekit.errors import TracekitError
from tracekit.importers.engine import import_file
from tracekit.store import create_store

FRAGMENTS = st.sampled_from(
    [
        "external_id,name,test_date,asymptomatic",
        "id,Name,Test date,Phone,NHS number",
        "\ufeff",
        "\r\n",
        "\n",
        ",",
        '"',
        '""',
        "x" * 300,
        "1,Amara Example,10/10/2020,yes",
        "2,=cmd|' /C calc'!A0,2020-13-45,no",
        "\x00",
        "\t",
        "3,Zoë Ünïcode,31/02/2020,maybe",
        "4,,,",
        '5,"multi\nline",2020-10-01,yes',
        "07700 900123",
        "999 000 0018",
        '{"external_id": "1", "name": "A B", "test_date": "2020-10-01", "asymptomatic": true}',
        "{",
        "[]",
        "null",
        '{"name": {"nested": 1}}',
        '{"external_id": 1e308}',
    ]
)


def _workbook() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["external_id", "name", "test_date", "asymptomatic"])
    sheet.append(["1", "Amara Example", "2020-10-01", "yes"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


WORKBOOK = _workbook()


def _damaged_workbook(data: st.DataObject) -> bytes:
    kind = data.draw(st.sampled_from(["flip", "truncate", "members"]))
    blob = bytearray(WORKBOOK)
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 5))):
            blob[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
        return bytes(blob)
    if kind == "truncate":
        return bytes(blob[: data.draw(st.integers(0, len(blob) - 1))])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in data.draw(
            st.lists(
                st.sampled_from(["[Content_Types].xml", "xl/workbook.xml", "xl/worksheets/sheet1.xml", "x"]),
                max_size=4,
                unique=True,
            )
        ):
            archive.writestr(name, data.draw(st.binary(max_size=200)))
    return buffer.getvalue()


def _try(tmp_path, kind: str, content: bytes, suffix: str) -> None:
    path = tmp_path / f"input{suffix}"
    path.write_bytes(content)
    store_path = tmp_path / "fuzz.store"
    if not store_path.exists():
        create_store(store_path, bytearray(b"fuzz test passphrase"), kdf=CHEAP_KDF).close()
    from tracekit.store import open_store

    with open_store(store_path, bytearray(b"fuzz test passphrase")) as store:
        before = logical_dump(store)
        try:
            import_file(store, kind, path)
        except TracekitError:
            assert logical_dump(store) == before, "a failed import changed the store"
        assert store.check().ok


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    kind=st.sampled_from(["cases", "contacts"]),
    lines=st.lists(FRAGMENTS, max_size=8),
    joiner=st.sampled_from(["\n", "\r\n", ""]),
)
def test_text_imports_never_crash(tmp_path, kind, lines, joiner):
    _try(tmp_path, kind, joiner.join(lines).encode("utf-8"), ".csv")


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(kind=st.sampled_from(["cases", "contacts"]), content=st.binary(max_size=400))
def test_random_bytes_never_crash(tmp_path, kind, content):
    _try(tmp_path, kind, content, ".bin")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_damaged_spreadsheets_never_crash(tmp_path, data):
    _try(tmp_path, "cases", _damaged_workbook(data), ".xlsx")


def test_xlsx_corpus(tmp_path):
    """Workbooks that once crashed the reader (kept in tests/corpus/xlsx)."""
    from pathlib import Path

    for case in sorted((Path(__file__).parent.parent / "corpus" / "xlsx").iterdir()):
        work = tmp_path / case.stem
        work.mkdir()
        _try(work, "cases", case.read_bytes(), ".xlsx")
