"""The encrypted store: one SQLCipher 4 file, keyed with an Argon2id-derived raw key.

Opening never creates or modifies a file until the key is proven right: the path is
opened with ``mode=rw`` (SQLite would otherwise create it), the header is read and
checked first, and a wrong key fails on the first read. Every write happens inside
:meth:`Store.transaction`, with a rollback journal (``journal_mode=DELETE``), so no
``-wal``, ``-shm`` or ``-journal`` file stays beside the store once a command returns.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tracekit import files
from tracekit.crypto import kdf as kdf_defaults
from tracekit.crypto.header import HEADER_BYTES, HeaderProblem, StoreHeader
from tracekit.crypto.kdf import KdfParams, derive_key
from tracekit.errors import (
    EnvironmentProblem,
    IntegrityError,
    NotAStore,
    StoreBusy,
    StoreExists,
    StoreNotFound,
    StoreTooNew,
    TracekitError,
    WriteFailed,
    WrongPassphrase,
)
from tracekit.store import migrations as migrations_module
from tracekit.store import settings as store_settings
from tracekit.store.migrations import BOOTSTRAP, MIGRATIONS, Migration

SUPPORTED_SQLCIPHER_MAJOR = 4
#: SQLCipher 4's page size, which tracekit never changes.
PAGE_BYTES = 4096
DEFAULT_BUSY_TIMEOUT_SECONDS = 10.0
BUSY_TIMEOUT_ENV = "TRACEKIT_BUSY_TIMEOUT"

#: Tables whose row counts ``store info`` reports, in display order (key, table). The key
#: is the JSON name (snake_case, see docs/json.md); :func:`record_label` words it for people.
RECORD_TABLES: list[tuple[str, str]] = [
    ("people", "people"),
    ("cases", "cases"),
    ("exposures", "exposures"),
    ("call_attempts", "call_attempts"),
    ("sensitive_role_marks", "person_roles"),
    ("referrals", "referrals"),
    ("recipients", "recipients"),
    ("audit_entries", "audit_log"),
    ("imports", "imports"),
    ("handovers", "handovers"),
    ("recall_requests", "recalls"),
]


def record_label(key: str) -> str:
    """A :data:`RECORD_TABLES` key as words: ``call_attempts`` -> ``call attempts``."""
    return key.replace("_", " ")


def _sqlcipher() -> Any:
    import sqlcipher3

    return sqlcipher3


_checked_version: str | None = None


def sqlcipher_version() -> str:
    """The SQLCipher library version; refuse anything but 4.x with a clear message."""
    global _checked_version
    if _checked_version is None:
        conn = _sqlcipher().connect(":memory:")
        try:
            row = conn.execute("PRAGMA cipher_version").fetchone()
        finally:
            conn.close()
        version = row[0] if row else ""
        match = re.match(r"(\d+)\.", version or "")
        if not match:
            raise EnvironmentProblem(
                "the sqlite3 library in use has no SQLCipher support; reinstall tracekit's "
                "dependencies (pip install sqlcipher3)"
            )
        if int(match.group(1)) != SUPPORTED_SQLCIPHER_MAJOR:
            raise EnvironmentProblem(
                f"SQLCipher {version} is not supported: tracekit needs SQLCipher "
                f"{SUPPORTED_SQLCIPHER_MAJOR}.x (its file format differs); install sqlcipher3 0.6"
            )
        _checked_version = version
    return _checked_version


def _is_busy(exc: Exception) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text


def translate_db_error(exc: Exception, path: Path | None = None) -> TracekitError:
    """Turn a SQLCipher/SQLite exception into the tracekit error a user should see."""
    text = str(exc).lower()
    where = f" ({path})" if path else ""
    if "file is not a database" in text:
        return WrongPassphrase()
    if _is_busy(exc):
        return store_busy(path)
    if "malformed" in text or "hmac" in text:
        return IntegrityError(f"the store is damaged{where}; run 'tracekit store check' for details")
    if "disk is full" in text or "disk i/o" in text or "readonly" in text or "read-only" in text:
        return WriteFailed(f"cannot write the store{where}: {exc}")
    if "unable to open database file" in text:
        # Met when writing: SQLite creates its rollback journal beside the store.
        directory = path.parent if path else "the store's directory"
        return WriteFailed(
            f"cannot write the store{where}: SQLite cannot create its journal file in {directory} "
            "(is the directory read-only or not writable by you?); nothing was changed"
        )
    if type(exc).__name__ == "OperationalError" and "syntax error" not in text:
        # Anything else SQLite reports about the file itself (a schema it cannot read, an
        # I/O error it has no words for) is the environment or damage, not a bug of ours.
        return IntegrityError(
            f'the store could not be used{where}: SQLite reports "{str(exc)[:200]}"; '
            "run 'tracekit store check' to examine it"
        )
    return TracekitError(f"store error{where}: {type(exc).__name__}")


#: The name of a backup written into a directory (UTC, so names sort by time and a clock change repeats none).
BACKUP_NAME_FORMAT = "tracekit-backup-%Y%m%dT%H%M%SZ.store"


def backup_destination(dest: Path | str, *, now: datetime | None = None) -> Path:
    """The file a backup to ``dest`` is written to.

    A directory (an existing one, or a path ending in "/", created 0700 if its parent
    exists) gets a new timestamped name, with "-2", "-3", ... if one from the same
    second is already there; any other path is the file itself.
    """
    raw = os.fspath(dest)
    path = Path(raw).expanduser()
    names_a_directory = raw.endswith(("/", os.sep))
    if not (names_a_directory or path.is_dir()):
        return path
    if not path.exists():
        if not path.parent.is_dir():
            raise WriteFailed(f"cannot write into {path}: the directory {path.parent} does not exist")
        files.ensure_private_dir(path)
    if not path.is_dir():
        raise StoreExists(f"{path} is a file, not a directory; tracekit never overwrites it")
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    name = stamp.strftime(BACKUP_NAME_FORMAT)
    candidate = path / name
    suffix = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = path / name.replace(".store", f"-{suffix}.store")
        suffix += 1
    return candidate


#: SQLite's lock bytes (os_unix.c): a writer holds RESERVED from BEGIN IMMEDIATE to COMMIT,
#: and PENDING while it commits.
_PENDING_BYTE = 0x40000000
_WRITER_LOCK_BYTES = (_PENDING_BYTE, _PENDING_BYTE + 1)
#: Who is writing, when it cannot be told.
UNKNOWN_WRITER = "another tracekit process"


def store_writer(path: Path) -> str:
    """Who holds the store's write lock, for messages: "process 1234 (tracekit)" when
    Linux's /proc/locks says, else "another tracekit process". Only the process id and
    its program name are read, never its command line (which may hold a person's details)."""
    try:
        inode = os.stat(path).st_ino
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return UNKNOWN_WRITER
    for line in lines:
        fields = line.split()
        if "->" in fields or len(fields) < 8 or fields[1] != "POSIX" or fields[3] != "WRITE":
            continue  # "->" marks a process waiting for the lock, not holding it
        pid, file_id, start, end = fields[4], fields[5], fields[6], fields[7]
        try:
            holds = file_id.rsplit(":", 1)[1] == str(inode) and any(
                int(start) <= byte <= (int(end) if end != "EOF" else byte) for byte in _WRITER_LOCK_BYTES
            )
        except (IndexError, ValueError):
            continue
        if holds and pid.isdigit() and int(pid) != os.getpid():
            try:
                with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as handle:
                    program = "".join(ch for ch in handle.read().strip() if ch.isprintable())[:32]
            except OSError:
                program = ""
            return f"process {pid} ({program})" if program else f"process {pid}"
    return UNKNOWN_WRITER


def store_busy(path: Path | None, writer: str | None = None) -> StoreBusy:
    where = f" ({path})" if path else ""
    who = writer or (store_writer(path) if path else UNKNOWN_WRITER)
    return StoreBusy(f"the store is busy{where}: {who} is writing to it; try again when it has finished")


#: Called by :meth:`Store.transaction` when the write lock is taken: ``wait(writer,
#: try_lock)``, where ``try_lock(seconds)`` waits up to that long for the lock and says
#: whether it was taken. It returns once the lock is held, or raises (StoreBusy when it
#: gives up, Interrupted when the user does). Set by the CLI; None waits up to the busy
#: timeout and raises StoreBusy.
BusyWaiter = Callable[[str, Callable[[float], bool]], None]


def busy_timeout_seconds() -> float:
    raw = os.environ.get(BUSY_TIMEOUT_ENV)
    if raw:
        try:
            value = float(raw)
            if 0 <= value <= 3600:
                return value
        except ValueError:
            pass
    return DEFAULT_BUSY_TIMEOUT_SECONDS


def read_header(path: Path) -> StoreHeader:
    """Read and check the 16-byte header without touching anything else."""
    path = Path(path)

    def not_found(_: str) -> StoreNotFound:
        return StoreNotFound(f"no store at {path}", hint="create one with 'tracekit init' or pass --store PATH")

    with files.open_regular_file(path, what="the store", error=NotAStore, not_found=not_found) as handle:
        try:
            data = handle.read(HEADER_BYTES)
        except OSError as exc:
            raise NotAStore(f"cannot read the store {path}: {files.describe_os_error(exc)}") from None
    try:
        return StoreHeader.parse(data)
    except HeaderProblem as problem:
        if problem.kind == "too-new":
            raise StoreTooNew(f"{path}: {problem}") from None
        raise NotAStore(f"{path}: {problem}") from None


def _key_pragma(key: bytearray, header: StoreHeader) -> str:
    # PRAGMA key cannot take bound parameters: the string is built from hex digits only.
    return f"PRAGMA key = \"x'{key.hex()}{header.to_bytes().hex()}'\""


#: SQLite's lookaside allocator (slot bytes, slots) for a connection doing bulk writes
#: (:meth:`Store.bulk_writes`); other connections keep SQLite's default (1,200 x 100, about
#: 117 KiB). SQLite serves a connection's small allocations (cursors, statements, record and
#: key buffers) from this one buffer; what misses it goes to the process allocator, which
#: with ``cipher_memory_security`` is SQLCipher's: an ``mlock`` per allocation and a wipe and
#: an ``munlock`` per free. An import holds about 30,000 slots at once (measured with
#: ``sqlite3_db_status``); with fewer, most of its allocations miss. The buffer is itself one
#: allocation through SQLCipher's allocator: wiped when the connection closes. See
#: docs/threat-model.md ("Memory") and docs/performance.md.
BULK_LOOKASIDE = (1200, 20_000)
#: Page cache of a connection doing bulk writes (KiB): the import's working set (the tops of
#: the append-mostly b-trees and the pages of the random-key indexes it touches), given back
#: when the bulk write ends. 64 MiB measured no faster at 1,000,000 people (the search
#: index's 8 MiB pending buffer took the peak of a 105,000-row import to 190 MiB with it;
#: 172 MiB with this; the budget is 200 MB).
BULK_CACHE_KIB = 48 * 1024
_SQLITE_DBCONFIG_LOOKASIDE = 1001


def _sqlite_library() -> Any:
    """The SQLite C library inside sqlcipher3's extension module (statically linked), for
    the one setting the Python binding does not expose; None if it cannot be reached."""
    global _library
    if _library is None:
        try:
            import ctypes

            from sqlcipher3 import _sqlite3

            library = ctypes.CDLL(_sqlite3.__file__)
            library.sqlite3_db_config.restype = ctypes.c_int
            library.sqlite3_db_filename.restype = ctypes.c_char_p
            library.sqlite3_db_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            _library = library
        except (ImportError, OSError, AttributeError):
            _library = False
    return _library or None


_library: Any = None


def _db_handle(conn: Any, path: Path) -> int | None:
    """The ``sqlite3 *`` of a sqlcipher3 connection: the first field after the object
    header (``pysqlite_Connection.db``), checked by asking SQLite for the file it has open."""
    import ctypes

    library = _sqlite_library()
    if library is None or not isinstance(conn, _sqlcipher().Connection):
        return None  # only a real connection (or a subclass) has that layout
    handle = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value
    if not handle:
        return None
    name = library.sqlite3_db_filename(handle, b"main")
    if name is None or os.path.realpath(os.fsdecode(name)) != os.path.realpath(path):
        return None
    return int(handle)


def _enlarge_lookaside(conn: Any, path: Path, slot_bytes: int, slots: int) -> bool:
    """Give the connection a lookaside of ``slots`` x ``slot_bytes``.

    Must run before the connection's first statement (SQLite refuses while any lookaside
    memory is in use, and every statement the binding caches holds some). Returns whether
    SQLite took it; if not, the connection keeps SQLite's default and works the same, only
    slower (docs/performance.md).
    """
    import ctypes

    handle = _db_handle(conn, path)
    if handle is None:
        return False
    library = _sqlite_library()
    rc = library.sqlite3_db_config(
        ctypes.c_void_p(handle),
        _SQLITE_DBCONFIG_LOOKASIDE,
        ctypes.c_void_p(None),
        ctypes.c_int(slot_bytes),
        ctypes.c_int(slots),
    )
    return rc == 0


def lookaside_high_water(conn: Any, path: Path) -> int | None:
    """The most lookaside slots the connection has held at once (SQLITE_DBSTATUS_LOOKASIDE_USED)."""
    import ctypes

    handle = _db_handle(conn, path)
    if handle is None:
        return None
    current, highest = ctypes.c_int(), ctypes.c_int()
    _sqlite_library().sqlite3_db_status(ctypes.c_void_p(handle), 0, ctypes.byref(current), ctypes.byref(highest), 0)
    return highest.value


def _memory_security_on() -> None:
    """Turn SQLCipher's memory security on for the process before a connection opens, so
    that the connection's lookaside buffer is itself a locked, wiped-on-free allocation.
    (The setting is process-wide; each connection also sets it, as SQLCipher asks.)"""
    global _memory_security_set
    if not _memory_security_set:
        conn = _sqlcipher().connect(":memory:")
        try:
            conn.execute("PRAGMA cipher_memory_security = ON")
        finally:
            conn.close()
        _memory_security_set = True


_memory_security_set = False


def _connect(
    path: Path, key: bytearray, header: StoreHeader, *, checking: bool = False, lookaside: tuple[int, int] | None = None
) -> Any:
    """Open and key a connection; prove the key with a first read. Writes nothing.

    ``checking`` (``store check``): a damaged store is refused with what is wrong with
    it, not with advice to run ``store check``. ``lookaside``: (slot bytes, slots) of
    SQLite's lookaside for this connection (see ``BULK_LOOKASIDE``).
    """
    sqlcipher_version()
    _memory_security_on()
    sqlcipher3 = _sqlcipher()
    uri = f"file:{quote(str(path))}?mode=rw"
    try:
        conn = sqlcipher3.connect(uri, uri=True, isolation_level=None, timeout=busy_timeout_seconds())
    except sqlcipher3.Error as exc:
        raise NotAStore(f"cannot open {path}: {exc}") from None
    try:
        if lookaside is not None:
            _enlarge_lookaside(conn, path, *lookaside)
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute("PRAGMA cipher_memory_security = ON")
        conn.execute(_key_pragma(key, header))
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA temp_store = MEMORY")
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "delete":
            conn.execute("PRAGMA journal_mode = DELETE")
    except sqlcipher3.Error as exc:
        conn.close()
        error = translate_db_error(exc, path)
        if checking and isinstance(error, IntegrityError):
            error = IntegrityError(f"the store is damaged ({path}): {'; '.join(_damage_found(path, key, header))}")
        raise error from None
    return conn


def _truncation_found(size: int) -> list[str]:
    """The store's size says it was cut short: a store is a whole number of pages."""
    if not size % PAGE_BYTES:
        return []
    return [
        f"the file is {size:,} bytes, not a whole number of {PAGE_BYTES}-byte pages: it was cut short "
        f"(truncated) part-way through page {size // PAGE_BYTES + 1}"
    ]


def _damage_found(path: Path, key: bytearray, header: StoreHeader) -> list[str]:
    """What is wrong with a store whose key is right but whose database cannot be read."""
    size = os.stat(path).st_size
    problems = _truncation_found(size)
    sqlcipher3 = _sqlcipher()
    conn = sqlcipher3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(_key_pragma(key, header))
        conn.execute("PRAGMA writable_schema = ON")  # page count from the file, not from page 1
        pages = [str(row[0]) for row in conn.execute("PRAGMA cipher_integrity_check").fetchall()]
    except sqlcipher3.Error as exc:
        pages = [f"the pages could not be checked: {exc}"]
    finally:
        conn.close()
    problems.extend(problem for problem in pages if not (size % PAGE_BYTES and "invalid size" in problem))
    if not problems:
        problems.append(
            f"its {size // PAGE_BYTES:,} pages are authentic, but the database they hold is incomplete: "
            "pages are missing, most likely because the file was cut short (truncated) at a page boundary"
        )
    return problems


def _utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class StoreInfo:
    path: str
    size_bytes: int
    format_version: int
    schema_version: int
    latest_schema_version: int
    sqlcipher_version: str
    cipher: dict[str, str]
    kdf: dict[str, int | str]
    created_at: str | None
    record_counts: dict[str, int]


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _audit_check(store: Store) -> list[str]:
    from tracekit import audit

    return audit.check_for_store(store)


#: Extra checks run by ``store check`` after the database checks, each returning a list
#: of problems.
EXTRA_CHECKS: list[tuple[str, Callable[[Store], list[str]]]] = [("audit chain", _audit_check)]


class Store:
    """An open, unlocked store. Use as a context manager; close() zeroes the key copy."""

    def __init__(self, path: Path, conn: Any, header: StoreHeader, key: bytearray) -> None:
        self.path = Path(path)
        self.conn = conn
        self.header = header
        self._key = key
        self._depth = 0
        self._inode = os.stat(self.path).st_ino
        self._after_commit: list[Callable[[], None]] = []
        self.busy_waiter: BusyWaiter | None = None

    # -- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None
                for i in range(len(self._key)):
                    self._key[i] = 0

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def key(self) -> bytearray:
        """The raw store key (for caching in the kernel keyring). Do not keep a copy."""
        return self._key

    @property
    def store_id(self) -> str:
        return self.header.store_id

    # -- transactions ----------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """All-or-nothing write. Nested calls become savepoints of the outer one.

        The outer level takes the write lock at once (BEGIN IMMEDIATE); a second writer
        waits up to the busy timeout and then fails with "store is busy".
        """
        sqlcipher3 = _sqlcipher()
        if self._depth:
            name = f"sp{self._depth}"
            self.conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self.conn
            except BaseException:
                self.conn.execute(f"ROLLBACK TO {name}")
                self.conn.execute(f"RELEASE {name}")
                raise
            else:
                self.conn.execute(f"RELEASE {name}")
            finally:
                self._depth -= 1
            return
        self._take_write_lock()
        self._depth = 1
        try:
            self._check_not_replaced()
            yield self.conn
            self.conn.execute("COMMIT")
        except sqlcipher3.Error as exc:
            self._rollback()
            raise translate_db_error(exc, self.path) from None
        except BaseException:
            self._rollback()
            raise
        finally:
            self._depth = 0
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """Set the connection up for one large write (an import), and back after.

        The connection is reopened (with the key already derived) with a lookaside large
        enough for the write's small allocations (``BULK_LOOKASIDE``) and a page cache
        sized for its working set (``BULK_CACHE_KIB``); afterwards it is reopened as
        every other connection is, which gives that memory back. Outside any transaction.
        """
        if self._depth:
            raise RuntimeError("bulk_writes() inside a transaction")
        self._reconnect(BULK_LOOKASIDE)
        try:
            self.conn.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
            yield
        finally:
            if self.conn is not None:
                self._reconnect(None)

    def _reconnect(self, lookaside: tuple[int, int] | None) -> None:
        conn = _connect(self.path, self._key, self.header, lookaside=lookaside)
        self.conn.close()
        self.conn = conn

    def _take_write_lock(self) -> None:
        """BEGIN IMMEDIATE. If another process is writing, say who and wait (see BusyWaiter)."""
        if self._try_write_lock(0):
            return
        writer = store_writer(self.path)
        if self.busy_waiter is not None:
            self.busy_waiter(writer, self._try_write_lock)
        elif not self._try_write_lock(busy_timeout_seconds()):
            raise store_busy(self.path, writer)

    def _try_write_lock(self, seconds: float) -> bool:
        """BEGIN IMMEDIATE, waiting up to ``seconds`` for another writer; False if busy."""
        sqlcipher3 = _sqlcipher()
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")
            self.conn.execute("BEGIN IMMEDIATE")
            return True
        except sqlcipher3.Error as exc:
            if _is_busy(exc):
                return False
            raise translate_db_error(exc, self.path) from None
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds() * 1000)}")

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except Exception:
            pass

    def _check_not_replaced(self) -> None:
        """Refuse to write to a file that a passphrase change has since replaced."""
        try:
            current = os.stat(self.path).st_ino
        except FileNotFoundError:
            current = None
        if current != self._inode:
            raise StoreBusy(
                "the store file was replaced while this command waited (a passphrase change "
                "or a restore); run the command again"
            )

    # -- queries ---------------------------------------------------------------------
    def query(self, sql: str, params: tuple | dict = ()) -> list[Any]:
        try:
            return self.conn.execute(sql, params).fetchall()
        except _sqlcipher().Error as exc:
            raise translate_db_error(exc, self.path) from None

    def table_exists(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)))

    def schema_version(self) -> int:
        return _schema_version(self.conn)

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        rows = self.query("SELECT value FROM settings WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_setting(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            store_settings.put(conn, key, value)

    # -- maintenance -----------------------------------------------------------------
    def info(self) -> StoreInfo:
        counts = {key: self._count(table) for key, table in RECORD_TABLES if self.table_exists(table)}
        kdf = self.header.kdf
        return StoreInfo(
            path=str(self.path),
            size_bytes=os.stat(self.path).st_size,
            format_version=self.header.format_version,
            schema_version=self.schema_version(),
            latest_schema_version=migrations_module.latest_version(),
            sqlcipher_version=sqlcipher_version(),
            cipher={
                "cipher": "AES-256-CBC",
                "hmac": str(self.query("PRAGMA cipher_hmac_algorithm")[0][0]),
                "page_size": str(self.query("PRAGMA cipher_page_size")[0][0]),
                "key": "raw 256-bit key from Argon2id (SQLCipher's own PBKDF2 is not used)",
            },
            kdf={
                "algorithm": "argon2id",
                "memory_kib": kdf.memory_kib,
                "time_cost": kdf.time_cost,
                "parallelism": kdf.parallelism,
            },
            created_at=self.get_setting("created_at"),
            record_counts=counts,
        )

    def _count(self, table: str) -> int:
        if table == "audit_log":
            # Append-only and numbered from 1 without gaps (`audit verify` checks both), so
            # the last sequence number is the count: instant, where count(*) reads every
            # page of the largest table (seconds on a store of millions of entries).
            from tracekit import audit

            return audit.entry_count(self.conn)
        return int(self.query(f"SELECT count(*) FROM {table}")[0][0])

    def check(self) -> CheckReport:
        """SQLCipher's page HMAC check, SQLite's integrity and foreign-key checks, extras."""
        report = CheckReport()
        sqlcipher3 = _sqlcipher()
        report.checks.append("file size (whole pages)")
        report.problems.extend(_truncation_found(os.stat(self.path).st_size))
        try:
            report.checks.append("page authentication (cipher_integrity_check)")
            for (message,) in self.conn.execute("PRAGMA cipher_integrity_check").fetchall():
                report.problems.append(str(message))
            report.checks.append("database structure (integrity_check)")
            try:
                rows = self.conn.execute("PRAGMA integrity_check").fetchall()
                report.problems.extend(str(r[0]) for r in rows if r[0] != "ok")
            except sqlcipher3.DatabaseError as exc:
                report.problems.append(f"integrity check could not finish: {exc}")
            report.checks.append("references (foreign_key_check)")
            try:
                for row in self.conn.execute("PRAGMA foreign_key_check").fetchall():
                    report.problems.append(f"broken reference in table {row[0]} (row {row[1]}) to {row[2]}")
            except sqlcipher3.DatabaseError as exc:
                report.problems.append(f"reference check could not finish: {exc}")
        except sqlcipher3.DatabaseError as exc:
            report.problems.append(f"check could not finish: {exc}")
        if report.ok:
            for name, check in EXTRA_CHECKS:
                report.checks.append(name)
                report.problems.extend(check(self))
        return report

    def _export_copy(self, conn: Any, dest: Path, key: bytearray, header: StoreHeader) -> None:
        """Write a complete encrypted copy to ``dest`` (a new empty 0600 file) and fsync it.

        Runs in a deferred transaction on ``conn``: a consistent read snapshot of the
        store that takes a write lock only on the copy.
        """
        sqlcipher3 = _sqlcipher()
        files.create_private_file(dest)
        attach_key = f"x'{key.hex()}{header.to_bytes().hex()}'"
        try:
            conn.execute(f'ATTACH DATABASE ? AS tk_copy KEY "{attach_key}"', (str(dest),))
            try:
                conn.execute("BEGIN")
                try:
                    conn.execute("SELECT sqlcipher_export('tk_copy')")
                    conn.execute("COMMIT")
                except BaseException:
                    try:
                        conn.execute("ROLLBACK")
                    except Exception:
                        pass
                    raise
            finally:
                conn.execute("DETACH DATABASE tk_copy")
            with open(dest, "rb+") as handle:
                os.fsync(handle.fileno())
        except sqlcipher3.Error as exc:
            raise translate_db_error(exc, dest) from None
        except OSError as exc:
            raise WriteFailed(f"cannot write {dest}: {files.describe_os_error(exc)}") from None

    def _verify_copy(self, dest: Path, key: bytearray, header: StoreHeader) -> None:
        copy_key = bytearray(key)
        conn = _connect(dest, copy_key, header)
        try:
            problems = [r[0] for r in conn.execute("PRAGMA cipher_integrity_check").fetchall()]
            problems += [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall() if r[0] != "ok"]
            if problems:
                raise IntegrityError(f"the copy at {dest} failed verification: {problems[0]}")
            for kind, table in RECORD_TABLES:
                if self.table_exists(table):
                    mine = self.query(f"SELECT count(*) FROM {table}")[0][0]
                    theirs = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                    if mine != theirs:
                        raise IntegrityError(f"the copy at {dest} has {theirs} {record_label(kind)}, expected {mine}")
            if _schema_version(conn) != self.schema_version():
                raise IntegrityError(f"the copy at {dest} has a different schema version")
        finally:
            conn.close()
            for i in range(len(copy_key)):
                copy_key[i] = 0

    def backup(self, dest: Path | str, *, now: datetime | None = None) -> Path:
        """A consistent encrypted copy (same passphrase), verified before it is in place.

        ``dest`` is a new file, or a directory (one that exists, or a path ending in
        "/") that receives a timestamped file, so a nightly backup into the same
        directory never meets the previous night's copy.
        """
        dest = backup_destination(dest, now=now)
        if dest.exists():
            raise StoreExists(f"{dest} already exists; tracekit never overwrites it")
        if not dest.parent.exists():
            raise WriteFailed(f"cannot write {dest}: the directory {dest.parent} does not exist")
        files.remove_leftovers(dest.parent)
        temp = files.temp_path_beside(dest, "backup")
        try:
            self._export_copy(self.conn, temp, self._key, self.header)
            self._verify_copy(temp, self._key, self.header)
            # The audit entry and the published file go together: take the write lock
            # first (a busy store fails here, leaving nothing at dest), then publish.
            with self.transaction() as conn:
                if self.table_exists("audit_log"):
                    from tracekit import audit

                    audit.append(conn, "store.backup", [], str(dest))
                files.publish(temp, dest)
        except BaseException:
            _remove_store_files(temp)
            raise
        return dest

    def change_passphrase(self, new_passphrase: bytes | bytearray, kdf: KdfParams | None = None) -> None:
        """Re-encrypt under a new passphrase, fresh salt and (re)calibrated parameters.

        The new file is written beside the store, verified, then renamed over it in one
        step while this connection holds the write lock: if anything fails or the process
        dies before the rename, the old passphrase still opens the untouched store.
        """
        new_header = StoreHeader.new(kdf or kdf_defaults.default_params())
        new_key = derive_key(new_passphrase, new_header.to_bytes(), new_header.kdf)
        temp = files.temp_path_beside(self.path, "passwd")
        sqlcipher3 = _sqlcipher()
        # This connection holds the write lock from before the copy until after the
        # rename, so no other writer commits to the old file in between (and writers that
        # were waiting re-check the inode, see _check_not_replaced). A second connection
        # makes the copy.
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlcipher3.Error as exc:
            raise translate_db_error(exc, self.path) from None
        exporter = _connect(self.path, bytearray(self._key), self.header)
        try:
            self._export_copy(exporter, temp, new_key, new_header)
            self._verify_copy(temp, new_key, new_header)
            _record_in_copy(temp, new_key, new_header, "store.passwd")
            try:
                os.replace(temp, self.path)
            except OSError as exc:  # e.g. EBUSY: the store is a bind-mounted file
                raise WriteFailed(
                    f"cannot replace {self.path} with its re-encrypted copy: {files.describe_os_error(exc)}; "
                    "the store is unchanged and the old passphrase still opens it"
                ) from None
            files.fsync_dir(self.path.parent)
        except BaseException:
            _remove_store_files(temp)
            for i in range(len(new_key)):
                new_key[i] = 0
            raise
        finally:
            exporter.close()
            self._rollback()
        # Reopen on the new file with the new key.
        self.conn.close()
        for i in range(len(self._key)):
            self._key[i] = 0
        self.conn = _connect(self.path, new_key, new_header)
        self._key = new_key
        self.header = new_header
        self._inode = os.stat(self.path).st_ino


def _record_in_copy(path: Path, key: bytearray, header: StoreHeader, action: str) -> None:
    """Write an audit entry into a copy before it replaces the store: the entry exists
    exactly when the change completed."""
    from tracekit import audit

    conn = _connect(path, bytearray(key), header)
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit_log'").fetchone():
            conn.execute("BEGIN IMMEDIATE")
            audit.append(conn, action, [])
            conn.execute("COMMIT")
    finally:
        conn.close()


def _remove_store_files(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        try:
            os.unlink(f"{path}{suffix}")
        except OSError:
            pass


def _schema_version(conn: Any) -> int:
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def _migrate(conn: Any, path: Path, migrations: list[Migration]) -> None:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'").fetchone()
    if not exists:
        raise NotAStore(f"{path}: the store has no schema record; it is damaged or not a tracekit store")
    current = _schema_version(conn)
    latest = len(migrations)
    if current > latest:
        raise StoreTooNew(
            f"{path} has schema version {current}, made by a newer tracekit (this one knows "
            f"up to {latest}); upgrade tracekit to open it"
        )
    if current == latest:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for step in migrations[current:]:
            step.apply(conn)
            conn.execute(
                "INSERT INTO schema_migrations(version, name, applied_at) VALUES(?, ?, ?)",
                (step.version, step.name, _utcnow()),
            )
        conn.execute("COMMIT")
    except BaseException:
        try:
            conn.execute("ROLLBACK")
        except Exception:
            pass
        raise


def _with_migrations(conn: Any, path: Path, migrations: list[Migration]) -> None:
    sqlcipher3 = _sqlcipher()
    try:
        _migrate(conn, path, migrations)
    except sqlcipher3.Error as exc:
        raise translate_db_error(exc, path) from None


def create_store(
    path: Path,
    passphrase: bytes | bytearray,
    *,
    kdf: KdfParams | None = None,
    migrations: list[Migration] | None = None,
) -> Store:
    """Create a new store at ``path`` (0600; parent directories 0700 when created).

    Never overwrites: an existing file is refused. ``migrations`` is for tests that need
    a store of an older schema.
    """
    path = Path(path).expanduser()
    if path.exists() or path.is_symlink():
        raise StoreExists(f"{path} already exists; tracekit never overwrites an existing file")
    sqlcipher_version()
    files.ensure_private_dir(path.parent)
    header = StoreHeader.new(kdf or kdf_defaults.default_params())
    key = derive_key(passphrase, header.to_bytes(), header.kdf)
    files.create_private_file(path)
    try:
        conn = _connect(path, key, header)
        try:
            conn.execute(BOOTSTRAP)
            _with_migrations(conn, path, list(MIGRATIONS if migrations is None else migrations))
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO settings(key, value) VALUES('created_at', ?)", (_utcnow(),))
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
    except BaseException:
        _remove_store_files(path)
        raise
    return Store(path, conn, header, key)


def open_store(
    path: Path,
    passphrase: bytes | bytearray | None = None,
    *,
    key: bytes | bytearray | None = None,
    migrate: bool = True,
) -> Store:
    """Open an existing store with its passphrase (or an already derived key).

    ``migrate=False`` opens without reading or upgrading the schema: only for
    ``store check``, which must be able to examine a store whose schema pages are damaged.
    """
    path = Path(path).expanduser()
    header = read_header(path)
    if key is not None:
        store_key = bytearray(key)
    elif passphrase is not None:
        store_key = derive_key(passphrase, header.to_bytes(), header.kdf)
    else:
        raise ValueError("open_store needs a passphrase or a key")
    conn = _connect(path, store_key, header, checking=not migrate)  # its first read rolls back a hot journal
    try:
        _remove_stale_journal(conn, path)
        files.remove_leftovers(path.parent)
        if migrate:
            _with_migrations(conn, path, list(MIGRATIONS))
    except BaseException:
        conn.close()
        raise
    return Store(path, conn, header, store_key)


def _remove_stale_journal(conn: Any, path: Path) -> None:
    """Remove a ``-journal`` that SQLite leaves in place because it is not "hot".

    A process killed in a write leaves a journal; SQLite rolls a hot one back (and removes
    it) at the next read, which :func:`_connect` makes. A journal killed before its header
    was written (empty, or zeroed) is not hot, so SQLite ignores it on reads and it stays
    forever. Once this connection holds the write lock no other process is writing, and a
    hot journal would have been rolled back when the lock was taken: a journal still there
    is stale. If another process is writing (the lock is taken) its journal is left alone.
    """
    journal = Path(f"{path}-journal")
    if not journal.exists():
        return
    sqlcipher3 = _sqlcipher()
    timeout_ms = int(busy_timeout_seconds() * 1000)
    try:
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("BEGIN IMMEDIATE")
    except sqlcipher3.Error:
        conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        return  # a live writer owns it
    try:
        removed = files.remove_if_ours(journal)
    finally:
        conn.execute("ROLLBACK")
        conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
    if removed:
        files.report_removed(path.parent, [journal.name])
