"""The tracer's Ed25519 signing key, kept inside the encrypted store.

Made when the store is created (or when an older store is upgraded). Central teams
register the public key (``tracekit keys show``) and check bundle and referral
signatures against it. The private key never leaves the store.
"""

from __future__ import annotations

import hashlib
from typing import Any

PRIVATE_SETTING = "signing.ed25519.private"
PUBLIC_SETTING = "signing.ed25519.public"


def ensure_signing_key(conn: Any) -> None:
    """Create the key pair if the store has none (inside the caller's transaction)."""
    if conn.execute("SELECT 1 FROM settings WHERE key = ?", (PRIVATE_SETTING,)).fetchone():
        return
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    raw_public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    conn.execute("INSERT INTO settings(key, value) VALUES(?, ?)", (PRIVATE_SETTING, raw_private.hex()))
    conn.execute("INSERT INTO settings(key, value) VALUES(?, ?)", (PUBLIC_SETTING, raw_public.hex()))


def public_key_hex(conn: Any) -> str:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (PUBLIC_SETTING,)).fetchone()
    if row is None:
        raise LookupError("the store has no signing key")
    return str(row[0])


def fingerprint(public_hex: str) -> str:
    """SHA-256 of the raw public key, first 32 hex digits in groups of 4 (for reading aloud)."""
    digest = hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:32]
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


def sign(conn: Any, message: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    row = conn.execute("SELECT value FROM settings WHERE key = ?", (PRIVATE_SETTING,)).fetchone()
    if row is None:
        raise LookupError("the store has no signing key")
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(row[0])).sign(message)


def verify(public_hex: str, message: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
