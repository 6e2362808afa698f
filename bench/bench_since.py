"""An export's "changed since" lookup on a large store: by index (now) beside reading every
record (the query before), in the same run.

    python bench/bench_since.py [--store PATH] [--since TIME ...]

It times only the part that changed: finding and streaming the records of an export
``--since TIME`` (or ``--since-last``, which is a ``--since`` from the last handover's
end): cases and contacts whose record or person changed at or after TIME, through
``tracekit.bundle.source``, with the WHERE clause each way. Opening the store applies any
pending schema migration first; its time is printed (the people_updated index, once).
Default store: the scale run's (1,000,000 people, 5,000,000 contacts); default times: the
store's last change minus one second, one hour and one day (a few, some and many changes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine  # noqa: E402

DEFAULT_STORE = HERE / "out" / "casebook-1m-5m.store"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE)
    parser.add_argument("--since", nargs="*", help="ISO times (default: last change minus 1 s, 1 h, 1 day)")
    args = parser.parse_args()
    passphrase = json.loads(args.store.with_name(args.store.name + ".json").read_text())["passphrase"]
    from tracekit.bundle import source
    from tracekit.store import open_store

    print(f"Machine: {machine()}")
    started = time.perf_counter()
    store = open_store(args.store, bytearray(passphrase.encode()))
    print(f"Opened {args.store.name} (Argon2id, and any pending migration) in {time.perf_counter() - started:.1f} s")
    conn = store.conn
    last = max(conn.execute(f"SELECT max(updated_at) FROM {t}").fetchone()[0] for t in ("cases", "exposures", "people"))
    end = datetime.fromisoformat(last)
    times = args.since or [
        (end - delta).isoformat() for delta in (timedelta(seconds=1), timedelta(hours=1), timedelta(days=1))
    ]
    original = source._changed_since
    scan = {"c": "WHERE c.updated_at >= ? OR p.updated_at >= ?", "e": "WHERE e.updated_at >= ? OR p.updated_at >= ?"}
    print("\n| since | records | by index (now) s | reading every record (before) s |")
    print("|---|---:|---:|---:|")
    for since in times:
        row = []
        for label, chooser in (("now", original), ("before", lambda conn, alias, table, since: scan[alias])):
            source._changed_since = chooser
            t = time.perf_counter()
            n = sum(1 for _ in source.cases(conn, since)) + sum(1 for _ in source.contacts(conn, since))
            row.append((n, time.perf_counter() - t))
        source._changed_since = original
        assert row[0][0] == row[1][0], "the two ways found different records"
        print(f"| {since} | {row[0][0]:,} | {row[0][1]:.2f} | {row[1][1]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
