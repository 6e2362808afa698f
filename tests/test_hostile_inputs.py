"""Hostile input and faults (issue 12): every one ends in a documented exit code, never 1.

Closed or write-only standard input, absurd descriptor numbers, deeply nested JSON and
TOML, endless lines, devices and FIFOs named as input files, a spreadsheet claiming a
billionth row, repeated JSON keys, unclosed CSV quotes, a store directory that cannot
be written, a rename that fails with EBUSY and a truncated store. Each test checks the
exit code, the message, and that the store is unchanged.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE
from tracekit import files
from tracekit.errors import ExitCode, PolicyError, ValidationError
from tracekit.importers import readers
from tracekit.importers.readers import open_input

CSV_HEADER = "Case ID,Full name,Specimen date,Onset date,Notes\n"
HANG_TIMEOUT = 20


def fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_cli_child(store_path: Path, *args: str, **popen: object) -> subprocess.CompletedProcess[str]:
    """``python -m tracekit ARGS`` in a child process (for what stdin or a hang needs)."""
    env = {**os.environ, "TRACEKIT_STORE": str(store_path), "TRACEKIT_PASSPHRASE": PASSPHRASE}
    return subprocess.run(  # type: ignore[call-overload]
        [sys.executable, "-m", "tracekit", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT,
        **popen,
    )


def within_timeout(call):
    """Run ``call`` in a thread; fail (instead of hanging the suite) if it blocks."""
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    worker.start()
    worker.join(timeout=HANG_TIMEOUT)
    assert not worker.is_alive(), "blocked (opened a FIFO and waited for a writer?)"
    return outcome[0]


# -- standard input and descriptors -----------------------------------------------------


def test_import_from_closed_stdin_is_a_validation_error(cli_with_store, store_path):
    before = fingerprint(store_path)
    result = run_cli_child(store_path, "import", "cases", "-", preexec_fn=lambda: os.close(0))
    assert result.returncode == ExitCode.VALIDATION, result.stderr
    assert "standard input is closed" in result.stderr
    assert fingerprint(store_path) == before


def test_import_from_write_only_stdin_is_a_validation_error(cli_with_store, store_path, tmp_path):
    before = fingerprint(store_path)
    with open(tmp_path / "write-only", "wb") as write_only:
        result = run_cli_child(store_path, "import", "cases", "-", stdin=write_only)
    assert result.returncode == ExitCode.VALIDATION, result.stderr
    assert "standard input cannot be read (Bad file descriptor)" in result.stderr
    assert fingerprint(store_path) == before


def test_passphrase_fd_too_large_for_a_descriptor(cli_with_store):
    result = cli_with_store("--passphrase-fd", "99999999999", "store", "info")
    assert result.exit_code == ExitCode.PASSPHRASE
    assert "--passphrase-fd 99999999999: descriptor 99999999999 is not open" in result.stderr


# -- nesting ------------------------------------------------------------------------------


def test_deeply_nested_jsonl_row_is_a_row_error(cli_with_store, store_path, tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text('{"a": ' * 1000 + "1" + "}" * 1000 + "\n")
    before = fingerprint(store_path)
    result = cli_with_store("import", "cases", str(path))
    assert result.exit_code == ExitCode.VALIDATION
    assert "line 1: row: nests objects or arrays too deeply" in result.stderr
    assert fingerprint(store_path) == before


def test_deeply_nested_mapping_file(cli_with_store, store_path, tmp_path):
    mapping = tmp_path / "deep.toml"
    mapping.write_text("[columns]\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    data = tmp_path / "cases.csv"
    data.write_text(CSV_HEADER)
    result = cli_with_store("import", "cases", str(data), "--mapping", str(mapping))
    assert result.exit_code == ExitCode.VALIDATION
    assert f"mapping: {mapping} nests arrays or tables too deeply" in result.stderr


def test_deeply_nested_policy_file(cli, tmp_path):
    policy = tmp_path / "deep.toml"
    policy.write_text("name = " + "[" * 5000 + "]" * 5000 + "\n")
    result = cli("policy", "check", str(policy))
    assert result.exit_code == ExitCode.POLICY
    assert "nested too deeply to be a policy" in result.stderr


# -- the store's directory and file system --------------------------------------------------


class _ConnectionThatCannotCreateItsJournal:
    """A connection of a store in a read-only directory: SQLite fails to create its
    journal when a write transaction starts (SQLITE_CANTOPEN)."""

    def __init__(self, conn) -> None:
        self._conn = conn

    def execute(self, sql, *args):
        if sql.startswith("BEGIN IMMEDIATE"):
            from tracekit.store.core import _sqlcipher

            raise _sqlcipher().OperationalError("unable to open database file")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_store_in_a_read_only_directory_is_a_write_failure(cli_with_store, store_path, tmp_path, monkeypatch):
    from tracekit.store import core

    connect = core._connect
    monkeypatch.setattr(core, "_connect", lambda *a, **kw: _ConnectionThatCannotCreateItsJournal(connect(*a, **kw)))
    data = tmp_path / "cases.csv"
    data.write_text(CSV_HEADER + "A-1,Ann Example,20/10/2020,18/10/2020,\n")
    before = fingerprint(store_path)
    result = cli_with_store("import", "cases", str(data))
    assert result.exit_code == ExitCode.WRITE_FAILED, result.stderr
    message = " ".join(result.stderr.split())
    assert f"SQLite cannot create its journal file in {store_path.parent}" in message
    assert "(is the directory read-only or not writable by you?); nothing was changed" in message
    assert fingerprint(store_path) == before


def test_store_passwd_rename_busy_leaves_the_store_unchanged(cli_with_store, store_path, tmp_path, monkeypatch):
    new_file = tmp_path / "new.txt"
    new_file.write_text("another long passphrase\n")
    os.chmod(new_file, 0o600)
    real_replace = os.replace

    def busy_replace(source, destination, *args, **kwargs):
        if Path(destination) == store_path:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(destination))
        return real_replace(source, destination, *args, **kwargs)

    monkeypatch.setattr(os, "replace", busy_replace)
    before = fingerprint(store_path)
    result = cli_with_store("store", "passwd", "--new-passphrase-file", str(new_file))
    assert result.exit_code == ExitCode.WRITE_FAILED, result.stderr
    assert "the file is busy" in result.stderr and "the old passphrase still opens it" in result.stderr
    assert fingerprint(store_path) == before
    assert sorted(p.name for p in store_path.parent.iterdir()) == [store_path.name]
    monkeypatch.undo()
    assert cli_with_store("store", "info").exit_code == 0


# -- unbounded input ------------------------------------------------------------------------


#: Runs tracekit and prints its own peak RSS (KiB) on stderr when it exits. VmHWM belongs
#: to this program only: getrusage's ru_maxrss would include the forking parent's (pytest's).
REPORT_PEAK_RSS = (
    "import atexit, runpy, sys; "
    "atexit.register(lambda: sys.stderr.write('\\npeak_rss_kib=' + [line.split()[1] for line in "
    "open('/proc/self/status') if line.startswith('VmHWM:')][0] + '\\n')); "
    "sys.argv = ['tracekit', *sys.argv[1:]]; runpy.run_module('tracekit', run_name='__main__')"
)


def test_endless_stdin_without_newlines_stays_small(cli_with_store, store_path):
    """`import cases - < /dev/full` once grew to 24 GB."""
    before = fingerprint(store_path)
    env = {**os.environ, "TRACEKIT_STORE": str(store_path), "TRACEKIT_PASSPHRASE": PASSPHRASE}
    with open("/dev/full", "rb") as endless:
        result = subprocess.run(
            [sys.executable, "-c", REPORT_PEAK_RSS, "import", "cases", "-"],
            stdin=endless,
            env=env,
            capture_output=True,
            text=True,
            timeout=HANG_TIMEOUT,
        )
    assert result.returncode == ExitCode.VALIDATION, result.stderr
    assert "line 1: file: has a line longer than the limit of 4 MiB" in result.stderr
    peak_kib = int(result.stderr.rsplit("peak_rss_kib=", 1)[1])
    assert peak_kib < 200 * 1024, f"peak RSS {peak_kib} KiB"
    assert fingerprint(store_path) == before


def test_one_line_beyond_the_limit_names_its_line(monkeypatch):
    monkeypatch.setattr(readers, "MAX_RECORD_BYTES", 1000)
    data = b'{"name": "a"}\n' + b'{"name": "' + b"x" * 2000 + b'"}\n'
    opened = open_input("-", stdin=io.BytesIO(data))
    with pytest.raises(ValidationError, match="line 2: file: has a line longer than the limit of 1000 bytes"):
        list(opened.rows())


def test_csv_record_of_many_quoted_lines_beyond_the_limit(monkeypatch):
    monkeypatch.setattr(readers, "MAX_RECORD_BYTES", 1000)
    data = b"Name,Notes\nAda,ok\n" + b"Bob," + b'"x\n",' * 400 + b"end\n"
    opened = open_input("-", stdin=io.BytesIO(data))
    with pytest.raises(ValidationError, match="line 3: file: has a record longer than the limit of 1000 bytes"):
        list(opened.rows())


def test_spreadsheet_on_stdin_beyond_the_limit(monkeypatch):
    monkeypatch.setattr(readers, "MAX_STDIN_XLSX_BYTES", 100)
    with pytest.raises(ValidationError, match="larger than the limit of 100 bytes"):
        open_input("-", stdin=io.BytesIO(b"PK\x03\x04" + b"\0" * 5000))


@pytest.mark.parametrize("option", ["--mapping", "policy"])
def test_device_named_as_mapping_or_policy_is_refused(cli_with_store, tmp_path, option):
    data = tmp_path / "cases.csv"
    data.write_text(CSV_HEADER)
    if option == "policy":
        result = cli_with_store("policy", "check", "/dev/zero")
        assert result.exit_code == ExitCode.POLICY
    else:
        result = cli_with_store("import", "cases", str(data), "--mapping", "/dev/zero")
        assert result.exit_code == ExitCode.VALIDATION
    assert "/dev/zero is a device, not a regular file" in result.stderr


def test_read_regular_file_stops_at_its_limit(tmp_path):
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * 101)
    with pytest.raises(PolicyError, match=f"policy file {big} is larger than the limit of 100 bytes"):
        files.read_regular_file(big, what="policy file", max_bytes=100, error=PolicyError)
    assert files.read_regular_file(big, what="policy file", max_bytes=101, error=PolicyError) == b"#" * 101


def test_policy_file_beyond_its_size_limit(cli, tmp_path):
    from tracekit.redaction.policy import MAX_POLICY_FILE_BYTES

    policy = tmp_path / "big.toml"
    policy.write_bytes(b"# padding\n" * (MAX_POLICY_FILE_BYTES // 10 + 1))
    result = cli("policy", "check", str(policy))
    assert result.exit_code == ExitCode.POLICY
    assert "is larger than the limit of 1 MiB" in result.stderr


# -- FIFOs ----------------------------------------------------------------------------------


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "fifo"
    os.mkfifo(path, 0o600)
    return path


def test_fifo_as_store_is_refused_without_blocking(cli, fifo):
    result = within_timeout(lambda: cli("--store", str(fifo), "store", "info"))
    assert result.exit_code == ExitCode.NOT_A_STORE
    assert f"the store {fifo} is a named pipe (FIFO), not a regular file" in result.stderr


@pytest.mark.parametrize("role", ["import file", "mapping", "policy", "key file"])
def test_fifo_as_input_file_is_refused_without_blocking(cli_with_store, store_path, tmp_path, fifo, role):
    data = tmp_path / "cases.csv"
    data.write_text(CSV_HEADER)
    before = fingerprint(store_path)
    args = {
        "mapping": ("import", "cases", str(data), "--mapping", str(fifo)),
        "policy": ("policy", "check", str(fifo)),
        "key file": ("keys", "pseudonym", "import", str(fifo)),
    }.get(role)
    if args is None:
        # `import` refuses a FIFO path itself; the reader refuses it too when called directly.
        error = within_timeout(lambda: pytest.raises(ValidationError, open_input, fifo).value)
        assert "import file" in str(error) and "is a named pipe (FIFO), not a regular file" in str(error)
        return
    result = within_timeout(lambda: cli_with_store(*args))
    assert result.exit_code in (ExitCode.VALIDATION, ExitCode.POLICY), result.stderr
    assert "is a named pipe (FIFO), not a regular file" in result.stderr
    assert fingerprint(store_path) == before


def test_open_regular_file_names_what_it_refuses(tmp_path):
    for path, kind in ((tmp_path, "a directory"), (Path("/dev/null"), "a device")):
        with pytest.raises(PolicyError, match=f"policy file {path} is {kind}, not a regular file"):
            files.open_regular_file(path, what="policy file", error=PolicyError)


# -- spreadsheets -------------------------------------------------------------------------


def _workbook_with_row_moved(tmp_path: Path, row_number: int) -> Path:
    """A small workbook whose second data row is moved to ``row_number`` in the XML."""
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    workbook.active.append(["Case ID", "Name", "Specimen date", "Asymptomatic"])
    workbook.active.append(["X-1", "Ada Lovelock", "20/10/2020", "yes"])
    workbook.active.append(["X-2", "Basil Fawlt", "20/10/2020", "yes"])
    tmp_path.mkdir(exist_ok=True)
    plain = tmp_path / "plain.xlsx"
    workbook.save(plain)
    moved = tmp_path / "moved.xlsx"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(moved, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                text = text.replace('<row r="3"', f'<row r="{row_number}"')
                for column in "ABCD":
                    text = text.replace(f'r="{column}3"', f'r="{column}{row_number}"')
                data = text.encode()
            target.writestr(item, data)
    return moved


def test_spreadsheet_row_beyond_excel_limits_is_refused_at_once(cli_with_store, store_path, tmp_path):
    """4.9 KB claiming row 1,000,000,000 once held the write lock for 456 s."""
    book = _workbook_with_row_moved(tmp_path, 1_000_000_000)
    before = fingerprint(store_path)
    started = time.monotonic()
    result = cli_with_store("import", "cases", str(book))
    elapsed = time.monotonic() - started
    assert result.exit_code == ExitCode.VALIDATION, result.stderr
    assert "has a row numbered 1,000,000,000, beyond the limit of 1,048,576 rows" in result.stderr
    assert elapsed < 10
    assert fingerprint(store_path) == before


def test_spreadsheet_rows_up_to_excels_limit_are_read_and_beyond_refused(tmp_path):
    last = _workbook_with_row_moved(tmp_path / "last", 1_048_576)
    opened = open_input(last)
    try:
        rows = list(opened.rows())
    finally:
        opened.close()
    assert [number for number, _ in rows] == [1, 2, 1_048_576]
    assert rows[2][1] == ["X-2", "Basil Fawlt", "20/10/2020", "yes"]
    beyond = _workbook_with_row_moved(tmp_path / "beyond", 1_048_577)
    opened = open_input(beyond)
    try:
        with pytest.raises(ValidationError, match="has a row numbered 1,048,577, beyond the limit of 1,048,576 rows"):
            list(opened.rows())
    finally:
        opened.close()


# -- what readers used to let through ---------------------------------------------------------


def test_repeated_json_key_is_refused_with_line_and_key(cli_with_store, store_path, tmp_path):
    path = tmp_path / "dup.jsonl"
    path.write_text('{"external_id": "A-1", "name": "Ann Example"}\n{"name": "x", "name": "y"}\n')
    before = fingerprint(store_path)
    result = cli_with_store("import", "cases", str(path))
    assert result.exit_code == ExitCode.VALIDATION
    assert "line 2: row: has the key 'name' more than once" in result.stderr
    assert fingerprint(store_path) == before


def test_unclosed_csv_quote_names_where_it_opened(cli_with_store, store_path, tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text(
        CSV_HEADER + 'A-1,Ann,20/10/2020,18/10/2020,"two\nlines"\n'
        'A-2,"Bob,20/10/2020,18/10/2020,x\nA-3,Cy,20/10/2020,18/10/2020,y\n'
    )
    before = fingerprint(store_path)
    result = cli_with_store("import", "cases", str(path))
    assert result.exit_code == ExitCode.VALIDATION
    assert "line 4: file: a quoted field is never closed: the quote opened in column 'Full name'" in result.stderr
    assert "is required" not in result.stderr
    assert fingerprint(store_path) == before


# -- store check ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cut_to", "expected"),
    [
        (lambda size: size - 1000, "not a whole number of 4096-byte pages: it was cut short (truncated)"),
        (lambda size: 2 * 4096, "its 2 pages are authentic, but the database they hold is incomplete"),
    ],
)
def test_store_check_says_a_store_is_truncated(cli_with_store, store_path, cut_to, expected):
    os.truncate(store_path, cut_to(store_path.stat().st_size))
    result = cli_with_store("store", "check")
    assert result.exit_code == ExitCode.INTEGRITY
    assert expected in " ".join(result.stderr.split())
    assert "run 'tracekit store check'" not in result.stderr


def test_an_sqlite_error_with_no_known_meaning_is_not_exit_1():
    """Unknown SQLite errors about the file (a schema it cannot read) are damage or the environment: exit 10."""
    import sqlcipher3

    from tracekit.errors import ExitCode
    from tracekit.store.core import translate_db_error

    error = translate_db_error(sqlcipher3.dbapi2.OperationalError("no such table: people"))
    assert error.exit_code == ExitCode.INTEGRITY and "no such table: people" in error.message
    assert (
        translate_db_error(sqlcipher3.dbapi2.OperationalError('near "x": syntax error')).exit_code == ExitCode.INTERNAL
    )


def test_a_workbook_declaring_huge_shared_strings_is_refused_before_openpyxl_loads_them(
    cli_with_store, store_path, tmp_path
):
    """openpyxl reads the shared-strings table whole: a small zip can declare gigabytes there (a zip bomb)."""
    book = tmp_path / "bomb.xlsx"
    plain = _workbook_with_row_moved(tmp_path / "plain", 3)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr("xl/sharedStrings.xml", b"<sst>" + b" " * (300 << 20) + b"</sst>")  # deflates to about 300 KB
    assert book.stat().st_size < 2 << 20
    before = fingerprint(store_path)
    result = cli_with_store("import", "cases", str(book))
    assert result.exit_code == ExitCode.VALIDATION, result.stderr
    assert "beyond the limit of 256 MiB" in result.stderr
    assert fingerprint(store_path) == before
