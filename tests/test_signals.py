"""SIGTERM ends a command like Ctrl-C (cleanup, exit 143); SIGKILL leftovers go at the next run.

Each command runs in a child process (the real entry point, ``tracekit.cli.main``) and is
frozen with SIGSTOP once its temporary file (or its store journal) exists, so the signal
lands mid-work every time, not at a lucky moment. Then either SIGTERM (+ SIGCONT): the
command must exit 143 and leave nothing behind; or SIGKILL: the leftover must be there,
and the next command that opens the store or writes into that directory (run in-process)
removes it and says so on stderr.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pyrage import x25519
from typer.testing import CliRunner

from tests.conftest import CHEAP_KDF, PASSPHRASE
from tests.importers.helpers import CASE_HEADER, CONTACT_HEADER, case_row, contact_row, run, write_csv
from tracekit import files
from tracekit.bundle.writer import export_handover
from tracekit.errors import ExitCode, WrongPassphrase
from tracekit.records import Casebook
from tracekit.records.sensitive import SensitiveRoles
from tracekit.store import create_store, open_store

NEW_PASSPHRASE = "a new passphrase: quince lychee"
#: The console entry point, with Argon2 as cheap as in tests/conftest.py (store passwd
#: would otherwise calibrate it on this machine, for seconds).
CHILD = (
    "import sys; from tracekit.crypto import kdf; kdf.default_params = lambda: kdf.KdfParams(10, 1, 1); "
    "sys.argv[0] = 'tracekit'; from tracekit.cli import main; main()"
)
CONTACTS = 1500


@dataclass
class Template:
    store: Path
    identity: Path
    bundle: Path
    contacts_csv: Path


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """A store with 1,700 people, a recipient whose identity we hold, a bundle made for
    it, and 4 MB of padding, so that copying the store (backup, passwd) takes a while."""
    work = tmp_path_factory.mktemp("signals-template")
    store_path = work / "case.store"
    identity = x25519.Identity.generate()
    cases = write_csv(work / "cases.csv", CASE_HEADER, [case_row(f"LAB-{i}", f"Case Person{i}") for i in range(200)])
    contacts = write_csv(
        work / "contacts.csv",
        CONTACT_HEADER,
        [
            contact_row(f"K-{i}", f"LAB-{i % 200}", "Contact", f"Number{i}", Tel=f"07700 900{i % 1000:03d}")
            for i in range(CONTACTS)
        ],
    )
    with create_store(store_path, bytearray(PASSPHRASE.encode()), kdf=CHEAP_KDF) as store:
        run(store, "cases", cases)
        run(store, "contacts", contacts)
        SensitiveRoles(Casebook(store)).add_recipient("Central", str(identity.to_public()), "central-team")
        (work / "bundles").mkdir()
        bundle = export_handover(store, "Central", all_records=True, out_dir=work / "bundles").path
        store.set_setting("padding", secrets.token_hex(2 * 1024 * 1024))
    identity_file = work / "identity.txt"
    identity_file.write_text(f"{identity}\n")
    os.chmod(identity_file, 0o600)
    more_contacts = write_csv(
        work / "more.csv",
        CONTACT_HEADER,
        [contact_row(f"M-{i}", f"LAB-{i % 200}", "More", f"Contact{i}") for i in range(2000)],
    )
    return Template(store_path, identity_file, bundle, more_contacts)


@pytest.fixture
def work(template: Template, tmp_path: Path) -> Path:
    (tmp_path / "stores").mkdir()
    shutil.copy2(template.store, tmp_path / "stores" / "case.store")
    return tmp_path


def _store(work: Path) -> Path:
    return work / "stores" / "case.store"


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEKIT_")}
    return {**env, "TRACEKIT_STORE": str(_store(work)), "TRACEKIT_PASSPHRASE": PASSPHRASE}


def _start_and_freeze(work: Path, args: list[str], mid_work: Callable[[], bool]) -> subprocess.Popen:
    """Start ``tracekit args``; once ``mid_work()`` holds, stop the child (SIGSTOP) and
    check it still holds, so the child is frozen in the middle of the work."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        env=_env(work),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.poll() is not None:
            pytest.fail(f"the command finished before it could be stopped mid-work: {child.stderr.read()}")
        if mid_work():
            os.kill(child.pid, signal.SIGSTOP)
            _, status = os.waitpid(child.pid, os.WUNTRACED)  # returns once it is stopped
            if not os.WIFSTOPPED(status):
                pytest.fail("the command finished before it could be stopped mid-work")
            if mid_work():
                return child
            os.kill(child.pid, signal.SIGCONT)
        time.sleep(0.001)
    child.kill()
    child.wait()
    pytest.fail("the command never reached the middle of its work")


