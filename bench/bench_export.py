"""Export a 1,000,000-contact store to a central handover, beside a plain JSON Lines baseline.

    python bench/bench_export.py [--people N]

Both run in their own process on the same store (bench/generate_store.py makes it):
- baseline: the same case and contact rows streamed from the store and written as plain
  JSON Lines, no redaction, no leak guard, no CSV, no encryption;
- tracekit: ``tracekit export handover --to <central> --all``, i.e. redaction, the leak
  guard over every byte, JSON Lines and CSV, signing and age encryption, atomic write.
Records/s counts cases + contacts. Peak RSS comes from wait4() of each child.
Targets (issue 6): >= 100,000 records/s, within 3x of the baseline, <= 200 MB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine  # noqa: E402

BASELINE = r"""
import json, sys
from tracekit.bundle import source
from tracekit.store import open_store
store = open_store(sys.argv[1], bytearray(sys.argv[2].encode()))
n = 0
with open(sys.argv[3], "w", encoding="utf-8") as out:
    for generator in (source.cases, source.contacts):
        for record in generator(store.conn):
            out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n")
            n += 1
print(n)
"""


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """(seconds, peak RSS in MiB, stdout) of a child process."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    stdout = child.stdout.read() if child.stdout else ""
    stderr = child.stderr.read() if child.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[:4]} failed: {stderr[-2000:]}")
    return elapsed, usage.ru_maxrss // 1024, stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=1_000_000)
    args = parser.parse_args()
    from generate_store import default_path, ensure_store

    path = default_path(args.people)
    meta = ensure_store(path, args.people)
    passphrase = meta["passphrase"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEKIT_")}
    env.update({"TRACEKIT_STORE": str(path), "TRACEKIT_PASSPHRASE": passphrase})

    from pyrage import x25519

    from tracekit.store import open_store

    with open_store(path, bytearray(passphrase.encode())) as store:
        if not store.query("SELECT 1 FROM recipients WHERE name = 'Bench Central'"):
            from tracekit.records import Casebook
            from tracekit.records.sensitive import SensitiveRoles

            SensitiveRoles(Casebook(store)).add_recipient(
                "Bench Central", str(x25519.Identity.generate().to_public()), "central-team"
            )
        counts = {t: store.query(f"SELECT count(*) FROM {t}")[0][0] for t in ("cases", "exposures", "person_roles")}
    records = counts["cases"] + counts["exposures"]
    with tempfile.TemporaryDirectory(dir=HERE / "out") as tmp:
        base_s, base_rss, base_out = run_measured(
            [sys.executable, "-c", BASELINE, str(path), passphrase, str(Path(tmp) / "plain.jsonl")], env
        )
        base_bytes = (Path(tmp) / "plain.jsonl").stat().st_size
        export_s, export_rss, export_out = run_measured(
            [sys.executable, "-m", "tracekit", "--json", "export", "handover", "--to", "Bench Central", "--all", "--out", tmp],
            env,
        )
        result = json.loads(export_out)
    exported = result["record_counts"]["cases"] + result["record_counts"]["contacts"]
    assert int(base_out.strip()) == records == exported, (base_out, records, exported)
    print(f"Machine: {machine()}")
    print(f"Store: {path.name}: {counts['cases']:,} cases, {counts['exposures']:,} contacts, {counts['person_roles']:,} marked")
    print()
    print("| what | seconds | records/s | peak RSS MiB | output |")
    print("|---|---:|---:|---:|---:|")
    print(f"| baseline: same rows as plain JSON Lines | {base_s:.1f} | {records / base_s:,.0f} | {base_rss} | {base_bytes / 1e6:,.0f} MB |")
    print(f"| tracekit export handover (central-handover) | {export_s:.1f} | {records / export_s:,.0f} | {export_rss} | {result['size_bytes'] / 1e6:,.0f} MB |")
    print()
    print(f"ratio to baseline: {export_s / base_s:.2f}x (target <= 3x); target >= 100,000 records/s; target <= 200 MiB")
    print(f"(both include start-up and one Argon2id unlock; tracekit's own timer: {result['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
