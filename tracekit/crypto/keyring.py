"""Cache a derived store key in the Linux kernel session keyring, for a limited time.

Only the 32-byte key derived from the passphrase is cached, never the passphrase. It is
stored as a ``user`` key described ``tracekit:<store_id>`` in the session keyring of the
login session, with:

* possessor-only permissions (``0x3f000000``): only processes that possess the session
  keyring (those of this login session) can see, read or change it; other sessions of
  the same user cannot (root and same-user debuggers remain able to, as always);
* a timeout, after which the kernel treats the key as gone.

The kernel is reached through raw system calls (``ctypes``), never through the
``keyctl`` program, whose command line would carry the key. Only Linux on x86_64 and
aarch64 is supported; elsewhere every operation reports the keyring as unavailable.

The process must have a session keyring of its own. Without one (no ``pam_keyinit`` in
the login's PAM stack, some containers) the kernel would quietly create a fresh session
keyring for this process alone when the key is added, and the key would vanish when
tracekit exits. :func:`cache_key` refuses with :class:`KeyringUnavailable` instead.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
import re
import sys

from tracekit.durations import MAX_DURATION_SECONDS
from tracekit.errors import KeyringUnavailable

#: Length in bytes of a store key; nothing else is cached.
KEY_LENGTH = 32

#: System call numbers (add_key, keyctl) of the supported 64-bit Linux architectures.
_SYSCALL_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": {"add_key": 248, "keyctl": 250},
    "aarch64": {"add_key": 217, "keyctl": 219},
}

# linux/keyctl.h
KEY_SPEC_SESSION_KEYRING = -3
KEY_SPEC_USER_SESSION_KEYRING = -5
KEYCTL_GET_KEYRING_ID = 0
KEYCTL_SETPERM = 5
KEYCTL_SEARCH = 10
KEYCTL_READ = 11
KEYCTL_SET_TIMEOUT = 15
KEYCTL_INVALIDATE = 21

#: Possessor may view, read, write, search, link and set attributes; user, group and
#: others nothing (KEY_POS_VIEW|KEY_POS_READ|KEY_POS_WRITE|KEY_POS_SEARCH|KEY_POS_LINK|
#: KEY_POS_SETATTR).
POSSESSOR_ONLY_PERMISSIONS = 0x3F000000

# asm-generic/errno.h (shared by x86_64 and aarch64): the key is not there (any more).
_ENOKEY = 126
_EKEYEXPIRED = 127
_EKEYREVOKED = 128
_KEY_GONE = frozenset({_ENOKEY, _EKEYEXPIRED, _EKEYREVOKED})

_KEY_TYPE = b"user"
_STORE_ID = re.compile(r"[0-9a-f]{1,128}")

_EXPLANATIONS = {
    errno.ENOSYS: "the kernel has no key retention support, or a seccomp filter blocks it",
    errno.EPERM: "keyring system calls are not permitted here (containers often block them)",
    errno.EACCES: "the session keyring does not allow this",
    errno.EDQUOT: "the keyring quota of this user is full (see /proc/sys/kernel/keys/)",
}
_HINT = "tracekit will ask for the passphrase each time instead"

#: What may be passed to a system call: integers (as C longs), byte strings (as
#: ``char *``), None (as NULL) and ctypes objects (buffers as pointers to their memory).
_Argument = int | bytes | None | ctypes.Array


def cache_key(store_id: str, key: bytes | bytearray, seconds: int) -> None:
    """Cache ``key`` for the store ``store_id`` for ``seconds`` seconds.

    An existing entry for the store is destroyed first, so the new entry always gets
    fresh permissions and timeout. Raises :class:`KeyringUnavailable` when the keyring
    cannot be used (unsupported platform, kernel refusal, no session keyring of this
    login), naming the kernel's reason. Raises ValueError for arguments no caller should
    pass: a malformed store id, a key that is not 32 bytes, or a timeout outside
    1 s to 24 h (a timeout of 0 would mean "forever" to the kernel).
    """
    description = _description(store_id)
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_LENGTH:
        raise ValueError(f"a store key is {KEY_LENGTH} bytes")
    if type(seconds) is not int or not 0 < seconds <= MAX_DURATION_SECONDS:
        raise ValueError(f"the cache timeout must be 1 to {MAX_DURATION_SECONDS} whole seconds")

    try:
        keyring = _session_keyring()
    except OSError as error:
        raise _refused("look up the session keyring", error) from None
    try:
        _remove_all(keyring, description)
    except OSError as error:
        raise _refused("replace the cached key", error) from None

    payload = _payload_buffer(key)
    try:
        key_id = _syscall("add_key", _KEY_TYPE, description, payload, len(key), keyring)
    except OSError as error:
        raise _refused("store the key", error) from None
    finally:
        del payload  # release the export of a bytearray key at once

    try:
        _keyctl(KEYCTL_SETPERM, key_id, POSSESSOR_ONLY_PERMISSIONS)
        _keyctl(KEYCTL_SET_TIMEOUT, key_id, seconds)
    except BaseException as error:
        # Never leave a key behind with default permissions or without a timeout.
        try:
            _keyctl(KEYCTL_INVALIDATE, key_id)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise _refused("restrict the cached key", error) from None
        raise


def cached_key(store_id: str) -> bytearray | None:
    """The cached key of store ``store_id``, or None if absent, expired or unavailable.

    Never raises for keyring problems: callers fall back to asking for the passphrase.
    The result is a bytearray so that the caller can zero it after use.
    """
    description = _description(store_id)
    try:
        key_id = _search(_session_keyring(), description)
        if key_id is None:
            return None
        return _read(key_id)
    except (OSError, KeyringUnavailable):
        return None


def forget_key(store_id: str) -> bool:
    """Destroy the cached key of store ``store_id``; True if there was one.

    Returns False when the keyring is unavailable (nothing can have been cached). Raises
    :class:`KeyringUnavailable` only if a cached key was found but could not be destroyed.
    """
    description = _description(store_id)
    try:
        keyring = _session_keyring()
    except (OSError, KeyringUnavailable):
        return False
    try:
        return _remove_all(keyring, description)
    except OSError as error:
        raise _refused("remove the cached key", error) from None


def keyring_available() -> bool:
    """Whether this process can cache keys in a session keyring of its own."""
    try:
        ensure_keyring_available()
    except KeyringUnavailable:
        return False
    return True


def ensure_keyring_available() -> None:
    """Raise :class:`KeyringUnavailable`, saying why, unless keys can be cached here.

    For checking before work that would be wasted (such as asking for the passphrase)
    when the reason matters to the user.
    """
    try:
        _session_keyring()
    except OSError as error:
        raise _refused("look up the session keyring", error) from None


# -- kernel operations ---------------------------------------------------------------


def _description(store_id: str) -> bytes:
    if not isinstance(store_id, str) or not _STORE_ID.fullmatch(store_id):
        raise ValueError("a store id is 1 to 128 lowercase hexadecimal digits")
    return f"tracekit:{store_id}".encode("ascii")


def _session_keyring() -> int:
    """The serial number of this process's own session keyring.

    Raises KeyringUnavailable if the process has none: its session keyring is then the
    per-user default one, and adding to "the session keyring" would make the kernel
    create a new one that dies with this process.
    """
    session = _keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
    user_session = _keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_SESSION_KEYRING, 0)
    if session == user_session:
        raise KeyringUnavailable(
            "this login has no session keyring of its own, so a cached key would not outlive this command",
            hint="log in through PAM with pam_keyinit, or start a shell with `keyctl session`",
        )
    return session


def _search(keyring: int, description: bytes) -> int | None:
    """The serial of a live ``user`` key with this description in ``keyring``, or None."""
    try:
        return _keyctl(KEYCTL_SEARCH, keyring, _KEY_TYPE, description, 0)
    except OSError as error:
        if error.errno in _KEY_GONE:
            return None
        raise


def _remove_all(keyring: int, description: bytes) -> bool:
    """Invalidate every key with this description reachable from ``keyring``.

    True if one was invalidated. Invalidated and expired keys are at once invisible to
    searches, so the loop ends.
    """
    removed = False
    while (key_id := _search(keyring, description)) is not None:
        try:
            _keyctl(KEYCTL_INVALIDATE, key_id)
        except OSError as error:
            if error.errno not in _KEY_GONE:  # else it expired since the search: fine
                raise
        else:
            removed = True
    return removed


def _read(key_id: int) -> bytearray | None:
    """The payload of key ``key_id`` if it is a store key; the read buffer is zeroed."""
    length = _keyctl(KEYCTL_READ, key_id, None, 0)
    if length != KEY_LENGTH:
        return None
    buffer = ctypes.create_string_buffer(length)
    try:
        if _keyctl(KEYCTL_READ, key_id, buffer, length) != length:
            return None  # the payload changed between the two calls
        return bytearray(buffer)
    finally:
        ctypes.memset(buffer, 0, length)


def _payload_buffer(key: bytes | bytearray) -> ctypes.Array | bytes:
    """``key`` as a system call argument that points at its memory, without a copy."""
    if isinstance(key, bytearray):
        return (ctypes.c_char * len(key)).from_buffer(key)
    return key


def _keyctl(operation: int, *args: _Argument) -> int:
    return _syscall("keyctl", operation, *args)


def _syscall(name: str, *args: _Argument) -> int:
    """Make the system call ``name``; raise OSError with the kernel's errno on failure."""
    number = _syscall_numbers()[name]
    result = _libc_syscall()(ctypes.c_long(number), *map(_c_argument, args))
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(result)


