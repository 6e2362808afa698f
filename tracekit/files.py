"""Files named by the user: safe reading of input files, private atomic writing of output.

Reading (:func:`open_regular_file`, :func:`read_regular_file`): every file a user names
for tracekit to read (the store, import files, mapping and policy files, passphrase,
key and identity files) is opened without blocking and checked to be a regular file
before anything is read, so a FIFO, a directory or a device (``/dev/zero``) is refused
with a clear message instead of hanging or reading forever; whole-file reads stop at a
size limit.

Writing: everything tracekit writes outside the store goes through here.

* files are created with mode 0600 and ``O_EXCL`` (never following or reusing a file);
* content goes to a temporary file in the destination's directory, is fsynced, then
  moved into place with one rename, and the directory is fsynced: a crash or a full disk
  leaves either the old state or the complete new file, never half a file;
* a destination that already exists is not replaced unless the caller says so;
* every temporary file or directory has a name tracekit recognises, holding the creating
  process's id (:func:`temp_path_beside`, :func:`temp_dir_in`), so the leftovers of a run
  killed with SIGKILL are removed by the next run that writes there
  (:func:`remove_leftovers`).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from tracekit.errors import StoreExists, TracekitError, WriteFailed

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno == errno.EDQUOT:
        return "the disk quota is exceeded"
    if exc.errno == errno.EFBIG:
        return "the file is larger than allowed (file size limit)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    if exc.errno == errno.EBUSY:
        return "the file is busy (in use, or a mount point such as a bind-mounted file)"
    return exc.strerror or type(exc).__name__


# -------------------------------------------------------------------------- reading


def _kind_of_file(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular_file(
    path: str | os.PathLike[str],
    *,
    what: str,
    error: Callable[[str], TracekitError],
    not_found: Callable[[str], TracekitError] | None = None,
) -> BinaryIO:
    """Open a user-named file for reading (unbuffered, binary), refusing anything but a regular file.

    The file is opened with ``O_NONBLOCK`` (so a FIFO without a writer does not block),
    checked with ``fstat`` on the open descriptor (not on what the path names later),
    then switched back to blocking reads. ``what`` names the file in messages
    ("mapping file"); ``error`` makes the error to raise from a message, ``not_found``
    (default: ``error``) the one for a path that does not exist.
    """
    name = f"{what} {os.fspath(path)}"
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise (not_found or error)(f"{name} does not exist") from None
    except IsADirectoryError:
        raise error(f"{name} is a directory, not a file") from None
    except OSError as exc:
        raise error(f"cannot open {name}: {describe_os_error(exc)}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{name} is {_kind_of_file(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(
    path: str | os.PathLike[str],
    *,
    what: str,
    max_bytes: int,
    error: Callable[[str], TracekitError],
    not_found: Callable[[str], TracekitError] | None = None,
) -> bytes:
    """The whole content of a user-named regular file of at most ``max_bytes`` bytes.

    Reads at most ``max_bytes + 1`` bytes whatever the file claims its size is, so
    memory stays bounded even if the file grows while it is read.
    """
    with open_regular_file(path, what=what, error=error, not_found=not_found) as handle:
        chunks, size = [], 0
        try:
            while size <= max_bytes:
                chunk = handle.read(max_bytes + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            raise error(f"cannot read {what} {os.fspath(path)}: {describe_os_error(exc)}") from None
    if size > max_bytes:
        raise error(f"{what} {os.fspath(path)} is larger than the limit of {format_size(max_bytes)}")
    return b"".join(chunks)


def format_size(count: int) -> str:
    """A byte count for messages: ``1 MiB``, ``64 KiB``, ``100 bytes``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"


# -------------------------------------------------------------------------- writing


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) with mode 0700; leave existing ones alone."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue
        except OSError as exc:
            raise WriteFailed(f"cannot create directory {directory}: {describe_os_error(exc)}") from None
        os.chmod(directory, PRIVATE_DIR_MODE)  # mkdir's mode is filtered by the umask


def create_private_file(path: Path) -> None:
    """Create an empty 0600 file at ``path``; refuse if anything is already there."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE_MODE)
    except FileExistsError:
        raise StoreExists(f"{path} already exists; tracekit never overwrites it") from None
    except OSError as exc:
        raise WriteFailed(f"cannot create {path}: {describe_os_error(exc)}") from None
    os.close(fd)


def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems do not support fsync on directories
    finally:
        os.close(fd)


#: What each kind of temporary file is for: a file beside its destination
#: (``.NAME.PURPOSE-PID-TOKEN``) or a directory (``.tracekit-PURPOSE-PID-TOKEN``).
TEMP_FILE_PURPOSES = ("tmp", "backup", "passwd", "export")
TEMP_DIR_PURPOSES = ("open",)
_TOKEN_HEX_DIGITS = 12
_TEMP_FILE_NAME = re.compile(
    rf"\..+\.(?:{'|'.join(TEMP_FILE_PURPOSES)})-(?P<pid>[1-9][0-9]{{0,9}})-[0-9a-f]{{{_TOKEN_HEX_DIGITS}}}"
    # the journal SQLite keeps beside a store copy that was being written
    r"(?:-journal|-wal|-shm)?"
)
_TEMP_DIR_NAME = re.compile(
    rf"\.tracekit-(?:{'|'.join(TEMP_DIR_PURPOSES)})-(?P<pid>[1-9][0-9]{{0,9}})-[0-9a-f]{{8,{_TOKEN_HEX_DIGITS}}}"
)


def temp_path_beside(dest: Path, purpose: str = "tmp") -> Path:
    """A new temporary name in ``dest``'s directory: ``.NAME.PURPOSE-PID-TOKEN``."""
    assert purpose in TEMP_FILE_PURPOSES, purpose
    return dest.with_name(f".{dest.name}.{purpose}-{os.getpid()}-{secrets.token_hex(_TOKEN_HEX_DIGITS // 2)}")


