"""Reading a bundle's tar stream strictly: only what tracekit writes, every size checked first.

A bundle's tar is attacker-controlled until its signature has been checked, and the
signed manifest comes last. Python's :mod:`tarfile` reads far more than tracekit writes
(pax and GNU extended headers, which it reads whole into memory; GNU sparse maps, which
expand a few bytes into gigabytes; links, devices, directories), so the reader does not
use it. It accepts exactly the subset :mod:`tarfile` produces for tracekit's members
(see docs/bundle-format.md):

* POSIX ustar headers (magic ``ustar\\0``, version ``00``) with a valid checksum;
* regular files only (type ``0`` or NUL), named in ASCII, sizes in octal;
* the end-of-archive marker (zero blocks) and at most :data:`MAX_TRAILING_BYTES` of zero
  padding after it.

Anything else is a :class:`~tracekit.errors.BundleInvalid` naming what was found. Each
member's data is handed out in blocks and never read beyond its declared size, and the
caller decides, from the name and the declared size, whether to read it at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from tracekit.errors import BundleInvalid

BLOCK = 512
#: tarfile pads an archive to a multiple of 20 blocks; allow that and a little more.
MAX_TRAILING_BYTES = 64 * 1024
READ_CHUNK = 1 << 20

_REGULAR = (b"0", b"\0")
_TYPE_NAMES = {
    b"1": "a hard link",
    b"2": "a symbolic link",
    b"3": "a character device",
    b"4": "a block device",
    b"5": "a directory",
    b"6": "a FIFO",
    b"7": "a contiguous file",
    b"x": "a pax extended header",
    b"g": "a pax global header",
    b"L": "a GNU long name",
    b"K": "a GNU long link name",
    b"S": "a GNU sparse file",
}


@dataclass(frozen=True)
class Member:
    """One regular file in the archive: its name and the size its header declares."""

    name: str
    size: int


class TarStream:
    """Iterate the members of a tar read sequentially from ``stream``.

    Use :meth:`members`; for each member yielded, either call :meth:`read_data` (which
    yields its data in blocks) or let the iteration skip it.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._pending = 0  # bytes of the current member (and its padding) not yet consumed

    def _read_exact(self, size: int, what: str) -> bytes:
        data = self._stream.read(size)
        if len(data) != size:
            raise BundleInvalid(f"the bundle's archive ends in the middle of {what} (truncated)")
        return data

    def members(self) -> Iterator[Member]:
        while True:
            self._skip_pending()
            header = self._read_exact(BLOCK, "a header")
            if header == bytes(BLOCK):
                self._check_end()
                return
            member = _parse_header(header)
            self._pending = _padded(member.size)
            yield member

    def read_data(self, member: Member) -> Iterator[bytes]:
        """The member's data in blocks of at most 1 MiB, never more than its declared size."""
        remaining = member.size
        while remaining:
            block = self._read_exact(min(READ_CHUNK, remaining), f"{member.name!r}")
            remaining -= len(block)
            self._pending -= len(block)
            yield block

    def _skip_pending(self) -> None:
        while self._pending:
            step = min(self._pending, READ_CHUNK)
            self._read_exact(step, "a member's data")
            self._pending -= step

    def _check_end(self) -> None:
        """After the first zero block: only zeros may follow, and not many."""
        rest = self._stream.read(MAX_TRAILING_BYTES + 1)
        if len(rest) > MAX_TRAILING_BYTES or rest.strip(b"\0"):
            raise BundleInvalid("the bundle holds data after the end of its archive; it was altered")


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _octal(field: bytes, what: str) -> int:
    text = field.rstrip(b"\0 ").lstrip(b" ")
    if field[:1] in (b"\x80", b"\xff"):
        raise BundleInvalid(f"a header's {what} uses the GNU binary encoding, which tracekit never writes")
    if not text or any(c not in b"01234567" for c in text):
        raise BundleInvalid(f"a header's {what} is not an octal number; the archive is damaged")
    return int(text, 8)


def _parse_header(header: bytes) -> Member:
    stored_checksum = _octal(header[148:156], "checksum")
    if sum(header[:148]) + 8 * 0x20 + sum(header[156:]) != stored_checksum:
        raise BundleInvalid("a header of the bundle's archive fails its checksum; the archive is damaged")
    if header[257:263] != b"ustar\0" or header[263:265] != b"00":
        raise BundleInvalid("the bundle's archive is not in the POSIX ustar format tracekit writes")
    try:
        name = header[0:100].split(b"\0", 1)[0].decode("ascii")
        prefix = header[345:500].split(b"\0", 1)[0].decode("ascii")
    except UnicodeDecodeError:
        raise BundleInvalid("a member of the bundle has a name that is not plain ASCII") from None
    if prefix:
        name = f"{prefix}/{name}"
    typeflag = header[156:157]
    if typeflag not in _REGULAR:
        kind = _TYPE_NAMES.get(typeflag, f"an entry of unknown type {typeflag!r}")
        raise BundleInvalid(f"the bundle holds {kind} ({name!r}); a bundle holds regular files only")
    return Member(name, _octal(header[124:136], "size"))
