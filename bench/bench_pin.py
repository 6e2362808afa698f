"""`rules pin` and `rules unpin` on a large store, beside a set-based SQL baseline.

    python bench/bench_pin.py [--store PATH] [--ruleset ID] [--keep-copy]

Pinning works out every case's and contact's stored rule values again (rule set,
infectious period, isolation end, close-contact clause) in one transaction. The default
store is the scale run's (bench/generate_store.py --people 1000000 --exposures 5000000);
its passphrase is in the ``.json`` beside it. Everything runs on a copy, deleted after.

- baseline: one child process opens the copy and, in one transaction, rewrites the same
  columns of every case and exposure with a single UPDATE each (``SET col = col``), then
  rolls back: the floor for writing every row, with no rule evaluated and nothing read
  into Python.
- tracekit: ``tracekit rules pin ID --json``, then ``tracekit rules unpin --json``, each a
  child process started as a user would (the passphrase in the environment here).

The default rule set, england-2020-12-14 (10-day contact isolation), changes the stored
values of nearly every record of 2020: the most work a pin can be given.
Peak RSS is each child's own high-water mark (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_export import PEAK, run_measured  # noqa: E402
from common import machine  # noqa: E402

DEFAULT_STORE = HERE / "out" / "casebook-1m-5m.store"

BASELINE = (
    PEAK
    + r"""
import sys
from tracekit.store import open_store
store = open_store(sys.argv[1], bytearray(sys.argv[2].encode()))
conn = store.conn
conn.execute("BEGIN IMMEDIATE")
cases = conn.execute(
    "UPDATE cases SET ruleset_id = ruleset_id, infectious_start = infectious_start, "
    "infectious_end = infectious_end, isolation_end = isolation_end").rowcount
exposures = conn.execute(
    "UPDATE exposures SET ruleset_id = ruleset_id, close_contact = close_contact, clause = clause, "
    "risk_rank = risk_rank, isolation_end = isolation_end").rowcount
conn.execute("ROLLBACK")
print(cases, exposures)
"""
)

CLI = PEAK + "import runpy, sys\nsys.argv[0] = 'tracekit'\nrunpy.run_module('tracekit', run_name='__main__')\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE)
    parser.add_argument("--ruleset", default="england-2020-12-14")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--keep-copy", action="store_true")
    args = parser.parse_args()
    meta = json.loads(args.store.with_name(args.store.name + ".json").read_text())
    passphrase = meta["passphrase"]
    copy = args.store.with_name(args.store.stem + "-pin.store")
    print(f"Machine: {machine()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    print(f"Store: {args.store} ({args.store.stat().st_size / 2**30:.1f} GiB; {meta.get('counts')})", flush=True)
    started = time.perf_counter()
    shutil.copyfile(args.store, copy)
    os.chmod(copy, 0o600)
    print(f"Copied to {copy.name} in {time.perf_counter() - started:.0f} s", flush=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEKIT_")}
    env.update({"TRACEKIT_STORE": str(copy), "TRACEKIT_PASSPHRASE": passphrase})
    py = sys.executable
    results = []
    try:
        seconds, peak, out = run_measured([py, "-c", BASELINE, str(copy), passphrase], env)
        cases, exposures = (int(n) for n in out.split())
        results.append(
            ("baseline: one UPDATE per table, every row, rolled back", seconds, peak, f"{cases + exposures:,} rows")
        )
        print(f"  {results[-1]}", flush=True)
        for argv in (["rules", "pin", args.ruleset], ["rules", "unpin"]):
            seconds, peak, out = run_measured([py, "-c", CLI, *argv, "--json"], env)
            summary = json.loads(out)["recomputed"]
            changed = summary["cases_changed"] + summary["contacts_changed"]
            read = summary["cases"] + summary["contacts"]
            results.append((f"tracekit {' '.join(argv)}", seconds, peak, f"{read:,} read, {changed:,} changed"))
            print(f"  {results[-1]}", flush=True)
    finally:
        if not args.keep_copy:
            copy.unlink(missing_ok=True)
    print()
    print("| what | seconds | peak RSS MiB | records |")
    print("|---|---:|---:|---|")
    for label, seconds, peak, note in results:
        print(f"| {label} | {seconds:.1f} | {peak} | {note} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps([dict(zip(("what", "seconds", "peak_mib", "records"), r)) for r in results]))


if __name__ == "__main__":
    main()
