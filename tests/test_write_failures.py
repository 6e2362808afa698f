"""Write failures during import, export, bundle open and backup (issue 7, "prove it").

A disk filling up or a write failing must give a clear error with exit code 16
(``write-failed``), leave nothing half-written at the destination, and leave the store
exactly as it was. Three ways to make a write fail, each working as root too:

* a file-size limit (``RLIMIT_FSIZE``, with SIGXFSZ ignored so ``write`` fails with
  EFBIG) set in a child process after the store is open, so the limit hits part-way
  through. The child runs ``python -m tracekit`` itself, so the real entry point
  (which restores SIGPIPE's default action) and the real error boundary are exercised;
* a read-only directory: ``chmod 0500`` for an ordinary user; as root, where permission
  bits do not stop writes, a tmpfs mounted read-only (EROFS); also a destination whose
  "directory" is a file (ENOTDIR);
* a small full file system (a tmpfs of a few pages; ENOSPC). Mounting needs root
  (CAP_SYS_ADMIN): without it those tests skip, naming why, and the file-size-limit
  tests remain the proof.

"The store unchanged" is checked on the bytes of the file and on what they mean: the
same row counts, ``check()`` passes, the audit chain verifies with the same head, and
the ``--since-last`` start of the next handover is the same.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyrage import x25519

from tests.conftest import CHEAP_KDF, PASSPHRASE
from tests.importers.helpers import CASE_HEADER, case_row, run, write_csv
from tracekit import audit
from tracekit.bundle.writer import export_handover, resolve_since
from tracekit.errors import ExitCode
from tracekit.records import Casebook
from tracekit.records.sensitive import SensitiveRoles
from tracekit.store import create_store, open_store

WRITE_FAILED = int(ExitCode.WRITE_FAILED)
WORLD_CASES = 300
#: A bundle of the world's 300 cases is about 200 KB: far over these limits.
EXPORT_LIMIT = 64 * 1024
TABLES = (
    "people",
    "cases",
    "exposures",
    "external_ids",
    "imports",
    "audit_log",
    "person_roles",
    "handovers",
    "recipients",
    "settings",
)


# ---------------------------------------------------------------------------- world


@dataclass(frozen=True)
class World:
    store: Path
    key: Path
    bundle: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """One store, made once: 300 cases, a central-team recipient, one handover already sent."""
    base = tmp_path_factory.mktemp("write-failures-world")
    path = base / "world.store"
    identity = x25519.Identity.generate()
    key = base / "phe.key"
    key.write_text(f"{identity}\n")
    os.chmod(key, 0o600)
    rows = [
        case_row(f"W-{i}", f"World Person{i}", Mobile=f"07700 900{i % 1000:03d}", Notes="n" * 80)
        for i in range(WORLD_CASES)
    ]
    with create_store(path, bytearray(PASSPHRASE.encode()), kdf=CHEAP_KDF) as store:
        run(store, "cases", write_csv(base / "world.csv", CASE_HEADER, rows))
        SensitiveRoles(Casebook(store)).add_recipient("PHE", str(identity.to_public()), "central-team")
        sent = export_handover(store, "PHE", out_dir=base / "sent")
    return World(path, key, sent.path)


@pytest.fixture
def world_store(world: World, store_path: Path) -> Path:
    """A private copy of the world's store at the ``store_path`` the ``cli`` fixture uses."""
    store_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(world.store, store_path)
    return store_path


