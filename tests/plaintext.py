"""Read a store the way an attacker with the passphrase would: every page, decrypted.

SQLCipher 4 pages (4096 bytes) end in an 80-byte reserve: a 16-byte IV, then the HMAC.
With a raw key the AES-256-CBC key is the raw key itself. Page 1 starts with the
16-byte salt (our header), which is not encrypted. Decrypting every page, including free
pages and the unused space inside pages, shows whatever SQLite left behind: this is the
strongest "the value is gone" check, stronger than a logical dump.
"""

from __future__ import annotations

from pathlib import Path

PAGE_SIZE = 4096
RESERVE = 80


def decrypted_pages(path: Path, key: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    data = Path(path).read_bytes()
    assert len(data) % PAGE_SIZE == 0, "unexpected file size"
    plain = bytearray()
    for number in range(len(data) // PAGE_SIZE):
        page = data[number * PAGE_SIZE : (number + 1) * PAGE_SIZE]
        start = 16 if number == 0 else 0
        iv = page[PAGE_SIZE - RESERVE : PAGE_SIZE - RESERVE + 16]
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        plain += decryptor.update(page[start : PAGE_SIZE - RESERVE]) + decryptor.finalize()
    return bytes(plain)


def logical_dump(store) -> str:  # type: ignore[no-untyped-def]
    """Every row of every table (including FTS shadow tables) as text. The FTS table
    itself is left out: it is contentless and cannot be scanned; its shadow tables hold
    all it has."""
    parts = []
    for (name,) in store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL%'"
    ).fetchall():
        for row in store.conn.execute(f'SELECT * FROM "{name}"').fetchall():
            parts.append(repr(row))
    return "\n".join(parts)


def value_forms(person_values: dict[str, str | None]) -> list[bytes]:
    """The byte strings under which a person's values could be stored or written."""
    forms: list[str] = []
    for field, value in person_values.items():
        if not value:
            continue
        forms.append(value)
        if field == "phone" and value.startswith("+44"):
            forms.extend([value[1:], "0" + value[3:]])
        if field == "postcode":
            forms.append(value.replace(" ", ""))
        if field == "name":
            forms.extend(part for part in value.split() if len(part) >= 4)
    return [f.encode() for f in forms] + [f.lower().encode() for f in forms if f.lower() != f]
