"""Two processes on one store: the second writer waits a bounded time, then says "busy".

A long write (standing in for a scheduled import) holds the write lock in one process;
the tracer's command in another either waits it out (timeout long enough) or fails with
exit code 9 and "store is busy" (timeout short). No row is lost, the store checks clean.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

from tests.conftest import PASSPHRASE
from tracekit.errors import ExitCode
from tracekit.store import open_store


def hold_write_lock(store_path, seconds: float, rows: int) -> subprocess.Popen:
    script = textwrap.dedent(
        f"""
        import sys, time
        from datetime import date
        from tracekit.records import Casebook, PersonInput
        from tracekit.store import open_store
        store = open_store({str(store_path)!r}, bytearray({PASSPHRASE!r}.encode()))
        book = Casebook(store, today=date(2020, 11, 1))
        with store.transaction():
            for i in range({rows}):
                book.add_case(person=PersonInput(name=f"Imported Person {{i}}"), test_date="2020-10-01",
                              asymptomatic=True, new_person=True)
            print("LOCKED", flush=True)
            time.sleep({seconds})
        store.close()
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "LOCKED"
    return child


def tracer_adds_a_case(store_path, timeout: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEKIT_")}
    env.update({"TRACEKIT_STORE": str(store_path), "TRACEKIT_PASSPHRASE": PASSPHRASE, "TRACEKIT_BUSY_TIMEOUT": timeout})
    return subprocess.run(
        [sys.executable, "-m", "tracekit", "store", "backup", str(store_path.parent / f"b-{timeout}.store")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def count_cases(store_path) -> int:
    with open_store(store_path, bytearray(PASSPHRASE.encode())) as store:
        assert store.check().ok
        return store.query("SELECT count(*) FROM cases")[0][0]


def test_second_writer_fails_with_busy_after_a_bounded_wait(store, store_path):
    store.close()
    holder = hold_write_lock(store_path, seconds=4, rows=50)
    started = time.monotonic()
    result = tracer_adds_a_case(store_path, timeout="0.5")
    waited = time.monotonic() - started
    assert result.returncode == ExitCode.STORE_BUSY, result.stderr
    assert "store is busy" in result.stderr and "Traceback" not in result.stderr
    assert waited < 3.5  # bounded: it did not wait for the holder to finish
    assert not (store_path.parent / "b-0.5.store").exists()  # all or nothing
    holder.wait(timeout=30)
    assert count_cases(store_path) == 50


def test_second_writer_waits_if_the_timeout_allows(store, store_path):
    store.close()
    holder = hold_write_lock(store_path, seconds=1, rows=20)
    result = tracer_adds_a_case(store_path, timeout="20")
    holder.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    assert count_cases(store_path) == 20


def test_library_writer_and_cli_writer_interleave_without_loss(store, store_path):
    """Two writers in turn, many times: every row from both is there afterwards."""
    from datetime import date

    from tracekit.records import Casebook, PersonInput

    book = Casebook(store, today=date(2020, 11, 1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEKIT_")}
    env.update({"TRACEKIT_STORE": str(store_path), "TRACEKIT_PASSPHRASE": PASSPHRASE, "TRACEKIT_BUSY_TIMEOUT": "20"})
    script = textwrap.dedent(
        f"""
        from datetime import date
        from tracekit.records import Casebook, PersonInput
        from tracekit.store import open_store
        with open_store({str(store_path)!r}, bytearray({PASSPHRASE!r}.encode())) as store:
            book = Casebook(store, today=date(2020, 11, 1))
            for i in range(30):
                book.add_case(person=PersonInput(name=f"Child Person {{i}}"), test_date="2020-10-01",
                              asymptomatic=True, new_person=True)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    for i in range(30):
        book.add_case(
            person=PersonInput(name=f"Parent Person {i}"), test_date="2020-10-01", asymptomatic=True, new_person=True
        )
    assert child.wait(timeout=120) == 0
    store.close()
    assert count_cases(store_path) == 60


def test_the_process_holding_the_write_lock_is_named(store, store_path):
    """Issue 14 item 1: a tracer waiting for the store is told who is writing to it."""
    from tracekit.store.core import UNKNOWN_WRITER, store_writer

    store.close()
    assert store_writer(store_path) == UNKNOWN_WRITER
    holder = hold_write_lock(store_path, seconds=0.5, rows=1)
    try:
        assert store_writer(store_path).startswith(f"process {holder.pid} (python")
    finally:
        holder.wait(timeout=30)
    assert store_writer(store_path) == UNKNOWN_WRITER
