"""CLI: init, unlock/lock, store info/check/passwd/backup, global options, errors."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import PASSPHRASE
from tracekit.errors import ExitCode


def run_module(*args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 60):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEKIT_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tracekit", *args],
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


# -- the frame ------------------------------------------------------------------------


def test_version_via_python_m():
    result = run_module("--version")
    assert result.returncode == 0
    from tracekit import __version__

    assert result.stdout.strip() == f"tracekit {__version__}"


def test_version_does_not_load_sqlcipher_or_argon2():
    code = (
        "import sys\n"
        "sys.argv = ['tracekit', '--version']\n"
        "from tracekit.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('sqlcipher3', 'argon2', '_argon2_cffi_bindings', 'phonenumbers') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_help_lists_commands_and_exit_codes(cli):
    result = cli("--help")
    assert result.exit_code == 0
    for name in ("init", "unlock", "lock", "store", "demo"):
        assert name in result.stdout
    assert "Exit codes:" in result.stdout and "5 wrong-passphrase" in result.stdout


def test_shell_completion_is_offered(cli):
    assert "--install-completion" in cli("--help").stdout


def test_no_arguments_shows_help(cli):
    result = cli()
    assert "Usage" in result.stdout


def test_unknown_option_is_a_usage_error(cli):
    result = cli("store", "info", "--frobnicate")
    assert result.exit_code == ExitCode.USAGE


# -- init -----------------------------------------------------------------------------


def test_init_creates_private_store(cli, store_path):
    result = cli("init")
    assert result.exit_code == 0, result.stderr
    assert f"Created store {store_path}" in result.stdout
    assert stat.S_IMODE(os.stat(store_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store_path.parent).st_mode) == 0o700


def test_init_refuses_existing_file(cli, store_path):
    store_path.parent.mkdir(parents=True)
    store_path.write_bytes(b"do not touch")
    result = cli("init")
    assert result.exit_code == ExitCode.STORE_EXISTS
    assert "never overwrites" in result.stderr
    assert store_path.read_bytes() == b"do not touch"


def test_init_refuses_short_passphrase(cli, store_path):
    result = cli("init", env={"TRACEKIT_PASSPHRASE": "short"})
    assert result.exit_code == ExitCode.PASSPHRASE
    assert "12" in result.stderr
    assert not store_path.exists()


def test_store_option_after_command_and_before(cli, tmp_path):
    after = tmp_path / "after.store"
    before = tmp_path / "before.store"
    assert cli("init", "--store", str(after)).exit_code == 0
    assert cli("--store", str(before), "init").exit_code == 0
    assert after.exists() and before.exists()


def test_default_store_location_is_user_data_dir(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tracekit.cli import app

    result = CliRunner().invoke(app, ["init"], env={"TRACEKIT_PASSPHRASE": PASSPHRASE})
    assert result.exit_code == 0, result.stderr
    expected = Path(os.environ["XDG_DATA_HOME"]) / "tracekit" / "tracekit.store"
    assert expected.exists()


def test_interactive_init_asks_twice(cli, store_path, monkeypatch):
    answers = iter([PASSPHRASE, PASSPHRASE])
    monkeypatch.setattr("tracekit.crypto.passphrase._stdin_is_terminal", lambda: True)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    result = cli("init", env={"TRACEKIT_PASSPHRASE": None})
    assert result.exit_code == 0, result.stderr
    assert store_path.exists()


def test_no_tty_and_no_source_is_an_error_not_a_hang(cli_with_store):
    result = cli_with_store("store", "info", env={"TRACEKIT_PASSPHRASE": None})
    assert result.exit_code == ExitCode.PASSPHRASE
    assert "TRACEKIT_PASSPHRASE" in result.stderr or "passphrase" in result.stderr


def test_no_tty_subprocess_fails_fast(store, store_path):
    store.close()
    result = run_module("--store", str(store_path), "store", "info", timeout=30)
    assert result.returncode == ExitCode.PASSPHRASE
    assert "Traceback" not in result.stderr


def test_passphrase_file_with_loose_permissions_is_refused(cli_with_store, tmp_path):
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE + "\n")
    os.chmod(secret, 0o644)
    result = cli_with_store("store", "info", "--passphrase-file", str(secret), env={"TRACEKIT_PASSPHRASE": None})
    assert result.exit_code == ExitCode.PASSPHRASE
    assert "chmod 600" in result.stderr
    os.chmod(secret, 0o600)
    result = cli_with_store("store", "info", "--passphrase-file", str(secret), env={"TRACEKIT_PASSPHRASE": None})
    assert result.exit_code == 0, result.stderr


def test_passphrase_fd(store, store_path):
    store.close()
    read_end, write_end = os.pipe()
    os.write(write_end, (PASSPHRASE + "\n").encode())
    os.close(write_end)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "tracekit",
                "--store",
                str(store_path),
                "--passphrase-fd",
                str(read_end),
                "--json",
                "store",
                "info",
            ],
            pass_fds=(read_end,),
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("TRACEKIT_")},
        )
    finally:
        os.close(read_end)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["path"] == str(store_path)


def test_passphrase_is_never_a_command_line_value(cli):
    result = cli("init", "--passphrase", "secret value here")
    assert result.exit_code == ExitCode.USAGE


# -- opening errors -----------------------------------------------------------------


def test_wrong_passphrase_exit_code_message_and_untouched_file(cli_with_store, store_path):
    before = (store_path.read_bytes(), os.stat(store_path).st_mtime_ns, sorted(os.listdir(store_path.parent)))
    result = cli_with_store("store", "info", env={"TRACEKIT_PASSPHRASE": "definitely wrong passphrase"})
    assert result.exit_code == ExitCode.WRONG_PASSPHRASE
    assert "wrong passphrase or damaged store" in result.stderr
    assert "Traceback" not in result.stderr and "hmac" not in result.stderr.lower()
    assert (store_path.read_bytes(), os.stat(store_path).st_mtime_ns, sorted(os.listdir(store_path.parent))) == before


def test_wrong_passphrase_prints_no_sqlcipher_noise(store, store_path):
    store.close()
    result = run_module("--store", str(store_path), "store", "info", env={"TRACEKIT_PASSPHRASE": "definitely wrong"})
    assert result.returncode == ExitCode.WRONG_PASSPHRASE
    assert result.stderr.strip() == "error: wrong passphrase or damaged store"


def test_missing_store(cli, store_path):
    result = cli("store", "info")
    assert result.exit_code == ExitCode.STORE_NOT_FOUND
    assert "no store at" in result.stderr and "tracekit init" in result.stderr
    assert not store_path.exists() and not store_path.parent.exists()


def test_not_a_store(cli, tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("shopping list")
    result = cli("store", "info", "--store", str(other))
    assert result.exit_code == ExitCode.NOT_A_STORE
    assert other.read_text() == "shopping list"


def test_store_from_newer_tracekit(cli_with_store, store_path):
    data = bytearray(store_path.read_bytes())
    data[2] += 1
    store_path.write_bytes(bytes(data))
    result = cli_with_store("store", "info")
    assert result.exit_code == ExitCode.STORE_TOO_NEW
    assert "newer tracekit" in result.stderr


def test_json_errors_are_machine_readable(cli):
    result = cli("--json", "store", "info")
    assert result.exit_code == ExitCode.STORE_NOT_FOUND
    payload = json.loads(result.stderr)
    assert payload["error"]["code"] == "store-not-found"
    assert payload["error"]["exit_code"] == ExitCode.STORE_NOT_FOUND


def test_unexpected_errors_show_no_message_or_locals(cli_with_store, monkeypatch):
    secret = "SECRET-VALUE-IN-EXCEPTION"

    def boom(self):
        local_secret = secret  # noqa: F841 - a local that must not be shown
        raise RuntimeError(f"something with {secret}")

    monkeypatch.setattr("tracekit.store.core.Store.info", boom)
    result = cli_with_store("store", "info")
    assert result.exit_code == ExitCode.INTERNAL
    assert "internal error" in result.stderr and "RuntimeError" in result.stderr
    assert secret not in result.stderr and secret not in result.stdout


# -- store commands -------------------------------------------------------------------


def test_store_info_human_and_json(cli_with_store, store_path):
    human = cli_with_store("store", "info")
    assert human.exit_code == 0
    assert str(store_path) in human.stdout and "Argon2id" in human.stdout
    data = json.loads(cli_with_store("store", "info", "--json").stdout)
    assert data["path"] == str(store_path)
    assert data["kdf"]["algorithm"] == "argon2id"
    assert data["format_version"] == 1
    assert data["sqlcipher_version"].startswith("4.")


def test_store_check_ok_and_damaged(cli_with_store, store_path):
    from tracekit.store import open_store

    ok = cli_with_store("store", "check")
    assert ok.exit_code == 0 and "OK" in ok.stdout
    with open_store(store_path, bytearray(PASSPHRASE.encode())) as store, store.transaction() as conn:
        for i in range(100):
            conn.execute("INSERT INTO settings VALUES(?, ?)", (f"k{i}", "v" * 300))
    data = bytearray(store_path.read_bytes())
    data[2 * 4096 + 500] ^= 0xFF  # page 3
    store_path.write_bytes(bytes(data))
    damaged = cli_with_store("store", "check")
    assert damaged.exit_code == ExitCode.INTEGRITY
    assert "page 3" in damaged.stderr


def test_store_backup_cli(cli_with_store, tmp_path):
    dest = tmp_path / "b.store"
    result = cli_with_store("store", "backup", str(dest))
    assert result.exit_code == 0, result.stderr
    assert "verified" in result.stdout
    again = cli_with_store("store", "backup", str(dest))
    assert again.exit_code == ExitCode.STORE_EXISTS


def test_store_backup_cli_into_a_directory_twice_keeps_both(cli_with_store, tmp_path):
    """Issue 14 item 16: the second nightly run into the same directory failed."""
    nightly = f"{tmp_path / 'nightly'}/"
    first = cli_with_store("store", "backup", nightly, "--json")
    assert first.exit_code == 0, first.stderr
    second = cli_with_store("store", "backup", nightly, "--json")
    assert second.exit_code == 0, second.stderr
    written = sorted(p.name for p in (tmp_path / "nightly").iterdir())
    assert len(written) == 2
    assert all(re.fullmatch(r"tracekit-backup-\d{8}T\d{6}Z(-2)?\.store", name) for name in written)
    assert {Path(json.loads(r.stdout)["backup"]).name for r in (first, second)} == set(written)


def test_store_passwd_cli(cli_with_store, tmp_path, store_path):
    new_file = tmp_path / "new.txt"
    new_file.write_text("another long passphrase\n")
    os.chmod(new_file, 0o600)
    result = cli_with_store("store", "passwd", "--new-passphrase-file", str(new_file))
    assert result.exit_code == 0, result.stderr
    assert cli_with_store("store", "info").exit_code == ExitCode.WRONG_PASSPHRASE
    assert cli_with_store("store", "info", env={"TRACEKIT_PASSPHRASE": "another long passphrase"}).exit_code == 0


def test_store_passwd_does_not_take_new_passphrase_from_environment(cli_with_store):
    result = cli_with_store("store", "passwd")
    assert result.exit_code == ExitCode.PASSPHRASE


# -- unlock / lock ----------------------------------------------------------------------


def test_unlock_then_commands_need_no_passphrase_then_lock(cli_with_store, session_keyring):
    assert cli_with_store("unlock", "--for", "5m").exit_code == 0
    try:
        without = cli_with_store("store", "info", env={"TRACEKIT_PASSPHRASE": None})
        assert without.exit_code == 0, without.stderr
    finally:
        locked = cli_with_store("lock")
    assert locked.exit_code == 0 and "Locked" in locked.stdout
    after = cli_with_store("store", "info", env={"TRACEKIT_PASSPHRASE": None})
    assert after.exit_code == ExitCode.PASSPHRASE


def test_unlock_without_keyring_says_so(cli_with_store, monkeypatch):
    from tracekit.crypto import keyring

    def no_own_session_keyring():
        raise keyring.KeyringUnavailable("this login has no session keyring of its own")

    monkeypatch.setattr(keyring, "_session_keyring", no_own_session_keyring)
    result = cli_with_store("unlock")
    assert result.exit_code == ExitCode.KEYRING
    assert "session keyring" in result.stderr


def test_unlock_rejects_bad_duration(cli_with_store):
    result = cli_with_store("unlock", "--for", "forever")
    assert result.exit_code == ExitCode.VALIDATION


def test_output_cut_short_by_the_reader_is_not_an_error(store, store_path):
    """`tracekit ... | head`: the closed pipe ends the command quietly, no internal error."""
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEKIT_")}
    env.update({"TRACEKIT_STORE": str(store_path), "TRACEKIT_PASSPHRASE": PASSPHRASE})
    child = subprocess.Popen(
        [sys.executable, "-m", "tracekit", "audit", "show"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    child.stdout.close()  # the reader is gone before anything is written
    stderr = child.stderr.read().decode()
    import signal

    assert child.wait(timeout=60) in (0, -signal.SIGPIPE), stderr  # quiet, like other Unix tools
    assert stderr == ""
