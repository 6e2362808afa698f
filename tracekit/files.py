"""Private, atomic file writing: everything tracekit writes outside the store goes here.

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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from tracekit.errors import StoreExists, WriteFailed

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
    return exc.strerror or type(exc).__name__


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