def _c_argument(value: _Argument) -> object:
    if isinstance(value, int):
        return ctypes.c_long(value)  # variadic: full-width longs, as syscall() reads them
    return value  # bytes, None and ctypes objects are passed as they are


def _syscall_numbers() -> dict[str, int]:
    machine = platform.machine()
    is_64_bit = ctypes.sizeof(ctypes.c_void_p) == 8  # not a 32-bit process on a 64-bit kernel
    if sys.platform != "linux" or machine not in _SYSCALL_NUMBERS or not is_64_bit:
        raise KeyringUnavailable(
            "the kernel keyring is supported only on 64-bit Linux on x86_64 and aarch64 "
            f"(this is {sys.platform} on {machine or 'an unknown machine'})",
            hint=_HINT,
        )
    return _SYSCALL_NUMBERS[machine]


@functools.cache
def _libc_syscall():
    function = ctypes.CDLL(None, use_errno=True).syscall
    function.restype = ctypes.c_long
    return function


def _refused(action: str, error: OSError) -> KeyringUnavailable:
    code = error.errno or 0
    name = errno.errorcode.get(code, f"errno {code}")
    explanation = _EXPLANATIONS.get(code, os.strerror(code))
    return KeyringUnavailable(f"the kernel keyring refused to {action}: {name} ({explanation})", hint=_HINT)