def _terminate(child: subprocess.Popen, signum: int = signal.SIGTERM) -> tuple[int, str]:
    os.kill(child.pid, signum)
    os.kill(child.pid, signal.SIGCONT)
    _, stderr = child.communicate(timeout=60)
    return child.returncode, stderr


def _kill_9(child: subprocess.Popen) -> None:
    child.kill()
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL


def _temporaries(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith("."))


def _named(directory: Path, part: str) -> Callable[[], bool]:
    return lambda: any(part in name for name in _temporaries(directory))


def _next_command(work: Path, *args: str):
    """The next command, in-process: it must remove the leftovers and report them."""
    from tracekit.cli import app

    result = CliRunner().invoke(app, list(args), env=_env(work), catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result


def _reported(result, directory: Path, names: list[str]) -> None:
    lines = [line for line in result.stderr.splitlines() if "interrupted tracekit run" in line]
    assert len(lines) == 1, result.stderr
    assert str(directory) in lines[0] and all(name in lines[0] for name in names), lines[0]


def _counts(work: Path, *, check: bool = False) -> dict[str, int]:
    with open_store(_store(work), bytearray(PASSPHRASE.encode())) as store:
        if check:
            report = store.check()
            assert report.ok, report.problems
        return {
            t: store.query(f"SELECT count(*) FROM {t}")[0][0]
            for t in ("people", "exposures", "imports", "handovers", "audit_log")
        }


# -- import: the store journal ---------------------------------------------------------


def _journal(work: Path) -> Path:
    return Path(f"{_store(work)}-journal")


def _importing(work: Path, template: Template) -> subprocess.Popen:
    return _start_and_freeze(work, ["import", "contacts", str(template.contacts_csv), "--quiet"], _journal(work).exists)


@pytest.mark.slow
def test_sigterm_mid_import_rolls_back_and_exits_143(work, template):
    before = _counts(work)
    code, stderr = _terminate(_importing(work, template))
    assert code == ExitCode.TERMINATED == 143, stderr
    assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr
    assert not _journal(work).exists()
    assert _temporaries(_store(work).parent) == []
    assert _counts(work, check=True) == before


@pytest.mark.slow
def test_kill_9_mid_import_journal_is_rolled_back_by_the_next_command(work, template):
    before = _counts(work)
    _kill_9(_importing(work, template))
    assert _journal(work).exists()
    _next_command(work, "store", "info")
    assert not _journal(work).exists()
    assert _counts(work, check=True) == before


def test_stale_journal_is_removed_by_the_next_command(work):
    """A journal killed before its header was written is not "hot": SQLite ignores it on
    reads and it stayed forever. The next command removes it (holding the write lock)."""
    _journal(work).write_bytes(b"")
    before = _counts(work)  # opening removes it
    assert not _journal(work).exists()
    _journal(work).write_bytes(bytes(512))
    result = _next_command(work, "store", "info")
    assert not _journal(work).exists()
    _reported(result, _store(work).parent, ["case.store-journal"])
    assert _counts(work) == before


def test_a_live_writers_journal_is_left_alone(work):
    with open_store(_store(work), bytearray(PASSPHRASE.encode())) as writer, writer.transaction() as conn:
        conn.execute("INSERT INTO settings(key, value) VALUES('unfinished', 'x')")
        assert _journal(work).exists()
        with open_store(_store(work), bytearray(PASSPHRASE.encode())):
            assert _journal(work).exists()
    assert not _journal(work).exists()


# -- store passwd: a full copy under the new passphrase ----------------------------------


def _changing_passphrase(work: Path) -> subprocess.Popen:
    secret = work / "new.txt"
    secret.write_text(NEW_PASSPHRASE + "\n")
    os.chmod(secret, 0o600)
    return _start_and_freeze(
        work, ["store", "passwd", "--new-passphrase-file", str(secret)], _named(_store(work).parent, ".passwd-")
    )


def _opens_with_old_passphrase_only(work: Path) -> None:
    open_store(_store(work), bytearray(PASSPHRASE.encode())).close()
    with pytest.raises(WrongPassphrase):
        open_store(_store(work), bytearray(NEW_PASSPHRASE.encode()))


def test_sigterm_mid_passwd_removes_the_copy_and_exits_143(work):
    code, stderr = _terminate(_changing_passphrase(work))
    assert code == 143, stderr
    assert _temporaries(_store(work).parent) == []
    _opens_with_old_passphrase_only(work)


def test_kill_9_mid_passwd_copy_is_removed_by_the_next_command(work):
    child = _changing_passphrase(work)
    _kill_9(child)
    leftovers = _temporaries(_store(work).parent)
    assert leftovers and all(f".case.store.passwd-{child.pid}-" in name for name in leftovers)
    result = _next_command(work, "store", "info")
    assert _temporaries(_store(work).parent) == []
    _reported(result, _store(work).parent, leftovers)
    _opens_with_old_passphrase_only(work)


# -- store backup ---------------------------------------------------------------------------


def _backing_up(work: Path) -> subprocess.Popen:
    (work / "backups").mkdir()
    return _start_and_freeze(work, ["store", "backup", str(work / "backups")], _named(work / "backups", ".backup-"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_mid_backup_removes_the_copy_and_exits_143(work, signum):
    before = _counts(work)
    code, stderr = _terminate(_backing_up(work), signum)
    assert code == 143, stderr
    assert f"stopped by {signal.Signals(signum).name}" in stderr
    assert os.listdir(work / "backups") == []
    assert _counts(work) == before  # no audit entry for a backup that was not made


def test_kill_9_mid_backup_copy_is_removed_by_the_next_backup(work):
    child = _backing_up(work)
    _kill_9(child)
    leftovers = _temporaries(work / "backups")
    assert leftovers and all(
        name.startswith(".tracekit-backup-") and f".store.backup-{child.pid}-" in name for name in leftovers
    )
    result = _next_command(work, "store", "backup", str(work / "backups"))
    assert [name.startswith("tracekit-backup-") for name in os.listdir(work / "backups")] == [True]
    _reported(result, work / "backups", leftovers)


# -- export handover -----------------------------------------------------------------------


def _exporting(work: Path) -> subprocess.Popen:
    out = work / "out"
    out.mkdir()
    return _start_and_freeze(
        work, ["export", "handover", "--to", "Central", "--all", "--out", str(out)], _named(out, ".export-")
    )


def test_sigterm_mid_export_removes_the_partial_bundle_and_exits_143(work):
    before = _counts(work)
    code, stderr = _terminate(_exporting(work))
    assert code == 143, stderr
    assert os.listdir(work / "out") == []
    assert _counts(work) == before  # no handover recorded


def test_kill_9_mid_export_partial_bundle_is_removed_by_the_next_export(work):
    child = _exporting(work)
    _kill_9(child)
    leftovers = _temporaries(work / "out")
    assert len(leftovers) == 1 and f".export-{child.pid}-" in leftovers[0]
    result = _next_command(work, "export", "handover", "--to", "Central", "--all", "--out", str(work / "out"))
    assert _temporaries(work / "out") == [] and len(os.listdir(work / "out")) == 1
    _reported(result, work / "out", leftovers)


# -- bundle open: unverified plaintext -------------------------------------------------------


def _opening(work: Path, template: Template) -> subprocess.Popen:
    out = work / "opened"
    return _start_and_freeze(
        work,
        ["bundle", "open", str(template.bundle), "--identity", str(template.identity), "--out", str(out)],
        lambda: any(out.glob(".tracekit-open-*/records/*.jsonl")),
    )


def test_sigterm_mid_bundle_open_removes_the_plaintext_and_exits_143(work, template):
    code, stderr = _terminate(_opening(work, template))
    assert code == 143, stderr
    assert os.listdir(work / "opened") == []


def test_kill_9_mid_bundle_open_plaintext_is_removed_by_the_next_open(work, template):
    child = _opening(work, template)
    _kill_9(child)
    leftovers = _temporaries(work / "opened")
    assert leftovers == [name for name in leftovers if name.startswith(f".tracekit-open-{child.pid}-")] != []
    assert any((work / "opened" / leftovers[0] / "records").iterdir())
    result = _next_command(
        work,
        "bundle",
        "open",
        str(template.bundle),
        "--identity",
        str(template.identity),
        "--out",
        str(work / "opened"),
    )
    assert _temporaries(work / "opened") == [] and len(os.listdir(work / "opened")) == 1
    _reported(result, work / "opened", leftovers)


# -- the sweep: only what is ours, from a process that is gone --------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_sweep_removes_only_tracekit_temporaries_of_dead_processes(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    token = "0123456789ab"
    ours = [
        f".case.store.passwd-{dead}-{token}",
        f".case.store.passwd-{dead}-{token}-journal",
        f".x.tar.age.export-{dead}-{token}",
        f".out.csv.tmp-{dead}-{token}",
    ]
    kept = [
        f".case.store.passwd-{alive}-{token}",  # its process still runs
        f".case.store.passwd-{dead}-xyz",  # not our pattern
        f"case.store.passwd-{dead}-{token}",
        "notes.txt",
    ]
    for name in ours + kept:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / f".tracekit-open-{dead}-{token}" / "records").mkdir(parents=True)
    (tmp_path / f".tracekit-open-{dead}-{token}" / "records" / "cases-1.jsonl").write_text("{}\n")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("not ours")
    os.symlink(target, tmp_path / f".tracekit-open-{dead}-abcdef012345")  # a link: never followed nor removed
    os.symlink(target / "keep.txt", tmp_path / f".y.backup-{dead}-{token}")
    os.mkdir(tmp_path / f".z.store.backup-{dead}-{token}")  # a directory where a file is expected

    removed = files.remove_leftovers(tmp_path)

    assert removed == sorted(ours + [f".tracekit-open-{dead}-{token}"])
    assert sorted(os.listdir(tmp_path)) == sorted(
        kept
        + [
            "elsewhere",
            f".tracekit-open-{dead}-abcdef012345",
            f".y.backup-{dead}-{token}",
            f".z.store.backup-{dead}-{token}",
        ]
    )
    assert (target / "keep.txt").read_text() == "not ours"


def test_temporary_names_hold_the_creating_pid_and_are_recognised(tmp_path):
    file_name = files.temp_path_beside(tmp_path / "case.store", "passwd").name
    dir_name = files.temp_dir_in(tmp_path, "open").name
    assert file_name.startswith(f".case.store.passwd-{os.getpid()}-")
    assert dir_name.startswith(f".tracekit-open-{os.getpid()}-")
    (tmp_path / file_name).write_bytes(b"")
    (tmp_path / dir_name).mkdir()
    assert files.remove_leftovers(tmp_path) == []  # this process is alive: nothing is a leftover


def test_leftover_report_is_hidden_by_quiet(work):
    name = f".case.store.passwd-{_dead_pid()}-0123456789ab"
    (_store(work).parent / name).write_bytes(b"x")
    result = _next_command(work, "store", "info", "--quiet")
    assert name not in result.stderr
    assert _temporaries(_store(work).parent) == []
