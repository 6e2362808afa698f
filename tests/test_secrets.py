"""Secrets stay where they belong: not in argv, not inherited, not kept, not logged."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.conftest import PASSPHRASE


def test_passphrase_is_not_in_any_process_arguments(store, store_path, tmp_path):
    """While tracekit runs (reading the passphrase from a file), its /proc cmdline holds no secret."""
    store.close()
    secret_file = tmp_path / "pass.txt"
    secret_file.write_text(PASSPHRASE + "\n")
    os.chmod(secret_file, 0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEKIT_")}
    env["TRACEKIT_BUSY_TIMEOUT"] = "30"
    # Hold the write lock so the command is still running while we look at it.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import time
            from tracekit.store import open_store
            s = open_store({str(store_path)!r}, bytearray({PASSPHRASE!r}.encode()))
            with s.transaction():
                print("LOCKED", flush=True)
                time.sleep(3)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "LOCKED"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracekit",
            "--store",
            str(store_path),
            "--passphrase-file",
            str(secret_file),
            "store",
            "backup",
            str(tmp_path / "copy.store"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        cmdline = environ = b""
        deadline = time.monotonic() + 2
        while not cmdline and time.monotonic() < deadline:  # visible once exec has completed
            cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes()
            environ = Path(f"/proc/{child.pid}/environ").read_bytes()
            time.sleep(0.02)
    finally:
        assert child.wait(timeout=60) == 0
        holder.wait(timeout=30)
    assert PASSPHRASE.encode() not in cmdline and PASSPHRASE.encode() not in environ
    assert b"--passphrase-file" in cmdline  # it was the process we meant to look at


def test_passphrase_from_environment_is_not_passed_on(store, store_path):
    """After reading TRACEKIT_PASSPHRASE, tracekit removes it from its own environment,
    so nothing it starts can inherit it."""
    store.close()
    code = textwrap.dedent(f"""
        import os, sys
        os.environ["TRACEKIT_STORE"] = {str(store_path)!r}
        os.environ["TRACEKIT_PASSPHRASE"] = {PASSPHRASE!r}
        from tracekit.cli.context import open_current_store, set_global_settings, Settings
        set_global_settings(Settings())
        with open_current_store():
            pass
        print("STILL SET" if "TRACEKIT_PASSPHRASE" in os.environ else "REMOVED")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "REMOVED", result.stderr


def test_passphrase_and_key_buffers_are_zeroed(store, store_path, monkeypatch):
    from tracekit.cli import context
    from tracekit.crypto import passphrase as passphrase_module

    store.close()
    captured = []

    def reading(*args, **kwargs):
        buffer = bytearray(PASSPHRASE.encode())
        captured.append(buffer)
        return buffer

    monkeypatch.setattr(passphrase_module, "read_passphrase", reading)
    monkeypatch.setenv("TRACEKIT_STORE", str(store_path))
    context.set_global_settings(context.Settings())
    opened = context.open_current_store()
    key = opened.key
    assert any(key)
    opened.close()
    assert captured and not any(captured[0]), "the passphrase buffer was not wiped after deriving the key"
    assert not any(key), "the key buffer was not wiped at close"


def test_commands_write_no_files_besides_the_store(cli_with_store, store_path, tmp_path):
    """No logs, caches or history: after a run of commands only the store exists under HOME."""
    home = Path(os.environ["HOME"])
    before = {p for p in home.rglob("*")}
    for args in (("store", "info"), ("store", "check"), ("audit", "show"), ("keys", "show")):
        assert cli_with_store(*args).exit_code == 0
    created = {p for p in home.rglob("*")} - before
    assert created == set(), created
    assert sorted(os.listdir(store_path.parent)) == [store_path.name]
