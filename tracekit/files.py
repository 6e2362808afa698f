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
* a destination that already exists is not replaced unless the caller says so.
"""

from __future__ import annotations

import errno
import os
import secrets
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


def temp_path_beside(dest: Path, purpose: str = "tmp") -> Path:
    return dest.with_name(f".{dest.name}.{purpose}-{secrets.token_hex(6)}")


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