def snapshot(store_path: Path) -> dict[str, object]:
    """Everything "the store unchanged" means, after checking the store is whole.

    Not the file's bytes: rolling back restores each page's content, but SQLCipher
    re-encrypts it with a fresh IV. Instead, a digest of every row of every table
    (the search index's shadow tables included), beside the counts that name what moved.
    """
    with open_store(store_path, bytearray(PASSPHRASE.encode())) as store:
        report = store.check()
        assert report.ok, report.problems
        chain = audit.verify(store.conn)
        assert chain.ok, chain.problem
        counts = {t: store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        since_last = resolve_since(
            store.conn, "PHE", "central-handover", since=None, since_last=True, all_records=False
        )
        content = hashlib.sha256()
        names = [
            n
            for (n,) in store.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
            )
        ]
        for name in names:
            rows = sorted(repr(tuple(r)) for r in store.conn.execute(f'SELECT * FROM "{name}"'))
            content.update(f"{name}:{len(rows)}\n{''.join(rows)}".encode())
    leftovers = sorted(p.name for p in store_path.parent.iterdir() if p != store_path)
    return {
        "counts": counts,
        "audit_head": chain.head,
        "since_last": since_last,
        "content": content.hexdigest(),
        "beside_the_store": leftovers,
    }


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def case_file(path: Path, valid: int, invalid: int = 0, *, notes: int = 100) -> Path:
    """``valid`` new cases and ``invalid`` rows without a name (invalid rows first)."""
    rows = [case_row(f"NX-{i}", "", Notes="r" * notes) for i in range(invalid)]
    rows += [
        case_row(f"N-{i}", f"New Person{i}", Mobile=f"07700 900{i % 1000:03d}", Notes="n" * notes) for i in range(valid)
    ]
    return write_csv(path, CASE_HEADER, rows)


# -------------------------------------------------------------- ways to fail a write


def _child_env(store_path: Path) -> dict[str, str]:
    return {**os.environ, "TRACEKIT_STORE": str(store_path), "TRACEKIT_PASSPHRASE": PASSPHRASE}


def _limit_lines(limit: int) -> list[str]:
    return [
        "import resource, signal",
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG",
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))",
    ]


def cli_with_file_size_limit(
    args: list[str], *, limit: int, store_path: Path, cwd: Path
) -> subprocess.CompletedProcess:
    """``python -m tracekit ARGS`` in a child whose files cannot grow beyond ``limit`` bytes."""
    script = "\n".join(
        [
            *_limit_lines(limit),
            "import runpy, sys",
            f"sys.argv = ['tracekit', *{args!r}]",
            "runpy.run_module('tracekit', run_name='__main__')",
        ]
    )
    return subprocess.run(
        [sys.executable, "-c", script], env=_child_env(store_path), cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _mount_tmpfs(where: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"mounting a tmpfs needs root (CAP_SYS_ADMIN); running as uid {os.geteuid()}")
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine")
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tracekit-test", str(where)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (mount -o {options} exited {done.returncode}: {done.stderr.strip()})")


def _unmount(where: Path) -> None:
    if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@contextmanager
