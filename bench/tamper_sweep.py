"""Flip every byte (or every Nth) of a small store, one at a time; count what is caught.

    python bench/tamper_sweep.py [--stride N]

The test suite runs a structured sample (tests/test_tamper.py); this runs the full sweep.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine


def main() -> None:
    from tracekit.crypto.kdf import KdfParams
    from tracekit.records import Casebook, PersonInput
    from tracekit.store import create_store
    from tracekit.store.tamper import sweep

    parser = argparse.ArgumentParser()
    parser.add_argument("--stride", type=int, default=1, help="flip every Nth byte (1: every byte)")
    args = parser.parse_args()
    passphrase = b"tamper sweep passphrase"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.store"
        with create_store(path, bytearray(passphrase), kdf=KdfParams(3, 1, 1)) as store:
            book = Casebook(store, today=date(2020, 11, 1))
            case = book.add_case(person=PersonInput(name="Sweep Test"), test_date="2020-10-01", asymptomatic=True)
            book.add_contact(
                case.ref, person=PersonInput(name="Other Person"), last_exposure="2020-09-30", setting="household"
            )
        size = path.stat().st_size
        started = time.perf_counter()
        result = sweep(path, Path(tmp) / "w.store", range(0, size, args.stride), passphrase)
        elapsed = time.perf_counter() - started
    print(f"Machine: {machine()}")
    print(f"store: {size} bytes; flips: {result.flips} (every {args.stride}. byte) in {elapsed:.0f} s")
    print(
        f"refused to open: {result.refused}; reported by store check: {result.reported}; missed: {len(result.missed)}"
    )
    if result.missed:
        print("missed offsets:", result.missed[:50])
        sys.exit(1)


if __name__ == "__main__":
    main()
