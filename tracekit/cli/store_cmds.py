"""Commands for the store itself: init, unlock, lock, and ``store info|check|passwd|backup``."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from tracekit.cli.context import (
    command,
    emit_json,
    err,
    note,
    open_current_store,
    out,
    passphrase_source,
    settings,
    store_path,
)
from tracekit.cli.safe_text import safe_markup, visible

store_app = typer.Typer(help="Inspect, check, back up and re-key the store.", no_args_is_help=True)


def _zero(buffer: bytearray) -> None:
    for i in range(len(buffer)):
        buffer[i] = 0


@command
def init() -> None:
    """Create a new encrypted store (asks for a new passphrase twice)."""
    from tracekit.crypto.kdf import default_params
    from tracekit.crypto.passphrase import check_new_passphrase, read_passphrase
    from tracekit.errors import StoreExists
    from tracekit.store import create_store

    path = store_path()
    if path.exists() or path.is_symlink():
        raise StoreExists(f"{path} already exists; tracekit never overwrites an existing file")
    passphrase = read_passphrase(passphrase_source(), prompt=f"New passphrase for {path}", confirm=True)
    try:
        check_new_passphrase(passphrase)
        note("Calibrating key derivation for this machine (about a second)...")
        params = default_params()
        started = time.perf_counter()
        with create_store(path, passphrase, kdf=params) as store:
            elapsed = time.perf_counter() - started
            header = store.header
    finally:
        _zero(passphrase)
    if settings().json:
        emit_json({"path": str(path), "kdf": header.kdf.describe(), "created": True})
        return
    out().print(f"Created store {safe_markup(path)}")
    note(f"Key derivation: {header.kdf.describe()} ({elapsed:.2f} s to create and unlock here).")
    note("Keep the passphrase safe: without it the store cannot be opened by anyone, including you.")


@command
def unlock(
    duration: Annotated[
        str,
        typer.Option(
            "--for", help="How long to keep the store unlocked, e.g. 15m, 1h (at most 24h).", metavar="DURATION"
        ),
    ] = "15m",
) -> None:
    """Keep the derived key (never the passphrase) in the kernel session keyring for a while."""
    from tracekit.crypto import keyring
    from tracekit.durations import parse_duration

    seconds = parse_duration(duration)
    keyring.ensure_keyring_available()  # says why not (no session keyring, refused, ...)
    with open_current_store() as store:
        keyring.cache_key(store.store_id, store.key, seconds)
        path = store.path
    if settings().json:
        emit_json({"path": str(path), "unlocked_for_seconds": seconds})
        return
    out().print(
        f"Unlocked {safe_markup(path)} for {duration} (this login session only). 'tracekit lock' ends it sooner."
    )


@command
def lock() -> None:
    """Forget the cached key now (the next command asks for the passphrase)."""
    from tracekit.crypto import keyring
    from tracekit.store import read_header

    path = store_path()
    header = read_header(path)
    removed = keyring.forget_key(header.store_id)
    if settings().json:
        emit_json({"path": str(path), "was_unlocked": removed})
        return
    shown = safe_markup(path)
    out().print(f"Locked {shown}." if removed else f"{shown} was not unlocked; nothing to do.")


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@store_app.command("info")
@command
def store_info() -> None:
    """Path, size, format and schema version, cipher and KDF parameters, record counts."""
    from rich.table import Table

    from tracekit.store.core import record_label

    with open_current_store() as store:
        info = store.info()
    if settings().json:
        emit_json(asdict(info))
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("path", safe_markup(info.path))
    table.add_row("size", _human_size(info.size_bytes))
    table.add_row("created", info.created_at or "unknown")
    table.add_row("file format", str(info.format_version))
    table.add_row("schema version", f"{info.schema_version} (latest {info.latest_schema_version})")
    table.add_row("SQLCipher", info.sqlcipher_version)
    table.add_row("cipher", f"{info.cipher['cipher']}, {info.cipher['hmac']}, {info.cipher['page_size']}-byte pages")
    kdf = info.kdf
    table.add_row(
        "key derivation",
        f"Argon2id, {int(kdf['memory_kib']) // 1024} MiB, t={kdf['time_cost']}, p={kdf['parallelism']}",
    )
    for key, count in info.record_counts.items():
        table.add_row(record_label(key), f"{count:,}")
    out().print(table)


@store_app.command("check")
@command
def store_check() -> None:
    """Verify every page's authentication code, the database structure and the audit chain."""
    from tracekit.errors import IntegrityError

    with open_current_store(for_check=True) as store:
        report = store.check()
        path = store.path
    if settings().json:
        emit_json({"path": str(path), "ok": report.ok, "checks": report.checks, "problems": report.problems})
    elif report.ok:
        out().print(f"{safe_markup(path)}: OK ({len(report.checks)} checks: {'; '.join(report.checks)})")
    if not report.ok:
        if not settings().json:
            for problem in report.problems:
                err().print(f"  - {visible(problem)}", markup=False, highlight=False)
        raise IntegrityError(f"{path} failed its check: {len(report.problems)} problem(s) found (listed above)")


@store_app.command("passwd")
@command
def store_passwd(
    new_passphrase_file: Annotated[
        Path | None,
        typer.Option(help="Read the new passphrase from this file (0600) instead of prompting."),
    ] = None,
    new_passphrase_fd: Annotated[
        int | None, typer.Option(help="Read the new passphrase from this file descriptor.")
    ] = None,
) -> None:
    """Change the passphrase. If it fails half-way, the old passphrase still opens the store."""
    from tracekit.crypto import keyring
    from tracekit.crypto.passphrase import PassphraseSource, check_new_passphrase, read_passphrase
    from tracekit.errors import TracekitError

    with open_current_store() as store:
        old_id = store.store_id
        new = read_passphrase(
            PassphraseSource(file=new_passphrase_file, fd=new_passphrase_fd),
            prompt="New passphrase",
            confirm=True,
            environ={},  # TRACEKIT_PASSPHRASE holds the old passphrase, never the new one
        )
        try:
            check_new_passphrase(new)
            note("Re-encrypting the store under the new passphrase...")
            store.change_passphrase(new)
        finally:
            _zero(new)
        path = store.path
    try:
        keyring.forget_key(old_id)  # the old key no longer opens anything; best effort
    except TracekitError:
        pass
    if settings().json:
        emit_json({"path": str(path), "changed": True})
        return
    out().print(
        f"Passphrase changed for {safe_markup(path)}. Backups made before now still open with the old passphrase."
    )


@store_app.command("backup")
@command
def store_backup(
    dest: Annotated[
        str,
        typer.Argument(
            help="Where to write the copy: a new file, or a directory (an existing one, or a path ending "
            "in '/') that gets a new timestamped file, tracekit-backup-YYYYMMDDTHHMMSSZ.store.",
            show_default=False,
        ),
    ],
) -> None:
    """Write a consistent encrypted copy (same passphrase) and verify it before finishing."""
    with open_current_store() as store:
        written = store.backup(dest)
    if settings().json:
        emit_json({"backup": str(written), "verified": True})
        return
    out().print(f"Backup written and verified: {safe_markup(written)}")


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(unlock)
    app.command()(lock)
    app.add_typer(store_app, name="store")
