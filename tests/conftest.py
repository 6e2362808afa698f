"""Shared fixtures: an isolated environment, cheap Argon2, fresh stores, a CLI runner.

Argon2 is made cheap here by replacing ``tracekit.crypto.kdf.default_params`` in-process
(1 MiB, t=1, p=1). The shipped defaults are untouched (tests/test_kdf.py checks them);
stores made here keep their cheap parameters in their header, so child processes that
open them are fast too.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracekit.crypto.kdf import KdfParams

CHEAP_KDF = KdfParams(memory_log2=10, time_cost=1, parallelism=1)
PASSPHRASE = "test passphrase: plum tangerine"


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the real home, the real store or a passphrase from the caller's shell.

    Each test also gets its own temporary directory (TMPDIR and tempfile.tempdir), so
    plaintext checks can scan everything tracekit could have put there.
    """
    home = tmp_path_factory.mktemp("home")
    private_tmp = tmp_path_factory.mktemp("tmpdir")
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.setattr("tempfile.tempdir", str(private_tmp))
    for name in list(os.environ):
        if name.startswith("TRACEKIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr("tracekit.crypto.kdf.default_params", lambda: CHEAP_KDF)
    yield


@pytest.fixture
def passphrase() -> bytearray:
    return bytearray(PASSPHRASE.encode())


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "stores" / "case.store"


@pytest.fixture
def store(store_path: Path, passphrase: bytearray):
    from tracekit.store import create_store

    with create_store(store_path, passphrase, kdf=CHEAP_KDF) as created:
        yield created


class TracekitRunner:
    """Runs the CLI in-process against one store, with the passphrase from the environment."""

    def __init__(self, store_path: Path) -> None:
        self.store_path = store_path
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None):
        from tracekit.cli import app

        full_env = {"TRACEKIT_STORE": str(self.store_path), "TRACEKIT_PASSPHRASE": PASSPHRASE}
        full_env.update(env or {})
        return self.runner.invoke(app, list(args), input=input, env=full_env, catch_exceptions=False)


@pytest.fixture
def cli(store_path: Path) -> TracekitRunner:
    return TracekitRunner(store_path)


@pytest.fixture
def cli_with_store(store, store_path: Path) -> TracekitRunner:
    """A runner whose store exists already (closed again so commands can open it)."""
    store.close()
    return TracekitRunner(store_path)


KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_DESCRIBE = 6


def _describe_key(key_id: int) -> str:
    from tracekit.crypto import keyring

    length = keyring._keyctl(KEYCTL_DESCRIBE, key_id, None, 0)
    buffer = ctypes.create_string_buffer(length)
    keyring._keyctl(KEYCTL_DESCRIBE, key_id, buffer, length)
    return buffer.value.decode()


@pytest.fixture(scope="module")
def session_keyring() -> Iterator[None]:
    """Join a fresh session keyring (what `keyctl session` does) for real-keyring tests.

    Machines without a per-login session keyring (containers, CI) then still run the
    real-keyring tests; afterwards the per-user default is rejoined so later tests see
    the machine as it was.
    """
    from tracekit.crypto import keyring
    from tracekit.errors import KeyringUnavailable

    try:
        had_own_session_keyring = keyring.keyring_available()
        keyring._keyctl(KEYCTL_JOIN_SESSION_KEYRING, None)
    except KeyringUnavailable as error:
        pytest.skip(f"no kernel keyring on this platform: {error}")
    except OSError as error:
        name = errno.errorcode.get(error.errno or 0, str(error.errno))
        pytest.skip(f"the kernel keyring is unavailable here: {name} ({error.strerror})")
    yield
    if not had_own_session_keyring:
        default = keyring._keyctl(keyring.KEYCTL_GET_KEYRING_ID, keyring.KEY_SPEC_USER_SESSION_KEYRING, 0)
        name = _describe_key(default).split(";", 4)[4].encode()
        assert keyring._keyctl(KEYCTL_JOIN_SESSION_KEYRING, name) == default
        assert not keyring.keyring_available()
