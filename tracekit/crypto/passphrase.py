"""Where the passphrase comes from, and how it is turned into bytes.

Sources, first match wins:

1. ``--passphrase-file PATH``: the file's contents. The file must be a regular file
   that no other user can read or write (no group or other permission bits), the fix
   being ``chmod 600 PATH``. One trailing newline (``\\n`` or ``\\r\\n``) is removed.
2. ``--passphrase-fd N``: everything read from descriptor N until end of file, minus one
   trailing newline. The descriptor is left open.
3. The environment variable ``TRACEKIT_PASSPHRASE``, meant for scripts, used exactly as
   set. Note that child processes inherit it.
4. A hidden prompt on the terminal, only if standard input is a terminal. Otherwise
   reading fails at once with :class:`PassphraseError` listing the sources: a script
   never hangs waiting for input nobody will type. A new passphrase is typed twice; if
   the two differ it is asked for again, up to three times.

The passphrase is returned as UTF-8 bytes of its NFC normal form, so the same passphrase
typed on systems that compose accented letters differently derives the same key.

Memory hygiene: the result is a ``bytearray`` so that callers can zero it with
:func:`wipe` once the key is derived. This limits, but cannot prevent, copies in memory:
Python strings are immutable and cannot be reliably wiped, and a passphrase that comes
from the prompt or the environment, or that is not plain ASCII, passes through one.
A passphrase never appears in an exception message.
"""

from __future__ import annotations

import getpass
import hmac
import os
import shlex
import stat
import sys
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tracekit.errors import PassphraseError
from tracekit.files import open_regular_file

ENVIRONMENT_VARIABLE = "TRACEKIT_PASSPHRASE"
#: The shortest new passphrase accepted, in characters (Unicode code points).
MIN_NEW_PASSPHRASE_LENGTH = 12
#: How many times a new passphrase typed at the terminal is asked for when the two entries differ.
CONFIRM_TRIES = 3
#: The most bytes read from a passphrase file or descriptor; more is refused.
MAX_PASSPHRASE_BYTES = 4096

_NO_SOURCE = (
    "no passphrase given: use --passphrase-file PATH, --passphrase-fd N or the "
    f"environment variable {ENVIRONMENT_VARIABLE}, or run tracekit in a terminal to be asked"
)


@dataclass(frozen=True)
class PassphraseSource:
    """The passphrase sources named on the command line (both optional)."""

    file: Path | None = None
    fd: int | None = None


def read_passphrase(
    source: PassphraseSource,
    *,
    prompt: str = "Passphrase",
    confirm: bool = False,
    environ: Mapping[str, str] | None = None,
    isatty: Callable[[], bool] | None = None,
    getpass_fn: Callable[[str], str] | None = None,
) -> bytearray:
    """Read the passphrase from the first available source (see the module docstring).

    ``prompt`` is shown at the terminal (followed by ": "); with ``confirm`` the
    passphrase is asked for twice and must match (other sources are not confirmed).
    ``environ``, ``isatty`` and ``getpass_fn`` default to ``os.environ``,
    ``sys.stdin.isatty`` and ``getpass.getpass``.

    Raises :class:`PassphraseError` when there is no source, a source is unusable, the
    passphrase is empty or not UTF-8, or the confirmation does not match.
    """
    chosen = _choose(source, environ, isatty, prompt, confirm, getpass_fn or getpass.getpass)
    if chosen is None:
        raise PassphraseError(_NO_SOURCE)
    description, read = chosen
    passphrase = read()
    if not passphrase:
        raise PassphraseError(f"the passphrase from the {description} is empty")
    return passphrase


def describe_source(
    source: PassphraseSource,
    *,
    environ: Mapping[str, str] | None = None,
    isatty: Callable[[], bool] | None = None,
) -> str:
    """Where :func:`read_passphrase` would take the passphrase from, for messages.

    For example "passphrase file /path/to/file", "file descriptor 3", "environment
    variable TRACEKIT_PASSPHRASE", "terminal prompt" or "no passphrase source".
    """
    chosen = _choose(source, environ, isatty, "", False, getpass.getpass)
    return "no passphrase source" if chosen is None else chosen[0]


def check_new_passphrase(passphrase: bytes | bytearray) -> None:
    """Refuse a new passphrase shorter than MIN_NEW_PASSPHRASE_LENGTH characters.

    Characters are counted as Unicode code points of the UTF-8 ``passphrase`` (so "é"
    counts once although it is two bytes), without decoding it into a string.
    """
    characters = sum(1 for byte in passphrase if byte & 0xC0 != 0x80)
    if characters < MIN_NEW_PASSPHRASE_LENGTH:
        raise PassphraseError(f"a new passphrase must be at least {MIN_NEW_PASSPHRASE_LENGTH} characters long")


def wipe(buffer: bytearray) -> None:
    """Overwrite ``buffer`` with zeros in place (for passphrases and keys after use)."""
    buffer[:] = bytes(len(buffer))


# -- choosing the source ---------------------------------------------------------------


