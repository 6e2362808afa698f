"""Export a 1,000,000-contact store to a central handover, beside a plain JSON Lines baseline.

    python bench/bench_export.py [--people N] [--marked M]

Both run in their own process on the same store (bench/generate_store.py makes it), and
the leak guard has people to look for: the generator marks nobody, so by default 0.1% of
the people (1,000 of 1,000,000) are marked in a sensitive role first, on a copy of the
store kept beside it (``casebook-1m-marked1000.store``, made once; the shared store is left
as it is). They are drawn at random among people whose full name nobody else has: the
guard blocks an export that carries a marked person's name, and with common names another
person of the same name would stop every export; and born before 2020: the guard also
blocks a record that holds a marked person's postcode and date of birth, and a baby's date
of birth is a test or exposure date in their own household's records (both are properties
of the guard's rules, not of its speed). ``--marked 0`` exports the unmarked store, where
the guard has nothing to do.

- baseline: the same case and contact rows streamed from the store and written as plain
  JSON Lines, no redaction, no leak guard, no CSV, no encryption;
- tracekit: ``tracekit export handover --to <central> --all``, i.e. redaction, the leak
  guard over every byte, JSON Lines and CSV, signing and age encryption, atomic write.
Records/s counts cases + contacts. Peak RSS is each child's own high-water mark (VmHWM).
Targets (issue 6): >= 100,000 records/s, within 3x of the baseline, <= 200 MB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
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


# Peak RSS is the child's own high-water mark (VmHWM of the program after exec), printed
# by the child as it exits. Not wait4()'s ru_maxrss: Linux carries the RSS a process had
# when it forked (here: this benchmark, after unlocking the store and marking people) into
# the child's ru_maxrss across exec, so it would report the parent's size.
PEAK = """
import atexit, sys
def _peak():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            print('peak-rss-kib', line.split()[1], file=sys.stderr)
atexit.register(_peak)
"""
CLI = PEAK + "import runpy, sys\nsys.argv[0] = 'tracekit'\nrunpy.run_module('tracekit', run_name='__main__')\n"


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """(seconds, peak RSS in MiB, stdout) of a child process."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = child.communicate()
    elapsed = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed: {stderr[-2000:]}")
    peak = [int(line.split()[1]) for line in stderr.splitlines() if line.startswith("peak-rss-kib ")]
    return elapsed, peak[-1] // 1024, stdout


def marked_copy(path: Path, passphrase: str, marked: int) -> Path:
    """A copy of the store with ``marked`` people marked in a sensitive role (made once)."""
    copy = path.with_name(f"{path.stem}-marked{marked}.store")
    if copy.exists():
        return copy
    print(f"Copying {path.name} and marking {marked:,} people (once)...", file=sys.stderr, flush=True)
    temp = copy.with_name(copy.name + ".part")
    shutil.copyfile(path, temp)
    os.chmod(temp, 0o600)
    try:
        _mark(temp, passphrase, marked)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    os.replace(temp, copy)
    return copy


def _mark(temp: Path, passphrase: str, marked: int) -> None:
    from tracekit.records import Casebook
    from tracekit.records.sensitive import SensitiveRoles
    from tracekit.store import open_store

    with open_store(temp, bytearray(passphrase.encode())) as store:
        unique = [
            row[0]
            for row in store.query(
                "WITH once AS (SELECT lower(name) AS k FROM people GROUP BY 1 HAVING count(*) = 1) "
                "SELECT ref FROM people WHERE lower(name) IN (SELECT k FROM once) "
                "AND (date_of_birth IS NULL OR date_of_birth < '2020-01-01') ORDER BY id"
            )
        ]
        roles = SensitiveRoles(Casebook(store))
        for ref in random.Random(2020).sample(unique, marked):
            # The reason is checked against the person's details (any name part of three
            # letters or more, as a substring): "n/a" cannot hold one.
            roles.mark(ref, "other", "n/a")


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--marked", type=int, help="people to mark in a sensitive role first (default: 0.1%%)")
    args = parser.parse_args()
    from generate_store import default_path, ensure_store

    path = default_path(args.people)
    meta = ensure_store(path, args.people)
    passphrase = meta["passphrase"]
    marked = args.people // 1000 if args.marked is None else args.marked
    if marked:
        path = marked_copy(path, passphrase, marked)
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
    load_before = load()
    with tempfile.TemporaryDirectory(dir=HERE / "out") as tmp:
        base_s, base_rss, base_out = run_measured(
            [sys.executable, "-c", PEAK + BASELINE, str(path), passphrase, str(Path(tmp) / "plain.jsonl")], env
        )
        base_bytes = (Path(tmp) / "plain.jsonl").stat().st_size
        export_s, export_rss, export_out = run_measured(
            [sys.executable, "-c", CLI, "--json", "export", "handover", "--to", "Bench Central", "--all", "--out", tmp],
            env,
        )
        result = json.loads(export_out)
    load_after = load()
    exported = result["record_counts"]["cases"] + result["record_counts"]["contacts"]
    assert int(base_out.strip()) == records == exported, (base_out, records, exported)
    print(f"Machine: {machine()}")
    print(
        f"Store: {path.name}: {counts['cases']:,} cases, {counts['exposures']:,} contacts, {counts['person_roles']:,} marked"
    )
    print(f"Before: {load_before}; after: {load_after} (2 cores)")
    withheld = {k[len("withheld_") :]: v for k, v in result["record_counts"].items() if k.startswith("withheld_")}
    print("Withheld as stubs: " + (", ".join(f"{v:,} {k}" for k, v in sorted(withheld.items())) or "none"))
    print()
    print("| what | seconds | records/s | peak RSS MiB | output |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| baseline: same rows as plain JSON Lines | {base_s:.1f} | {records / base_s:,.0f} | {base_rss} | {base_bytes / 1e6:,.0f} MB |"
    )
    print(
        f"| tracekit export handover (central-handover) | {export_s:.1f} | {records / export_s:,.0f} | {export_rss} | {result['size_bytes'] / 1e6:,.0f} MB |"
    )
    print()
    print(f"ratio to baseline: {export_s / base_s:.2f}x (target <= 3x); target >= 100,000 records/s; target <= 200 MiB")
    print(f"(both include start-up and one Argon2id unlock; tracekit's own timer: {result['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
