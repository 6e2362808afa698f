"""Single-byte tamper sweep: every flipped byte must be caught (for tests and bench/).

For each chosen offset the store file is copied with one byte flipped, then opened and
checked. A flip is *caught* when the store refuses to open (wrong passphrase or damaged
store, not a store, too new) or ``store check`` reports a problem. It is *missed* when
the store opens and checks clean: that would be undetected tampering.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tracekit.errors import TracekitError


@dataclass
class SweepResult:
    flips: int = 0
    refused: int = 0
    reported: int = 0
    missed: list[int] = field(default_factory=list)


def flip_and_check(original: Path, work: Path, offset: int, passphrase: bytes) -> str:
    """'refused', 'reported' or 'missed' for one flipped byte at ``offset``."""
    from tracekit.store import open_store

    shutil.copyfile(original, work)
    with open(work, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))
    try:
        store = open_store(work, bytearray(passphrase), migrate=False)
    except TracekitError:
        return "refused"
    try:
        return "missed" if store.check().ok else "reported"
    except TracekitError:
        return "reported"
    finally:
        store.close()


def sweep(original: Path, work: Path, offsets: Iterable[int], passphrase: bytes) -> SweepResult:
    result = SweepResult()
    for offset in offsets:
        outcome = flip_and_check(original, work, offset, passphrase)
        result.flips += 1
        if outcome == "refused":
            result.refused += 1
        elif outcome == "reported":
            result.reported += 1
        else:
            result.missed.append(offset)
    return result
