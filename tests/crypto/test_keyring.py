"""Tests of tracekit.crypto.keyring.

The tests of the real keyring first join a fresh anonymous session keyring for this
test process (what ``keyctl session`` does). That keeps them away from the developer's
own session keyring, and gives the process a session keyring of its own where it has
none (containers, logins without pam_keyinit); in that case the per-user default one is
joined again afterwards. Where the kernel refuses, these tests skip, naming the errno.
The tests of the unavailable paths fake the system calls and always run.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import time
from collections.abc import Callable, Iterator

import pytest

from tracekit.crypto import keyring
from tracekit.errors import ExitCode, KeyringUnavailable

KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_DESCRIBE = 6


# -- helpers ---------------------------------------------------------------------------


def new_store_id() -> str:
    return secrets.token_hex(16)


def find(store_id: str) -> int | None:
    """The serial of the cached key of ``store_id``, straight from the kernel."""
    return keyring._search(keyring._session_keyring(), f"tracekit:{store_id}".encode())


def describe(key_id: int) -> str:
    """KEYCTL_DESCRIBE: "type;uid;gid;perm;description"."""
    length = keyring._keyctl(KEYCTL_DESCRIBE, key_id, None, 0)
    buffer = ctypes.create_string_buffer(length)
    keyring._keyctl(KEYCTL_DESCRIBE, key_id, buffer, length)
    return buffer.value.decode()


@pytest.fixture
def store_id(session_keyring: None) -> Iterator[str]:
    """A fresh store id in the real session keyring; its cached key is removed after."""
    identifier = new_store_id()
    yield identifier
    keyring.forget_key(identifier)


def fake_syscall(monkeypatch: pytest.MonkeyPatch, behaviour: Callable[..., int]) -> list[tuple[object, ...]]:
    """Replace the system calls with ``behaviour(name, *args)``; returns the calls made."""
    calls: list[tuple[object, ...]] = []

    def syscall(name: str, *args: object) -> int:
        calls.append((name, *args))
        return behaviour(name, *args)

    monkeypatch.setattr(keyring, "_syscall", syscall)
    return calls


def failing_with(code: int) -> Callable[..., int]:
    def fail(name: str, *args: object) -> int:
        raise OSError(code, os.strerror(code))

    return fail


# -- the real kernel keyring -----------------------------------------------------------


def test_keyring_is_available(session_keyring: None) -> None:
    assert keyring.keyring_available()
    keyring.ensure_keyring_available()


@pytest.mark.parametrize("key_type", [bytes, bytearray])
def test_round_trip(store_id: str, key_type: type) -> None:
    key = key_type(secrets.token_bytes(32))
    keyring.cache_key(store_id, key, 60)
    cached = keyring.cached_key(store_id)
    assert isinstance(cached, bytearray)
    assert cached == key
    assert cached is not key


def test_absent_key_is_none(store_id: str) -> None:
    assert keyring.cached_key(store_id) is None


def test_stores_do_not_see_each_other_keys(store_id: str) -> None:
    keyring.cache_key(store_id, secrets.token_bytes(32), 60)
    assert keyring.cached_key(new_store_id()) is None


def test_key_is_private_to_possessors(store_id: str) -> None:
    keyring.cache_key(store_id, secrets.token_bytes(32), 60)
    key_id = find(store_id)
    assert key_id is not None
    key_type, uid, _gid, permissions, description = describe(key_id).split(";")
    assert key_type == "user"
    assert int(uid) == os.geteuid()
    assert permissions == "3f000000"
    assert description == f"tracekit:{store_id}"


def test_replacing_destroys_the_old_key(store_id: str) -> None:
    first, second = secrets.token_bytes(32), secrets.token_bytes(32)
    keyring.cache_key(store_id, first, 60)
    old_id = find(store_id)
    keyring.cache_key(store_id, second, 60)
    assert keyring.cached_key(store_id) == second
    new_id = find(store_id)
    assert new_id is not None and new_id != old_id
    assert describe(new_id).split(";")[3] == "3f000000"
    with pytest.raises(OSError):  # invalidated, not updated in place
        describe(old_id)  # type: ignore[arg-type]


def test_forget(store_id: str) -> None:
    keyring.cache_key(store_id, secrets.token_bytes(32), 60)
    assert keyring.forget_key(store_id) is True
    assert keyring.cached_key(store_id) is None
    assert find(store_id) is None
    assert keyring.forget_key(store_id) is False


@pytest.mark.slow
def test_key_expires_after_its_timeout(store_id: str) -> None:
    key = secrets.token_bytes(32)
    keyring.cache_key(store_id, key, 1)
    assert keyring.cached_key(store_id) == key
    time.sleep(2.1)
    assert keyring.cached_key(store_id) is None


def test_read_buffer_is_exactly_sized_and_zeroed(store_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    buffers: list[ctypes.Array[ctypes.c_char]] = []
    real_create = ctypes.create_string_buffer

    def create_and_keep(size: int) -> ctypes.Array[ctypes.c_char]:
        buffers.append(real_create(size))
        return buffers[-1]

    monkeypatch.setattr(keyring.ctypes, "create_string_buffer", create_and_keep)
    key = secrets.token_bytes(32)
    keyring.cache_key(store_id, key, 60)
    assert keyring.cached_key(store_id) == key
    assert [buffer.raw for buffer in buffers] == [bytes(32)]


def test_entry_that_is_not_a_store_key_is_ignored(store_id: str) -> None:
    description = f"tracekit:{store_id}".encode()
    keyring._syscall("add_key", b"user", description, b"short", 5, keyring._session_keyring())
    assert keyring.cached_key(store_id) is None
    assert keyring.forget_key(store_id) is True


def test_no_key_is_left_behind_if_it_cannot_be_restricted(store_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    real_syscall = keyring._syscall

    def refuse_timeout(name: str, *args: object) -> int:
        if name == "keyctl" and args[0] == keyring.KEYCTL_SET_TIMEOUT:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        return real_syscall(name, *args)  # type: ignore[arg-type]

    calls = fake_syscall(monkeypatch, refuse_timeout)
    with pytest.raises(KeyringUnavailable) as caught:
        keyring.cache_key(store_id, secrets.token_bytes(32), 60)
    assert "EACCES" in str(caught.value)
    assert any(call[0] == "add_key" for call in calls)
    monkeypatch.setattr(keyring, "_syscall", real_syscall)
    assert find(store_id) is None


# -- unavailable keyring (faked, always run) -------------------------------------------


@pytest.mark.parametrize(("code", "name"), [(errno.EPERM, "EPERM"), (errno.ENOSYS, "ENOSYS")])
def test_kernel_refusal(monkeypatch: pytest.MonkeyPatch, code: int, name: str) -> None:
    fake_syscall(monkeypatch, failing_with(code))
    store = new_store_id()
    with pytest.raises(KeyringUnavailable) as caught:
        keyring.cache_key(store, secrets.token_bytes(32), 60)
    assert caught.value.exit_code == ExitCode.KEYRING
    assert f"the kernel keyring refused to look up the session keyring: {name} (" in str(caught.value)
    assert caught.value.hint
    assert keyring.cached_key(store) is None
    assert keyring.forget_key(store) is False
    assert keyring.keyring_available() is False
    with pytest.raises(KeyringUnavailable, match=name):
        keyring.ensure_keyring_available()


def test_refusal_to_store_names_the_errno(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse_add(name: str, *args: object) -> int:
        if name == "add_key":
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
        if args[0] == keyring.KEYCTL_GET_KEYRING_ID:
            return 100 if args[1] == keyring.KEY_SPEC_SESSION_KEYRING else 200
        raise OSError(keyring._ENOKEY, "Required key not available")  # search: nothing cached

    fake_syscall(monkeypatch, refuse_add)
    with pytest.raises(KeyringUnavailable) as caught:
        keyring.cache_key(new_store_id(), secrets.token_bytes(32), 60)
    assert str(caught.value).startswith("the kernel keyring refused to store the key: EDQUOT (")


def test_without_a_session_keyring_of_its_own_nothing_is_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def shared_session(name: str, *args: object) -> int:
        if name == "keyctl" and args[0] == keyring.KEYCTL_GET_KEYRING_ID:
            return 42  # the session keyring is the per-user default one
        raise AssertionError(f"unexpected system call {name}{args}")

    calls = fake_syscall(monkeypatch, shared_session)
    with pytest.raises(KeyringUnavailable) as caught:
        keyring.cache_key(new_store_id(), secrets.token_bytes(32), 60)
    assert "no session keyring of its own" in str(caught.value)
    assert all(call[0] != "add_key" for call in calls)
    assert keyring.keyring_available() is False
    with pytest.raises(KeyringUnavailable, match="no session keyring of its own"):
        keyring.ensure_keyring_available()
    assert keyring.cached_key(new_store_id()) is None
    assert keyring.forget_key(new_store_id()) is False


@pytest.mark.parametrize(("platform_name", "machine"), [("linux", "riscv64"), ("linux", "i686"), ("darwin", "x86_64")])
def test_unsupported_platform(monkeypatch: pytest.MonkeyPatch, platform_name: str, machine: str) -> None:
    monkeypatch.setattr(keyring.sys, "platform", platform_name)
    monkeypatch.setattr(keyring.platform, "machine", lambda: machine)

    def no_libc() -> None:
        raise AssertionError("no system call may be attempted on an unsupported platform")

    monkeypatch.setattr(keyring, "_libc_syscall", no_libc)
    with pytest.raises(KeyringUnavailable) as caught:
        keyring.cache_key(new_store_id(), secrets.token_bytes(32), 60)
    assert f"this is {platform_name} on {machine}" in str(caught.value)
    assert keyring.cached_key(new_store_id()) is None
    assert keyring.forget_key(new_store_id()) is False
    assert keyring.keyring_available() is False
    with pytest.raises(KeyringUnavailable, match=machine):
        keyring.ensure_keyring_available()


# -- arguments (checked before any system call) ----------------------------------------


@pytest.fixture
def no_syscalls(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(name: str, *args: object) -> int:
        raise AssertionError(f"system call {name} made with invalid arguments")

    monkeypatch.setattr(keyring, "_syscall", forbidden)


@pytest.mark.parametrize("bad_id", ["", "ABCD", "xyz", "ab;cd", "ab\ncd", "a" * 129])
def test_malformed_store_id_is_a_programming_error(no_syscalls: None, bad_id: str) -> None:
    with pytest.raises(ValueError):
        keyring.cache_key(bad_id, bytes(32), 60)
    with pytest.raises(ValueError):
        keyring.cached_key(bad_id)
    with pytest.raises(ValueError):
        keyring.forget_key(bad_id)


@pytest.mark.parametrize("length", [0, 16, 31, 33, 64])
def test_key_must_be_32_bytes(no_syscalls: None, length: int) -> None:
    with pytest.raises(ValueError):
        keyring.cache_key(new_store_id(), bytes(length), 60)


@pytest.mark.parametrize("seconds", [0, -1, 86401, 1.5, True])
def test_timeout_must_be_1_second_to_24_hours(no_syscalls: None, seconds: object) -> None:
    with pytest.raises(ValueError):
        keyring.cache_key(new_store_id(), bytes(32), seconds)  # type: ignore[arg-type]