def temp_dir_in(directory: Path, purpose: str) -> Path:
    """A new temporary directory name inside ``directory``: ``.tracekit-PURPOSE-PID-TOKEN``."""
    assert purpose in TEMP_DIR_PURPOSES, purpose
    return directory / f".tracekit-{purpose}-{os.getpid()}-{secrets.token_hex(_TOKEN_HEX_DIGITS // 2)}"


#: Told the names removed by :func:`remove_leftovers` (the CLI shows them on stderr); the
#: library itself prints nothing.
_leftover_reporter: Callable[[Path, list[str]], None] | None = None


def set_leftover_reporter(reporter: Callable[[Path, list[str]], None] | None) -> None:
    global _leftover_reporter
    _leftover_reporter = reporter


def _process_is_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False  # alive under another user (or not a pid at all): not ours to judge
    return False


def remove_if_ours(path: Path) -> bool:
    """Unlink ``path`` if it is a regular file owned by this user (never a link)."""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
            return False
        os.unlink(path)
    except OSError:
        return False
    return True


def _remove_dir_if_ours(path: Path) -> bool:
    """Remove the directory ``path`` and its contents if it is a real directory owned by
    this user; links inside are removed, never followed."""
    try:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            return False
        shutil.rmtree(path)
    except OSError:
        return False
    return True


def report_removed(directory: Path, names: list[str]) -> None:
    if names and _leftover_reporter is not None:
        _leftover_reporter(directory, names)


def remove_leftovers(directory: Path) -> list[str]:
    """Remove what killed tracekit runs left in ``directory``.

    A leftover has a tracekit temporary name (see :func:`temp_path_beside`,
    :func:`temp_dir_in`) holding the id of a process that no longer runs, and is a regular
    file (a real directory for a directory name) owned by this user. Symbolic links are
    never followed or removed; a name whose process still runs (or runs as another user)
    is left alone.

    Called by every command that opens a store (its directory) or writes into a directory
    (a backup, a bundle, an opened bundle, an atomic output). Returns the names removed and
    tells the reporter. Never fails: a directory that cannot be read, or a leftover that
    cannot be removed, is left as it is.
    """
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    removed = []
    for name in names:
        as_file = _TEMP_FILE_NAME.fullmatch(name)
        match = as_file or _TEMP_DIR_NAME.fullmatch(name)
        if match is None or not _process_is_gone(int(match["pid"])):
            continue
        if as_file:
            if not remove_if_ours(directory / name):
                continue
        elif not _remove_dir_if_ours(directory / name):
            continue
        removed.append(name)
    report_removed(directory, removed)
    return removed


def publish(temp: Path, dest: Path, *, overwrite: bool = False) -> None:
    """Move a finished, fsynced temporary file into place atomically."""
    try:
        if overwrite:
            os.replace(temp, dest)
        else:
            os.link(temp, dest)  # fails if dest exists: no check-then-rename race
            os.unlink(temp)
    except FileExistsError:
        _unlink_quietly(temp)
        raise StoreExists(f"{dest} already exists; tracekit never overwrites it") from None
    except OSError as exc:
        _unlink_quietly(temp)
        raise WriteFailed(f"cannot write {dest}: {describe_os_error(exc)}") from None
    fsync_dir(dest.parent)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


@contextmanager
def atomic_output(dest: Path, *, overwrite: bool = False) -> Iterator[BinaryIO]:
    """Write ``dest`` atomically with mode 0600: yields a binary file to write to.

    On any exception nothing is left at ``dest`` (or the old file stays) and the
    temporary file is removed.
    """
    dest = Path(dest)
    if not overwrite and dest.exists():
        raise StoreExists(f"{dest} already exists; tracekit never overwrites it")
    remove_leftovers(dest.parent)
    temp = temp_path_beside(dest)
    try:
        fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), PRIVATE_FILE_MODE)
    except OSError as exc:
        raise WriteFailed(f"cannot write {dest}: {describe_os_error(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        _unlink_quietly(temp)
        raise WriteFailed(f"cannot write {dest}: {describe_os_error(exc)}") from None
    except BaseException:
        _unlink_quietly(temp)
        raise
    publish(temp, dest, overwrite=overwrite)