def _choose(
    source: PassphraseSource,
    environ: Mapping[str, str] | None,
    isatty: Callable[[], bool] | None,
    prompt: str,
    confirm: bool,
    getpass_fn: Callable[[str], str],
) -> tuple[str, Callable[[], bytearray]] | None:
    """The first available source: its description and how to read it; None if none."""
    if source.file is not None:
        path = Path(source.file)
        file_description = f"passphrase file {path}"
        return file_description, lambda: _from_bytes(_read_file(path), file_description)
    if source.fd is not None:
        fd = source.fd
        fd_description = f"file descriptor {fd}"
        return fd_description, lambda: _from_bytes(_read_descriptor(fd), fd_description)
    environ = os.environ if environ is None else environ
    if ENVIRONMENT_VARIABLE in environ:
        value = environ[ENVIRONMENT_VARIABLE]
        env_description = f"environment variable {ENVIRONMENT_VARIABLE}"
        return env_description, lambda: _from_text(value, env_description)
    if (isatty or _stdin_is_terminal)():
        return "terminal prompt", lambda: _prompt(prompt, confirm, getpass_fn)
    return None


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # closed or detached standard input
        return False


# -- reading each source ---------------------------------------------------------------


def _read_file(path: Path) -> bytearray:
    """The contents of the passphrase file, which must be private and regular."""
    with open_regular_file(path, what="passphrase file", error=PassphraseError) as handle:
        fd = handle.fileno()
        mode = os.fstat(fd).st_mode  # of the file opened, not of what the path names now
        if mode & 0o077:
            raise PassphraseError(
                f"passphrase file {path} is accessible to other users "
                f"(mode {stat.S_IMODE(mode):04o}); make it private with: "
                f"chmod 600 {shlex.quote(str(path))}"
            )
        return _read_until_end(fd, f"passphrase file {path}")


def _read_descriptor(fd: int) -> bytearray:
    """Everything readable from descriptor ``fd`` until end of file; ``fd`` stays open."""
    if fd < 0:
        raise PassphraseError(f"--passphrase-fd {fd} is not a file descriptor number")
    try:
        os.fstat(fd)
    except (OSError, OverflowError):  # OverflowError: a number no descriptor can have
        raise PassphraseError(f"--passphrase-fd {fd}: descriptor {fd} is not open") from None
    return _read_until_end(fd, f"file descriptor {fd}")


def _read_until_end(fd: int, description: str) -> bytearray:
    """Read ``fd`` to its end into one private buffer, minus one trailing newline."""
    buffer = bytearray(MAX_PASSPHRASE_BYTES + 1)
    view = memoryview(buffer)
    length = 0
    try:
        while length < len(buffer):
            try:
                count = os.readv(fd, [view[length:]])
            except OSError as error:
                raise PassphraseError(f"cannot read the passphrase from the {description}: {error.strerror}") from None
            if count == 0:
                break
            length += count
        if length > MAX_PASSPHRASE_BYTES:
            raise PassphraseError(
                f"the {description} holds more than {MAX_PASSPHRASE_BYTES} bytes; it does not look like a passphrase"
            )
        if length >= 1 and buffer[length - 1] == ord("\n"):
            length -= 2 if length >= 2 and buffer[length - 2] == ord("\r") else 1
        return bytearray(view[:length])
    finally:
        view.release()
        wipe(buffer)


def _prompt(prompt: str, confirm: bool, getpass_fn: Callable[[str], str]) -> bytearray:
    """Ask at the terminal; a new passphrase (``confirm``) is typed twice, and when the
    two differ the tracer is told and asked again, up to CONFIRM_TRIES times."""
    for tries_left in range(CONFIRM_TRIES - 1, -1, -1):
        first = _ask(getpass_fn, f"{prompt}: ")
        if not confirm or not first:
            return first  # an empty passphrase is refused by the caller without confirming
        second = _ask(getpass_fn, f"{prompt} (again): ")
        matches = hmac.compare_digest(first, second)
        wipe(second)
        if matches:
            return first
        wipe(first)
        if tries_left:
            more = f"{tries_left} more {'try' if tries_left == 1 else 'tries'}"
            sys.stderr.write(f"The two passphrases do not match; type it again ({more}).\n")
    raise PassphraseError(
        f"the two passphrases entered did not match ({CONFIRM_TRIES} tries); nothing was created or changed"
    )


def _ask(getpass_fn: Callable[[str], str], text: str) -> bytearray:
    try:
        answer = getpass_fn(text)
    except EOFError:
        raise PassphraseError("no passphrase was entered at the terminal prompt") from None
    return _from_text(answer, "terminal prompt")


# -- normalising -----------------------------------------------------------------------


def _from_bytes(raw: bytearray, description: str) -> bytearray:
    """``raw`` as NFC UTF-8; ``raw`` is wiped unless it is returned."""
    if raw.isascii():
        return raw  # ASCII is already in NFC: no string copy needed
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None  # raised outside the handler so the error does not carry the bytes
    wipe(raw)
    if text is None:
        raise PassphraseError(f"the passphrase from the {description} is not valid UTF-8")
    return _from_text(text, description)


def _from_text(text: str, description: str) -> bytearray:
    """``text`` in NFC, encoded as UTF-8."""
    try:
        return bytearray(unicodedata.normalize("NFC", text), "utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. undecodable bytes in os.environ
        pass  # raised outside the handler so the error does not carry the text
    raise PassphraseError(f"the passphrase from the {description} is not valid UTF-8")
