"""Start-up and unlock: `tracekit --version` and a real unlock, beside their baselines.

    python bench/bench_startup.py [--runs N]

Baseline for start-up: `python -c "import typer, rich"` (the floor any Typer+Rich CLI
pays). `tracekit --version` must not pay for Argon2 or SQLCipher. Unlock is measured as
the Argon2id derivation alone with this machine's calibrated defaults, and as a whole
`tracekit store info` on a store made with those defaults.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, summary, table, time_call, time_command


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    rows = []
    rows.append(
        ('baseline: python -c "import typer, rich"', summary(time_command([py, "-c", "import typer, rich"], args.runs)))
    )
    rows.append(("tracekit --version", summary(time_command([py, "-m", "tracekit", "--version"], args.runs))))

    from tracekit.crypto.kdf import calibrate, derive_key
    from tracekit.store import create_store

    params = calibrate()
    salt = os.urandom(16)
    rows.append(
        (
            f"Argon2id derivation alone ({params.describe()})",
            summary(time_call(lambda: derive_key(b"benchmark passphrase", salt, params), max(5, args.runs // 3))),
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.store"
        passphrase = "benchmark passphrase, not secret"
        create_store(path, bytearray(passphrase.encode()), kdf=params).close()
        env = {"TRACEKIT_STORE": str(path), "TRACEKIT_PASSPHRASE": passphrase}
        rows.append(
            (
                "tracekit store info (start + unlock + query)",
                summary(time_command([py, "-m", "tracekit", "store", "info"], max(5, args.runs // 3), env=env)),
            )
        )
    print(f"Machine: {machine()}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
