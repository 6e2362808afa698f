"""A process killed (SIGKILL) in the middle of an import leaves the store whole, with none of it.

The import runs in a child process (``python -m tracekit import ...``) on a file big enough
to take a few seconds; it is killed once its transaction has written to the store file.
The store must then open, pass ``check()`` (pages, structure, references, audit chain),
and hold exactly what it held before; running the same command again finishes the job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE
from tests.importers.helpers import (
    CASE_HEADER,
    CONTACT_HEADER,
    case_row,
    contact_row,
    write_csv,
)
from tracekit.store import open_store

ROWS = 4000


def _snapshot(store_path: Path) -> dict[str, int]:
    with open_store(store_path, bytearray(PASSPHRASE.encode())) as store:
        report = store.check()
        assert report.ok, report.problems
        return {
            t: store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("people", "cases", "exposures", "external_ids", "imports", "audit_log", "person_roles")
        }


def _command(store_path: Path, path: Path) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "TRACEKIT_STORE": str(store_path), "TRACEKIT_PASSPHRASE": PASSPHRASE}
    return [sys.executable, "-m", "tracekit", "import", "contacts", str(path), "--quiet"], env


@pytest.mark.slow
@pytest.mark.parametrize("written_bytes", [1, 400_000])
def test_kill_9_mid_import_leaves_all_or_nothing(cli_with_store, store_path, tmp_path, written_bytes):
    cases = write_csv(
        tmp_path / "cases.csv", CASE_HEADER, [case_row(f"LAB-{i}", f"Case Person{i}") for i in range(200)]
    )
    assert cli_with_store("import", "cases", str(cases)).exit_code == 0
    rows = [
        contact_row(
            f"K-{i}",
            f"LAB-{i % 200}",
            "Contact",
            f"Number{i}",
            Tel=f"07700 900{i % 1000:03d}",
            Occupation="police officer" if i % 97 == 0 else "teacher",
        )
        for i in range(ROWS)
    ]
    contacts = write_csv(tmp_path / "contacts.csv", CONTACT_HEADER, rows)
    before = _snapshot(store_path)
    size_before = store_path.stat().st_size
    journal = Path(f"{store_path}-journal")
    argv, env = _command(store_path, contacts)
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and child.poll() is None:
            grown = store_path.stat().st_size - size_before
            if journal.exists() and grown >= written_bytes:
                break
            time.sleep(0.005)
        assert child.poll() is None, "the import finished before it could be interrupted: use a bigger file"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert journal.exists()  # a hot journal: the unfinished transaction is undone at the next open
    assert _snapshot(store_path) == before
    assert not journal.exists()
    finished = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    after = _snapshot(store_path)
    assert after["exposures"] == ROWS and after["people"] == before["people"] + ROWS
    assert after["imports"] == before["imports"] + 1 and after["audit_log"] > before["audit_log"]