def full_filesystem(where: Path, *, size: str = "64k", free: int = 0) -> Iterator[Path]:
    """A small tmpfs at ``where``; filled up (to ``free`` bytes or less) unless ``free`` < 0."""
    _mount_tmpfs(where, f"size={size},mode=0700")
    try:
        if free >= 0:
            filler = os.open(where / "filler", os.O_CREAT | os.O_WRONLY, 0o600)
            try:
                block = b"\0" * 4096
                while True:
                    os.write(filler, block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
            finally:
                os.close(filler)
            if free:
                os.truncate(where / "filler", max(0, os.stat(where / "filler").st_size - free))
        yield where
    finally:
        _unmount(where)


@contextmanager
def read_only_directory(where: Path) -> Iterator[Path]:
    """A directory this process cannot create files in.

    chmod 0500 for an ordinary user. Root ignores permission bits, so as root the
    directory is a tmpfs mounted read-only (writes fail with EROFS).
    """
    if os.geteuid() != 0:
        where.mkdir()
        os.chmod(where, 0o500)
        try:
            yield where
        finally:
            os.chmod(where, 0o700)
        return
    _mount_tmpfs(where, "ro,size=16k,mode=0755")
    try:
        yield where
    finally:
        _unmount(where)


def assert_write_failed(result, *, json_output: bool = False) -> str:
    """Exit code 16 with a one-line error; no traceback, no internal error."""
    stderr = result.stderr
    code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    assert code == WRITE_FAILED, (code, stderr)
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    if json_output:
        error = json.loads(stderr)["error"]
        assert error["code"] == "write-failed" and error["exit_code"] == WRITE_FAILED
        return error["message"]
    assert stderr.startswith("error: "), stderr
    return " ".join(stderr.split())


# --------------------------------------------------------------------------- import


def test_import_when_the_store_cannot_grow_fails_cleanly_and_imports_nothing(world_store, tmp_path):
    """CLI ``import cases``: the store file may not grow past its size + 64 KiB, the import needs more."""
    before = snapshot(world_store)
    size = world_store.stat().st_size
    path = case_file(tmp_path / "big.csv", valid=800)
    result = cli_with_file_size_limit(
        ["import", "cases", str(path), "--json"], limit=size + 64 * 1024, store_path=world_store, cwd=tmp_path
    )
    message = assert_write_failed(result, json_output=True)
    assert "cannot write the store" in message and str(world_store) in message
    assert result.stdout == ""  # no summary claiming an import
    assert snapshot(world_store) == before


def test_import_failing_part_way_through_the_pass_rolls_everything_back(world_store, tmp_path):
    """Library API with a small page cache, so pages spill to the file and the write fails
    during the pass (before the last batch), not at commit."""
    before = snapshot(world_store)
    size = world_store.stat().st_size
    rows = 1500
    path = case_file(tmp_path / "big.csv", valid=rows)
    script = "\n".join(
        [
            "import json, sys",
            "from datetime import date",
            "import tracekit.store.core as core",
            "from tracekit.errors import WriteFailed",
            "from tracekit.importers import ImportOptions, import_file",
            "from tracekit.store import open_store",
            "core.BULK_CACHE_KIB = 64  # dirty pages spill to the store file during the pass",
            f"store = open_store({str(world_store)!r}, bytearray({PASSPHRASE!r}.encode()))",
            *_limit_lines(size + 64 * 1024),
            "seen = []",
            "try:",
            f"    import_file(store, 'cases', {str(path)!r}, ImportOptions(batch_rows=100, today=date(2020, 11, 1)),",
            "                progress=lambda rows, _: seen.append(rows))",
            "    outcome = {'error': None}",
            "except WriteFailed as exc:",
            "    outcome = {'error': type(exc).__name__, 'exit_code': int(exc.exit_code), 'message': str(exc)}",
            "outcome['seen'] = seen",
            "store.close()",
            "print(json.dumps(outcome))",
        ]
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=_child_env(world_store),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["error"] == "WriteFailed" and outcome["exit_code"] == WRITE_FAILED, outcome
    assert "cannot write the store" in outcome["message"]
    seen = outcome["seen"]
    assert (seen[-1] if seen else 0) < rows, f"the write failed only at commit, not during the pass: {seen}"
    assert snapshot(world_store) == before


def test_rejects_file_hitting_the_file_size_limit_fails_the_import(world_store, tmp_path):
    """``--skip-invalid --rejects``: the rejects file outgrows the limit part-way through."""
    before = snapshot(world_store)
    limit = world_store.stat().st_size + 256 * 1024
    path = case_file(tmp_path / "mixed.csv", valid=5, invalid=1500, notes=600)  # rejects ~1 MB, store +~5 KB
    out = tmp_path / "out"
    out.mkdir()
    rejects = out / "rejects.csv"
    result = cli_with_file_size_limit(
        ["import", "cases", str(path), "--skip-invalid", "--rejects", str(rejects)],
        limit=limit,
        store_path=world_store,
        cwd=tmp_path,
    )
    message = assert_write_failed(result)
    assert f"cannot write {rejects}" in message and "file size limit" in message
    assert list(out.iterdir()) == []  # neither the rejects file nor its temporary file
    assert snapshot(world_store) == before


def test_rejects_file_in_a_read_only_directory_fails_the_import(world_store, tmp_path, cli):
    before = snapshot(world_store)
    path = case_file(tmp_path / "mixed.csv", valid=3, invalid=2)
    with read_only_directory(tmp_path / "ro") as directory:
        rejects = directory / "rejects.csv"
        result = cli("import", "cases", str(path), "--skip-invalid", "--rejects", str(rejects))
        message = assert_write_failed(result)
        assert f"cannot write {rejects}" in message
        assert list(directory.iterdir()) == []
    assert snapshot(world_store) == before


def test_rejects_file_whose_directory_is_a_file_fails_the_import(world_store, tmp_path, cli):
    before = snapshot(world_store)
    path = case_file(tmp_path / "mixed.csv", valid=3, invalid=2)
    not_a_directory = tmp_path / "plain-file"
    not_a_directory.write_bytes(b"keep")
    result = cli(
        "import", "cases", str(path), "--skip-invalid", "--rejects", str(not_a_directory / "rejects.csv"), "--json"
    )
    message = assert_write_failed(result, json_output=True)
    assert "rejects.csv" in message
    assert not_a_directory.read_bytes() == b"keep"
    assert snapshot(world_store) == before


def test_rejects_file_failing_at_its_final_flush_does_not_leave_the_import_committed(
    world_store, tmp_path, cli, monkeypatch
):
    """A disk that reports "full" only when the rejects file is synced (delayed allocation,
    network file systems): the import must not commit and then report an error."""
    before = snapshot(world_store)
    path = case_file(tmp_path / "mixed.csv", valid=3, invalid=2)
    rejects = tmp_path / "rejects.csv"
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        inode = os.fstat(fd).st_ino
        if any(p.stat().st_ino == inode for p in tmp_path.glob(".rejects.csv.tmp-*")):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = cli("import", "cases", str(path), "--skip-invalid", "--rejects", str(rejects))
    monkeypatch.undo()
    message = assert_write_failed(result)
    assert f"cannot write {rejects}: the disk is full" in message
    assert sorted(p.name for p in tmp_path.iterdir() if "rejects" in p.name) == []
    assert snapshot(world_store) == before


def test_rejects_file_on_a_full_filesystem_fails_the_import(world_store, tmp_path, cli):
    """ENOSPC for real: a few rejected rows fit in the write buffer, so the disk refuses
    them only when the file is flushed at the end of the import."""
    before = snapshot(world_store)
    path = case_file(tmp_path / "mixed.csv", valid=3, invalid=2)
    with full_filesystem(tmp_path / "full") as directory:
        rejects = directory / "rejects.csv"
        result = cli("import", "cases", str(path), "--skip-invalid", "--rejects", str(rejects))
        message = assert_write_failed(result)
        assert f"cannot write {rejects}: the disk is full" in message
        assert sorted(p.name for p in directory.iterdir()) == ["filler"]
    assert snapshot(world_store) == before


# --------------------------------------------------------------------------- export


def test_export_hitting_the_file_size_limit_mid_bundle_leaves_no_file_and_no_handover(world_store, tmp_path):
    """The real entry point: before the fix, the encrypting thread died on EFBIG, the next
    write into its pipe killed tracekit by SIGPIPE, and the temporary file stayed."""
    before, raw = snapshot(world_store), file_digest(world_store)
    out = tmp_path / "out"
    out.mkdir()
    result = cli_with_file_size_limit(
        ["export", "handover", "--to", "PHE", "--all", "--out", str(out)],
        limit=EXPORT_LIMIT,
        store_path=world_store,
        cwd=tmp_path,
    )
    message = assert_write_failed(result)
    assert f"cannot write {out}/tracekit-handover-phe-" in message and "file size limit" in message
    assert list(out.iterdir()) == []  # no bundle, no .tracekit-handover-...export-* temporary file
    assert file_digest(world_store) == raw  # not one byte of the store was written
    assert snapshot(world_store) == before  # so no handovers row, same audit head, same --since-last start


def test_export_on_a_full_filesystem_leaves_no_file_and_no_handover(world_store, tmp_path, cli):
    """ENOSPC part-way through the bundle, in-process (SIGPIPE ignored, as for a library
    caller): the failure must not surface as BrokenPipeError, which the CLI takes for
    "the reader went away" and ends with 0."""
    before = snapshot(world_store)
    with full_filesystem(tmp_path / "full", size="64k", free=-1) as out:
        result = cli("export", "handover", "--to", "PHE", "--all", "--out", str(out), "--json")
        message = assert_write_failed(result, json_output=True)
        assert "the disk is full" in message
        assert list(out.iterdir()) == []
    assert snapshot(world_store) == before


@pytest.mark.parametrize("how", ["read-only directory", "a file in the way", "missing parent is a file"])
def test_export_into_a_directory_that_cannot_be_written(world_store, tmp_path, cli, how):
    before = snapshot(world_store)
    blocker = tmp_path / "plain-file"
    blocker.write_bytes(b"keep")
    maybe_ro = read_only_directory(tmp_path / "ro") if how == "read-only directory" else nullcontext(None)
    with maybe_ro as ro:
        out = {"read-only directory": ro, "a file in the way": blocker, "missing parent is a file": blocker / "sub"}[
            how
        ]
        result = cli("export", "handover", "--to", "PHE", "--all", "--out", str(out))
        assert_write_failed(result)
        if ro is not None:
            assert list(ro.iterdir()) == []
    assert blocker.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir() if "handover" in p.name) == []
    assert snapshot(world_store) == before


# ---------------------------------------------------------------------- bundle open


def _no_partial_output(out: Path) -> None:
    """What a failed ``bundle open`` leaves: the --out directory itself, empty."""
    assert out.is_dir() and list(out.iterdir()) == [], sorted(p.name for p in out.iterdir())


def test_bundle_open_hitting_the_file_size_limit_removes_what_it_extracted(world, tmp_path):
    out = tmp_path / "opened"
    result = cli_with_file_size_limit(
        ["bundle", "open", str(world.bundle), "-i", str(world.key), "--out", str(out)],
        limit=32 * 1024,
        store_path=tmp_path / "no.store",
        cwd=tmp_path,
    )
    message = assert_write_failed(result)
    assert "file size limit" in message and "damaged" not in message  # our disk, not their bundle
    _no_partial_output(out)


def test_bundle_open_on_a_full_filesystem_removes_what_it_extracted(world, tmp_path, cli):
    with full_filesystem(tmp_path / "full", size="64k", free=-1) as out:
        result = cli("bundle", "open", str(world.bundle), "-i", str(world.key), "--out", str(out), "--json")
        message = assert_write_failed(result, json_output=True)
        assert "the disk is full" in message
        _no_partial_output(out)


@pytest.mark.parametrize("how", ["read-only directory", "missing parent is a file"])
def test_bundle_open_into_a_directory_that_cannot_be_written(world, tmp_path, cli, how):
    blocker = tmp_path / "plain-file"
    blocker.write_bytes(b"keep")
    if how == "read-only directory":
        with read_only_directory(tmp_path / "ro") as out:
            result = cli("bundle", "open", str(world.bundle), "-i", str(world.key), "--out", str(out / "opened"))
            assert_write_failed(result)
            assert list(out.iterdir()) == []
    else:
        result = cli("bundle", "open", str(world.bundle), "-i", str(world.key), "--out", str(blocker / "opened"))
        assert_write_failed(result)
    assert blocker.read_bytes() == b"keep"


# --------------------------------------------------------------------------- backup


def test_backup_into_a_read_only_directory_fails_cleanly(world_store, tmp_path, cli):
    before = snapshot(world_store)
    with read_only_directory(tmp_path / "ro") as directory:
        result = cli("store", "backup", str(directory))
        message = assert_write_failed(result)
        assert "cannot create" in message or "cannot write" in message
        assert list(directory.iterdir()) == []
    assert snapshot(world_store) == before


def test_backup_on_a_full_filesystem_fails_cleanly(world_store, tmp_path, cli):
    before = snapshot(world_store)
    with full_filesystem(tmp_path / "full", size="128k", free=-1) as directory:  # the store is ~400 KB
        result = cli("store", "backup", str(directory / "copy.store"))
        message = assert_write_failed(result)
        assert "cannot write" in message
        assert list(directory.iterdir()) == []  # neither the copy nor its journal
    assert snapshot(world_store) == before


# -------------------------------------------------------------------- standard output


@pytest.mark.parametrize("args", [("policy", "list"), ("--version",), ("--help",), ("case", "--help")])
def test_output_to_a_full_disk_is_a_write_failure_not_a_bug(tmp_path, args):
    """``tracekit ... > file`` on a full disk (here /dev/full): exit 16, not 1; also for
    --version and --help, which run before a command's own error handling."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this platform")
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "tracekit", *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=_child_env(tmp_path / "no.store"),
            cwd=tmp_path,
            timeout=60,
        )
    assert done.returncode == WRITE_FAILED, done.stderr
    assert done.stderr.startswith("error: ") and "the disk is full" in done.stderr
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr
