"""The encrypted store: creation, opening, refusal cases, migrations, maintenance."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import CHEAP_KDF, PASSPHRASE
from tracekit.crypto.header import FORMAT_VERSION, MAGIC, StoreHeader
from tracekit.errors import (
    EnvironmentProblem,
    IntegrityError,
    NotAStore,
    StoreBusy,
    StoreExists,
    StoreNotFound,
    StoreTooNew,
    WriteFailed,
    WrongPassphrase,
)
from tracekit.store import core as store_core
from tracekit.store import create_store, open_store
from tracekit.store import migrations as migrations_module

CANARY = "CANARY-Zq7-plaintext-must-not-leak"


def snapshot(path: Path) -> tuple[bytes, int, list[str]]:
    return path.read_bytes(), os.stat(path).st_mtime_ns, sorted(os.listdir(path.parent))


def files_containing(needle: bytes, *directories: Path) -> list[Path]:
    hits = []
    for directory in directories:
        for root, _dirs, names in os.walk(directory):
            for name in names:
                candidate = Path(root) / name
                try:
                    if not stat.S_ISREG(os.lstat(candidate).st_mode):
                        continue
                    if needle in candidate.read_bytes():
                        hits.append(candidate)
                except OSError:
                    continue
    return hits


def test_new_store_is_private_and_has_no_plaintext_sqlite(store, store_path):
    assert stat.S_IMODE(os.stat(store_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store_path.parent).st_mode) == 0o700
    data = store_path.read_bytes()
    assert not data.startswith(b"SQLite format 3")
    assert b"CREATE TABLE" not in data and b"schema_migrations" not in data
    # The plain sqlite3 module cannot read it.
    conn = sqlite3.connect(store_path)
    with pytest.raises(sqlite3.DatabaseError):
        conn.execute("SELECT * FROM sqlite_master").fetchall()
    conn.close()


def test_header_carries_format_and_kdf_parameters(store, store_path):
    header = StoreHeader.parse(store_path.read_bytes()[:16])
    assert store_path.read_bytes()[:2] == MAGIC
    assert header.format_version == FORMAT_VERSION
    assert header.kdf == CHEAP_KDF
    assert header == store.header


def test_store_ids_differ_between_stores(tmp_path, passphrase):
    with (
        create_store(tmp_path / "a.store", passphrase, kdf=CHEAP_KDF) as a,
        create_store(tmp_path / "b.store", passphrase, kdf=CHEAP_KDF) as b,
    ):
        assert a.header.random != b.header.random
        assert a.key != b.key


def test_create_never_overwrites(store_path, passphrase):
    store_path.parent.mkdir(parents=True)
    store_path.write_bytes(b"precious")
    with pytest.raises(StoreExists):
        create_store(store_path, passphrase, kdf=CHEAP_KDF)
    assert store_path.read_bytes() == b"precious"


def test_create_keeps_existing_directory_permissions(tmp_path, passphrase):
    directory = tmp_path / "shared"
    directory.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    create_store(directory / "x.store", passphrase, kdf=CHEAP_KDF).close()
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o755


def test_reopen_with_passphrase(store, store_path, passphrase):
    store.set_setting("note", "kept")
    store.close()
    with open_store(store_path, bytearray(PASSPHRASE.encode())) as again:
        assert again.get_setting("note") == "kept"


def test_wrong_passphrase_leaves_file_byte_identical(store, store_path):
    store.close()
    before = snapshot(store_path)
    with pytest.raises(WrongPassphrase) as info:
        open_store(store_path, bytearray(b"not the passphrase"))
    assert str(info.value) == "wrong passphrase or damaged store"
    assert snapshot(store_path) == before


def test_missing_path_is_reported_and_not_created(tmp_path):
    missing = tmp_path / "nowhere" / "x.store"
    with pytest.raises(StoreNotFound):
        open_store(missing, bytearray(b"whatever passphrase"))
    assert not missing.exists() and not missing.parent.exists()


def test_plaintext_sqlite_file_is_not_a_store(tmp_path):
    path = tmp_path / "plain.db"
    sqlite3.connect(path).execute("CREATE TABLE t(x)").connection.close()
    before = snapshot(path)
    with pytest.raises(NotAStore, match="plaintext SQLite"):
        open_store(path, bytearray(b"whatever passphrase"))
    assert snapshot(path) == before


@pytest.mark.parametrize("content", [b"", b"hello", os.urandom(4096)])
def test_random_files_are_not_stores(tmp_path, content):
    path = tmp_path / "other"
    path.write_bytes(content)
    before = snapshot(path)
    with pytest.raises(NotAStore):
        open_store(path, bytearray(b"whatever passphrase"))
    assert snapshot(path) == before


def test_directory_is_not_a_store(tmp_path):
    with pytest.raises(NotAStore):
        open_store(tmp_path, bytearray(b"whatever passphrase"))


def test_newer_file_format_is_refused(store, store_path):
    store.close()
    data = bytearray(store_path.read_bytes())
    data[2] = FORMAT_VERSION + 1
    store_path.write_bytes(bytes(data))
    before = snapshot(store_path)
    with pytest.raises(StoreTooNew, match="newer tracekit"):
        open_store(store_path, bytearray(PASSPHRASE.encode()))
    assert snapshot(store_path) == before


def test_newer_schema_is_refused(store, store_path):
    with store.transaction() as conn:
        conn.execute("INSERT INTO schema_migrations VALUES(999, 'from the future', 'now')")
    store.close()
    before = snapshot(store_path)
    with pytest.raises(StoreTooNew, match="newer tracekit"):
        open_store(store_path, bytearray(PASSPHRASE.encode()))
    assert snapshot(store_path) == before


def test_tampered_kdf_parameters_are_refused_before_deriving(store, store_path):
    store.close()
    data = bytearray(store_path.read_bytes())
    data[3] = 40  # 2**40 KiB of memory: never attempted
    store_path.write_bytes(bytes(data))
    with pytest.raises(NotAStore, match="outside the accepted bounds"):
        open_store(store_path, bytearray(PASSPHRASE.encode()))


def test_cheaper_kdf_parameters_in_header_do_not_open(store, store_path):
    """Parameters are bound into the key: downgrading them in the header fails."""
    store.close()
    data = bytearray(store_path.read_bytes())
    data[4] = 2  # time cost 1 -> 2: a different derivation
    store_path.write_bytes(bytes(data))
    with pytest.raises(WrongPassphrase):
        open_store(store_path, bytearray(PASSPHRASE.encode()))


def test_sqlcipher_other_than_4_is_refused(monkeypatch):
    class FakeConn:
        def execute(self, sql):
            class R:
                def fetchone(self):
                    return ("5.0.0 community",)

            return R()

        def close(self):
            pass

    class FakeModule:
        @staticmethod
        def connect(_):
            return FakeConn()

    monkeypatch.setattr(store_core, "_checked_version", None)
    monkeypatch.setattr(store_core, "_sqlcipher", lambda: FakeModule)
    with pytest.raises(EnvironmentProblem, match="SQLCipher 5.0.0 community is not supported"):
        store_core.sqlcipher_version()


def test_no_journal_files_remain_after_writes(store, store_path):
    for i in range(5):
        store.set_setting(f"k{i}", "v")
    store.close()
    assert sorted(os.listdir(store_path.parent)) == [store_path.name]


def test_canary_never_reaches_disk_in_plaintext(store, store_path, tmp_path):
    import tempfile

    store.set_setting("canary", CANARY)
    store.backup(tmp_path / "copy.store")
    store.close()
    assert files_containing(CANARY.encode(), store_path.parent, tmp_path, Path(tempfile.gettempdir())) == []


def test_transaction_is_all_or_nothing(store):
    with pytest.raises(RuntimeError), store.transaction() as conn:
        conn.execute("INSERT INTO settings VALUES('a', '1')")
        raise RuntimeError("boom")
    assert store.get_setting("a") is None


def test_nested_transaction_rolls_back_only_inner(store):
    with store.transaction() as conn:
        conn.execute("INSERT INTO settings VALUES('outer', '1')")
        with pytest.raises(RuntimeError), store.transaction() as inner:
            inner.execute("INSERT INTO settings VALUES('inner', '1')")
            raise RuntimeError("boom")
    assert store.get_setting("outer") == "1"
    assert store.get_setting("inner") is None


def test_second_writer_gets_store_busy(store, store_path, monkeypatch):
    monkeypatch.setenv("TRACEKIT_BUSY_TIMEOUT", "0.2")
    other = open_store(store_path, bytearray(PASSPHRASE.encode()))
    try:
        with store.transaction(), pytest.raises(StoreBusy, match="busy"), other.transaction():
            pass
    finally:
        other.close()


# -- migrations ---------------------------------------------------------------------


def test_store_made_by_first_schema_is_upgraded(store_path, passphrase, monkeypatch):
    first_only = migrations_module.MIGRATIONS[:1]
    with create_store(store_path, passphrase, kdf=CHEAP_KDF, migrations=first_only) as old:
        assert old.schema_version() == 1
        old.set_setting("from-v1", "yes")
    # A later schema version: the real list, plus one more step when the real list has
    # only one, so the upgrade path is always exercised.
    extra = migrations_module.Migration(
        len(migrations_module.MIGRATIONS) + 1,
        "test-extra",
        lambda conn: conn.execute("CREATE TABLE upgrade_probe(x)"),
    )
    upgraded_list = [*migrations_module.MIGRATIONS, extra]
    monkeypatch.setattr(store_core, "MIGRATIONS", upgraded_list)
    with open_store(store_path, passphrase) as store:
        assert store.schema_version() == len(upgraded_list)
        assert store.get_setting("from-v1") == "yes"
        assert store.table_exists("upgrade_probe")
        names = [r[0] for r in store.query("SELECT name FROM schema_migrations ORDER BY version")]
        assert names == [m.name for m in upgraded_list]


def test_failed_migration_leaves_store_at_old_version(store_path, passphrase, monkeypatch):
    create_store(store_path, passphrase, kdf=CHEAP_KDF).close()
    latest = len(migrations_module.MIGRATIONS)

    def broken(conn):
        conn.execute("CREATE TABLE half_done(x)")
        raise RuntimeError("migration bug")

    monkeypatch.setattr(
        store_core,
        "MIGRATIONS",
        [*migrations_module.MIGRATIONS, migrations_module.Migration(latest + 1, "broken", broken)],
    )
    with pytest.raises(RuntimeError):
        open_store(store_path, passphrase)
    monkeypatch.undo()
    with open_store(store_path, bytearray(PASSPHRASE.encode())) as store:
        assert store.schema_version() == latest
        assert not store.table_exists("half_done")


# -- maintenance ---------------------------------------------------------------------


def test_info_reports_format_schema_cipher_and_kdf(store, store_path):
    info = store.info()
    assert info.path == str(store_path)
    assert info.format_version == FORMAT_VERSION
    assert info.schema_version == info.latest_schema_version == len(migrations_module.MIGRATIONS)
    assert info.sqlcipher_version.startswith("4.")
    assert info.kdf == {"algorithm": "argon2id", "memory_kib": 1024, "time_cost": 1, "parallelism": 1}
    assert info.cipher["hmac"] == "HMAC_SHA512"


def test_check_passes_on_a_healthy_store(store):
    report = store.check()
    assert report.ok, report.problems


def test_check_names_the_damaged_page(store, store_path):
    # Make a few pages, then flip one byte in the middle of page 2.
    with store.transaction() as conn:
        for i in range(200):
            conn.execute("INSERT INTO settings VALUES(?, ?)", (f"key-{i}", "x" * 200))
    store.close()
    data = bytearray(store_path.read_bytes())
    assert len(data) >= 3 * 4096
    data[4096 + 1000] ^= 0x01
    store_path.write_bytes(bytes(data))
    with open_store(store_path, bytearray(PASSPHRASE.encode()), migrate=False) as damaged:
        report = damaged.check()
    assert not report.ok
    assert any("page 2" in problem for problem in report.problems), report.problems


def test_damage_on_first_page_refuses_to_open(store, store_path):
    store.close()
    data = bytearray(store_path.read_bytes())
    data[100] ^= 0x01
    store_path.write_bytes(bytes(data))
    with pytest.raises(WrongPassphrase, match="wrong passphrase or damaged store"):
        open_store(store_path, bytearray(PASSPHRASE.encode()))


def test_backup_is_a_verified_copy_with_the_same_passphrase(store, tmp_path):
    store.set_setting("note", "in the backup")
    dest = store.backup(tmp_path / "backup.store")
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    with open_store(dest, bytearray(PASSPHRASE.encode())) as copy:
        assert copy.get_setting("note") == "in the backup"
        assert copy.check().ok
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_backups_into_an_existing_directory_get_timestamped_names(store, tmp_path):
    target = tmp_path / "backups"
    target.mkdir()
    first = store.backup(target, now=datetime(2026, 12, 3, 2, 0, 5, tzinfo=UTC))
    second = store.backup(target, now=datetime(2026, 12, 4, 2, 0, 5, tzinfo=UTC))
    same_second = store.backup(target, now=datetime(2026, 12, 4, 2, 0, 5, tzinfo=UTC))
    assert first == target / "tracekit-backup-20261203T020005Z.store"
    assert second == target / "tracekit-backup-20261204T020005Z.store"
    assert same_second == target / "tracekit-backup-20261204T020005Z-2.store"
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in (first, second, same_second))


def test_backup_to_a_new_path_ending_in_a_slash_makes_the_directory(store, tmp_path):
    dest = store.backup(f"{tmp_path / 'nightly'}/", now=datetime(2026, 12, 3, 2, 0, 5, tzinfo=UTC))
    assert dest == tmp_path / "nightly" / "tracekit-backup-20261203T020005Z.store"
    assert stat.S_IMODE(os.stat(tmp_path / "nightly").st_mode) == 0o700
    with open_store(dest, bytearray(PASSPHRASE.encode())) as copy:
        assert copy.check().ok


def test_backup_to_a_slash_path_under_a_missing_directory_is_refused(store, tmp_path):
    with pytest.raises(WriteFailed, match="does not exist"):
        store.backup(f"{tmp_path / 'missing' / 'nightly'}/")
    assert not (tmp_path / "missing").exists()


def test_backup_refuses_to_overwrite(store, tmp_path):
    dest = tmp_path / "exists.store"
    dest.write_bytes(b"keep me")
    with pytest.raises(StoreExists):
        store.backup(dest)
    assert dest.read_bytes() == b"keep me"


def test_backup_on_a_full_disk_fails_cleanly(store, store_path, tmp_path):
    """A write failure (file-size limit, as a full disk) gives WriteFailed and no file."""
    import subprocess
    import sys
    import textwrap

    with store.transaction() as conn:
        for i in range(100):
            conn.execute("INSERT INTO settings VALUES(?, ?)", (f"key-{i}", "x" * 1000))
    store.close()
    target = tmp_path / "full"
    target.mkdir()
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from tracekit.errors import WriteFailed
        from tracekit.store import open_store
        store = open_store({str(store_path)!r}, bytearray({PASSPHRASE!r}.encode()))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
        try:
            store.backup({str(target / "b.store")!r})
        except WriteFailed as exc:
            print("WriteFailed:", exc)
            sys.exit(0)
        sys.exit("backup did not fail")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "WriteFailed" in result.stdout
    assert list(target.iterdir()) == []
    with open_store(store_path, bytearray(PASSPHRASE.encode())) as again:
        assert again.check().ok


def test_backup_failure_leaves_nothing_at_destination(store, tmp_path, monkeypatch):
    def failing_verify(*args, **kwargs):
        raise IntegrityError("simulated verification failure")

    monkeypatch.setattr(store_core.Store, "_verify_copy", failing_verify)
    with pytest.raises(IntegrityError):
        store.backup(tmp_path / "b.store")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stores"]


def test_change_passphrase(store, store_path):
    store.set_setting("note", "survives")
    old_header = store.header
    store.change_passphrase(bytearray(b"a brand new passphrase"), kdf=CHEAP_KDF)
    assert store.get_setting("note") == "survives"  # the open handle moves to the new file
    assert store.header.random != old_header.random  # fresh salt
    store.close()
    with pytest.raises(WrongPassphrase):
        open_store(store_path, bytearray(PASSPHRASE.encode()))
    with open_store(store_path, bytearray(b"a brand new passphrase")) as again:
        assert again.get_setting("note") == "survives"
    assert sorted(os.listdir(store_path.parent)) == [store_path.name]


def test_change_passphrase_failing_half_way_keeps_old_passphrase(store, store_path, monkeypatch):
    store.set_setting("note", "survives")

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_core.os, "replace", failing_replace)
    with pytest.raises(WriteFailed, match="the disk is full; the store is unchanged"):
        store.change_passphrase(bytearray(b"a brand new passphrase"), kdf=CHEAP_KDF)
    monkeypatch.undo()
    store.close()
    assert sorted(os.listdir(store_path.parent)) == [store_path.name]
    with open_store(store_path, bytearray(PASSPHRASE.encode())) as again:
        assert again.get_setting("note") == "survives"


def test_writer_waiting_during_passphrase_change_does_not_write_to_old_file(store, store_path):
    other = open_store(store_path, bytearray(PASSPHRASE.encode()))
    try:
        store.change_passphrase(bytearray(b"a brand new passphrase"), kdf=CHEAP_KDF)
        with pytest.raises(StoreBusy, match="replaced"), other.transaction() as conn:
            conn.execute("INSERT INTO settings VALUES('lost', 'write')")
    finally:
        other.close()


def test_bulk_writes_gives_the_connection_a_large_lookaside_and_cache_then_takes_them_back(store):
    """An import's small allocations come from SQLite's lookaside, not from SQLCipher's
    locking allocator one system call at a time; its page cache is given back after."""
    ordinary = store.conn.execute("PRAGMA cache_size").fetchone()[0]
    with store.bulk_writes():
        assert store.conn.execute("PRAGMA cache_size").fetchone()[0] == -store_core.BULK_CACHE_KIB
        assert store.conn.execute("PRAGMA cipher_memory_security").fetchone()[0] in (1, "1")
        for i in range(100):  # the binding keeps each prepared statement, and its memory
            store.conn.execute(f"SELECT {i}, count(*) FROM people WHERE name_key = ?", ("x",)).fetchall()
        # SQLite's default lookaside, 1,200 x 100 bytes, has about 300 slots (75 large, 234 small).
        assert store_core.lookaside_high_water(store.conn, store.path) > 500
    assert store.conn.execute("PRAGMA cache_size").fetchone()[0] == ordinary
    for i in range(100):
        store.conn.execute(f"SELECT {i}, count(*) FROM people WHERE name_key = ?", ("x",)).fetchall()
    assert store_core.lookaside_high_water(store.conn, store.path) <= 500
    assert store.conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] > 0
