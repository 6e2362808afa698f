"""Keyed pseudonyms: the same person gets the same pseudonym from every tracer of a team.

``pseudonym = "PS-" + first 24 hex digits of HMAC-SHA256(team key, basis)`` where the
basis is ``"nhs:" + the 10-digit NHS number`` or, without one,
``"nd:" + name key + "|" + date of birth``. Without the key, trying every NHS number
gives nothing: each guess needs the key. The key lives in the encrypted store; it is
shared between tracers of a team as a file (``keys pseudonym generate --out FILE``,
``keys pseudonym import FILE``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from tracekit.errors import PassphraseError, PolicyError, ValidationError
from tracekit.files import read_regular_file

KEY_SETTING = "pseudonym.key"
KEY_FILE_PREFIX = "tracekit-pseudonym-key-v1:"


def pseudonym_basis(record: dict[str, Any]) -> str | None:
    if record.get("nhs_number"):
        return f"nhs:{record['nhs_number']}"
    if record.get("name_key") and record.get("date_of_birth"):
        return f"nd:{record['name_key']}|{record['date_of_birth']}"
    return None


def pseudonym(key: bytes, basis: str) -> str:
    return "PS-" + hmac.new(key, basis.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


def make_pseudonymiser(key: bytes):
    def pseudonymise(record: dict[str, Any]) -> str | None:
        basis = pseudonym_basis(record)
        return pseudonym(key, basis) if basis else None

    return pseudonymise


def stored_key(conn: Any) -> bytes | None:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (KEY_SETTING,)).fetchone()
    return bytes.fromhex(row[0]) if row else None


def require_key(conn: Any) -> bytes:
    key = stored_key(conn)
    if key is None:
        raise PolicyError(
            "the policy asks for pseudonyms but this store has no pseudonymisation key",
            hint="tracekit keys pseudonym generate --out FILE (first tracer of a team), or keys pseudonym import FILE",
        )
    return key


def key_file_text(key: bytes) -> str:
    return KEY_FILE_PREFIX + key.hex() + "\n"


#: A key file is one line of about 90 characters.
MAX_KEY_FILE_BYTES = 4096


def _unreadable_key_file(problem: str) -> ValidationError:
    return ValidationError("key_file", problem, expected="the key file from keys pseudonym generate")


def read_key_file(path: Path) -> bytes:
    path = Path(path).expanduser()
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ValidationError(
            "key_file", "does not exist", expected="the key file from keys pseudonym generate"
        ) from None
    if st.st_mode & 0o077:
        raise PassphraseError(f"{path} is readable by others; run chmod 600 {path}")
    data = read_regular_file(path, what="key file", max_bytes=MAX_KEY_FILE_BYTES, error=_unreadable_key_file)
    text = data.decode("ascii", errors="replace").strip()
    if not text.startswith(KEY_FILE_PREFIX):
        raise ValidationError(
            "key_file", "is not a tracekit pseudonym key", expected="a file written by keys pseudonym generate"
        )
    try:
        key = bytes.fromhex(text[len(KEY_FILE_PREFIX) :])
    except ValueError:
        raise ValidationError("key_file", "is damaged", expected="64 hex digits after the prefix") from None
    if len(key) != 32:
        raise ValidationError("key_file", "is damaged", expected="a 32-byte key")
    return key


def new_key() -> bytes:
    return secrets.token_bytes(32)
