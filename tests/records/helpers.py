"""Made-up people and store snapshots shared by the case-book and audit tests.

Every identifier here is reserved for tests: NHS numbers from 999 000 0000 upwards (never
issued; each has a valid modulus-11 check digit, checked below), Ofcom's drama mobile
range 07700 900000-900999, and well-known example postcodes.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHEAP_KDF, PASSPHRASE
from tracekit.domain.identifiers import is_valid_nhs_number
from tracekit.records import Casebook, PersonInput
from tracekit.store import create_store, open_store

#: "Today" for every case book in these tests, so dates and rule sets are deterministic.
TODAY = date(2020, 11, 1)
#: A later "today" for the December 2020 rule change (dates after TODAY are refused).
DECEMBER_TODAY = date(2020, 12, 31)

#: Never-issued NHS numbers with valid check digits.
NHS_NUMBERS = (
    "9990000018",
    "9990000026",
    "9990000034",
    "9990000042",
    "9990000050",
    "9990000069",
    "9990000077",
    "9990000085",
)
assert all(is_valid_nhs_number(n) for n in NHS_NUMBERS)
assert not is_valid_nhs_number("9990000019")  # the check digit really is checked

LAUNCH = "england-2020-05-28"
MID_2020 = "england-2020-07-30"
DECEMBER = "england-2020-12-14"


def phone(n: int) -> str:
    """A drama-range mobile number in the national form people type: 07700 900nnn."""
    assert 0 <= n <= 999
    return f"07700 900{n:03d}"


def e164(n: int) -> str:
    return f"+447700900{n:03d}"


def person(name: str, **details: Any) -> PersonInput:
    return PersonInput(name=name, **details)


def casebook(store: Any, today: date = TODAY) -> Casebook:
    return Casebook(store, today=today)


def table_snapshot(store: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every real table (FTS shadow tables included), sorted, by table name."""
    names = [
        name
        for name, sql in store.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall()
        if not (sql or "").upper().startswith("CREATE VIRTUAL")
    ]
    return {name: sorted(store.conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr) for name in names}


def count(store: Any, table: str) -> int:
    return store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def audit_rows(store: Any) -> list[dict[str, Any]]:
    return [
        {"seq": seq, "action": action, "refs": json.loads(refs), "reason": reason}
        for seq, action, refs, reason in store.conn.execute(
            "SELECT seq, action, refs, reason FROM audit_log ORDER BY seq"
        ).fetchall()
    ]


def fts_blobs(store: Any) -> bytes:
    """The raw bytes of the search index's shadow table (terms live in these blocks)."""
    return b"".join(block for (block,) in store.conn.execute("SELECT block FROM people_fts_data") if block)


def fts_terms(store: Any) -> set[str]:
    """The terms the search index still lists, read through an fts5vocab table."""
    store.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.people_vocab USING fts5vocab(main, people_fts, row)")
    return {term for (term,) in store.conn.execute("SELECT term FROM temp.people_vocab")}


_SHM = Path("/dev/shm")


@pytest.fixture
def store_path(tmp_path: Path) -> Iterator[Path]:
    """Overrides the conftest fixture where imported: the store lives on tmpfs when there
    is one, so the many small committed transactions of these tests do not wait on fsync
    (the store's own durability is tested in tests/test_store.py, on a real disk)."""
    if _SHM.is_dir() and os.access(_SHM, os.W_OK):
        directory = Path(tempfile.mkdtemp(prefix="tracekit-test-", dir=_SHM))
        try:
            yield directory / "stores" / "case.store"
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    else:
        yield tmp_path / "stores" / "case.store"


@pytest.fixture(scope="session")
def template_store_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One freshly created, empty store (cheap Argon2), made once per test session."""
    path = tmp_path_factory.mktemp("template") / "template.store"
    create_store(path, bytearray(PASSPHRASE.encode()), kdf=CHEAP_KDF).close()
    return path


@pytest.fixture
def store(store_path: Path, passphrase: bytearray, template_store_file: Path) -> Iterator[Any]:
    """Overrides the conftest fixture where imported: a byte copy of an empty store made
    by create_store, opened with the passphrase. Creating a store runs every migration
    through SQLCipher; copying one is about ten times faster, and nothing in these tests
    depends on a store's random id being unique."""
    store_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(template_store_file, store_path)
    os.chmod(store_path, 0o600)
    with open_store(store_path, passphrase) as opened:
        yield opened
