"""The 16-byte store header: SQLCipher's salt, which also carries what unlocking needs.

SQLCipher keeps a 16-byte random salt in the first bytes of the file, unencrypted. With a
raw key tracekit sets that salt itself, so the one file carries everything needed to
open it with the passphrase::

    offset  size  meaning
    0       2     magic b"TK"
    2       1     format version (FORMAT_VERSION)
    3       1     Argon2 memory, log2 of KiB (16 = 64 MiB)
    4       1     Argon2 time cost (passes)
    5       1     Argon2 parallelism (lanes)
    6       10    random bytes (secrets.token_bytes)

The same 16 bytes are the Argon2id salt, so the parameters are bound into the key. The
salt keeps 80 random bits: unique per store and per passphrase change for any realistic
number of stores. See docs/security.md for the reasoning.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from tracekit.crypto.kdf import KdfParams

MAGIC = b"TK"
FORMAT_VERSION = 1
HEADER_BYTES = 16
RANDOM_BYTES = 10
SQLITE_PLAINTEXT_MAGIC = b"SQLite format 3\x00"


class HeaderProblem(ValueError):
    """Why 16 bytes are not a header this tracekit can open; ``kind`` says which way."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind  # "not-a-store" | "too-new" | "damaged"


@dataclass(frozen=True)
class StoreHeader:
    format_version: int
    kdf: KdfParams
    random: bytes

    @classmethod
    def new(cls, kdf: KdfParams) -> StoreHeader:
        return cls(FORMAT_VERSION, kdf, secrets.token_bytes(RANDOM_BYTES))

    def to_bytes(self) -> bytes:
        return (
            MAGIC
            + bytes([self.format_version, self.kdf.memory_log2, self.kdf.time_cost, self.kdf.parallelism])
            + self.random
        )

    @property
    def store_id(self) -> str:
        """A stable, non-secret name for this store file and key (hex of the header)."""
        return self.to_bytes().hex()

    @classmethod
    def parse(cls, data: bytes) -> StoreHeader:
        if data.startswith(SQLITE_PLAINTEXT_MAGIC):
            raise HeaderProblem("not-a-store", "this is a plaintext SQLite database, not a tracekit store")
        if len(data) < HEADER_BYTES or not data.startswith(MAGIC):
            raise HeaderProblem("not-a-store", "this file is not a tracekit store")
        version = data[2]
        if version > FORMAT_VERSION:
            raise HeaderProblem(
                "too-new",
                f"this store has file format {version}, made by a newer tracekit "
                f"(this one reads format {FORMAT_VERSION}); upgrade tracekit to open it",
            )
        if version < 1:
            raise HeaderProblem("damaged", "the store header is damaged (format version 0)")
        kdf = KdfParams(data[3], data[4], data[5])
        if not kdf.within_bounds():
            raise HeaderProblem(
                "damaged",
                "the store header asks for key-derivation costs outside the accepted bounds: "
                "the file is damaged or has been tampered with",
            )
        return cls(version, kdf, bytes(data[6:HEADER_BYTES]))
