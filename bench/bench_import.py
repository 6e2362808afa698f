"""Bulk import: tracekit's validated import beside the engine's ceiling and sqlite-utils.

    python bench/bench_import.py [--rows N] [--cases N] [--keep] [--no-memory-security-run] [--profile N]

Generates a realistic, entirely made-up contacts CSV (default 1,000,000 rows) the way a
source system exports it (day-first dates, spaced NHS and phone numbers, a BOM, CRLF,
first name and surname columns, the contact's case by its external id), plus the cases
file those contacts refer to, and measures in the same run:

1. ``tracekit import contacts`` into an encrypted store with full validation (a child
   process, exactly as a user runs it; the cases are imported first and not timed);
2. the engine's ceiling from Python: ``csv.reader`` + one ``sqlite3`` ``executemany`` of
   the same rows into one table of an unencrypted file, in one transaction;
3. ``sqlite-utils insert --csv`` of the same file (``pip install -e '.[bench]'``).

Also, unless told not to: 1 again with SQLCipher's ``cipher_memory_security`` off (the
bench's runner skips only that pragma, as bench/generate_store.py does), to show how much
of the time that setting takes. ``--profile N`` runs cProfile over an in-process import
of the first N rows instead and prints the top functions.

Peak memory (RSS) of each child is read with ``getrusage``. Identifiers are reserved for
tests: NHS numbers from 999 000 0000 upwards with valid check digits, Ofcom drama phone
numbers, example.com addresses, made-up names and streets.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine  # noqa: E402

PASSPHRASE = "tracekit import benchmark: made-up data, not a secret"
TODAY = date(2020, 12, 31)

FIRST = """Olivia Amelia Isla Ava Mia Ivy Lily Isabella Rosie Sophia Grace Willow Freya Florence Emily Ella
Poppy Evie Elsie Charlotte Evelyn Sienna Sofia Daisy Phoebe Sophie Alice Harper Matilda Ruby Emilia Maya
Oliver George Noah Arthur Harry Leo Muhammad Jack Charlie Oscar Jacob Henry Thomas Freddie Alfie Theo
William James Isaac Edward Lucas Tommy Finley Max Logan Ethan Daniel David John Michael Paul Mark Andrew
Priya Aisha Fatima Zainab Ngozi Chidinma Kwame Kofi Wei Mei Mehmet Elif Łukasz Zofia José Lucía Zoë Siân
Seán Renée Chloë Anaïs João Inês""".split()
LAST = """Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson Thompson
Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson Wood Turner Martin Cooper
Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan Allen James Scott Phillips Watson Davis Parker
Price Bennett Young Griffiths Mitchell Kelly Cook Carter Richardson Bailey Collins Bell Shaw Murphy Khan
Begum Singh Ali Hussain Ahmed Kaur Okafor Mensah Nguyen Chen Yilmaz Kowalski Wiśniewski Nowak García
O'Brien O'Neill McCarthy D'Souza Jones-Evans Müller Rossi Silva""".split()
STREETS = """Church Station Victoria Park Albert Manor Mill Queens Kings Grange Green Chapel Springfield
School Windsor Highfield Orchard Meadow Alexandra Beech Cedar Elm Oak Willow Ash Birch Holly""".split()
KINDS = ["Road", "Street", "Avenue", "Lane", "Close", "Drive", "Grove", "Way", "Crescent"]
OUTWARDS = ["E17", "N16", "SE15", "SW2", "M14", "B29", "LS6", "BD8", "S10", "L15", "NE6", "NG7", "LE2",
            "BS7", "CV4", "HU5", "OL1", "BB2", "LU1", "SL1", "CR0", "IG1"]
INWARD = "ABDEFGHJLNPQRSTUWXYZ"
OCCUPATIONS = ["care worker", "nurse", "teacher", "shop assistant", "warehouse operative", "delivery driver",
               "office worker", "student", "retired", "unemployed", "chef", "cleaner", "builder",
               "software developer", "bus driver", "pharmacist", "police officer", "prison officer"]
SETTINGS = [("household", 30), ("workplace", 20), ("education", 12), ("social", 20), ("healthcare", 5),
            ("travel", 5), ("other", 8)]
DRAMA_PREFIXES = ["07700 900", "01632 960", "0113 496 0", "020 7946 0"]

CONTACT_HEADER = ["Contact ID", "Case ID", "First name", "Surname", "Date of birth", "NHS number", "Mobile",
                  "Email", "Address", "Postcode", "Occupation", "Date of last contact", "Setting",
                  "Distance (m)", "Duration (min)", "Face to face", "Notes"]
CASE_HEADER = ["Case ID", "First name", "Surname", "Date of birth", "NHS number", "Mobile", "Postcode",
               "Specimen date", "Onset date", "Asymptomatic"]


def valid_nhs_numbers(rng: random.Random) -> list[str]:
    """Every valid NHS number from 999 000 0000 up (about 909,000), shuffled."""
    numbers = []
    for stem in range(999_000_000, 1_000_000_000):
        digits = str(stem)
        total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1)))
        check = 11 - total % 11
        if check == 10:
            continue
        numbers.append(digits + str(0 if check == 11 else check))
    rng.shuffle(numbers)
    return numbers


def spaced_nhs(n: str) -> str:
    return f"{n[:3]} {n[3:6]} {n[6:]}"


def phone(rng: random.Random) -> str:
    return rng.choice(DRAMA_PREFIXES) + f"{rng.randrange(1000):03d}"


def make_person(rng: random.Random, nhs_pool: list[str]) -> list[str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    dob = date(1930, 1, 1) + timedelta(days=rng.randrange(365 * 85))
    nhs = spaced_nhs(nhs_pool.pop()) if nhs_pool and rng.random() < 0.8 else ""
    email = f"{first.lower()}.{last.lower()}{rng.randrange(100)}@example.com" if rng.random() < 0.5 else ""
    email = email.encode("ascii", "ignore").decode().replace("'", "")
    postcode = f"{rng.choice(OUTWARDS)} {rng.randrange(10)}{rng.choice(INWARD)}{rng.choice(INWARD)}"
    address = f"{rng.randrange(1, 200)} {rng.choice(STREETS)} {rng.choice(KINDS)}"
    return [first, last, dob.strftime("%d/%m/%Y"), nhs, phone(rng), email, address, postcode]


def generate(directory: Path, rows: int, cases: int, seed: int = 5) -> tuple[Path, Path]:
    """Write cases.csv and contacts.csv (UTF-8 with BOM, CRLF) into ``directory``."""
    rng = random.Random(seed)
    nhs_pool = valid_nhs_numbers(rng)
    case_dates = []
    cases_path = directory / "cases.csv"
    with open(cases_path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CASE_HEADER)
        for i in range(cases):
            person = make_person(rng, nhs_pool)
            test = date(2020, 10, 1) + timedelta(days=rng.randrange(85))
            asymptomatic = rng.random() < 0.3
            onset = "" if asymptomatic else (test - timedelta(days=rng.randrange(0, 4))).strftime("%d/%m/%Y")
            case_dates.append(test)
            writer.writerow([f"LAB-{i:08d}", person[0], person[1], person[2], person[3], person[4], person[7],
                             test.strftime("%d/%m/%Y"), onset, "yes" if asymptomatic else "no"])
    contacts_path = directory / "contacts.csv"
    settings, weights = zip(*SETTINGS)
    recent: list[tuple[list[str], set[int]]] = []
    with open(contacts_path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CONTACT_HEADER)
        for i in range(rows):
            case = rng.randrange(cases) if rng.random() < 0.2 else (i * cases) // rows
            entry = rng.choice(recent) if recent and rng.random() < 0.03 else None
            if entry is not None and case not in entry[1]:
                person = entry[0]  # a contact of more than one case: linked, not duplicated
                entry[1].add(case)
            else:
                person = make_person(rng, nhs_pool)
                recent.append((person, {case}))
                if len(recent) > 500:
                    recent.pop(0)
            occupation = rng.choice(OCCUPATIONS) if rng.random() < 0.6 else ""
            last = case_dates[case] - timedelta(days=rng.randrange(0, 4))
            setting = rng.choices(settings, weights)[0]
            distance = "" if setting == "household" or rng.random() < 0.2 else rng.choice(["0.5", "1", "1.5", "2", "3"])
            duration = "" if setting == "household" or rng.random() < 0.2 else str(rng.choice([5, 10, 15, 20, 30, 45, 60, 120]))
            face = rng.choice(["yes", "no", "", "Y", "N"])
            notes = rng.choice(["", "", "", "works nights; call after 2pm", "prefers text", "interpreter: Polish"])
            writer.writerow([f"CT-{i:08d}", f"LAB-{case:08d}", person[0], person[1], person[2], person[3],
                             person[4], person[5], person[6], person[7], occupation, last.strftime("%d/%m/%Y"),
                             setting, distance, duration, face, notes])
    return cases_path, contacts_path


# ---------------------------------------------------------------------- measuring


RUNNER = r"""
import json, resource, sys, time
memory_security = sys.argv[1] == "on"
if not memory_security:
    import functools, types, sqlcipher3
    from tracekit.store import core
    class _Connection(sqlcipher3.Connection):
        def execute(self, sql, *args):
            if "cipher_memory_security" in sql.lower():
                sql = "PRAGMA cipher_log_level = NONE"  # a no-op that reads nothing before the key
            return super().execute(sql, *args)
    class _Module(types.ModuleType):
        def __getattr__(self, name):
            return getattr(sqlcipher3, name)
    shim = _Module("sqlcipher3_bench")
    shim.connect = functools.partial(sqlcipher3.connect, factory=_Connection)
    core._sqlcipher = lambda: shim
# The import's own peak memory: reset the high-water mark once the store is open (the
# unlock's Argon2id buffer comes before), read it at the end (Linux).
from tracekit.importers import engine
_real_import = engine.import_file
def _measured_import(*args, **kwargs):
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass
    return _real_import(*args, **kwargs)
engine.import_file = _measured_import
import tracekit.importers
tracekit.importers.import_file = _measured_import
def _hwm_kib():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
from tracekit.cli import main
sys.argv = ["tracekit", *sys.argv[2:]]
started = time.perf_counter()
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
finally:
    sys.stderr.write(json.dumps({"wall": time.perf_counter() - started,
                                 "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                                 "import_hwm_kib": _hwm_kib()}) + "\n")
sys.exit(code)
"""


def run_tracekit(store: Path, args: list[str], memory_security: bool = True) -> tuple[dict, dict]:
    env = {**os.environ, "TRACEKIT_STORE": str(store), "TRACEKIT_PASSPHRASE": PASSPHRASE}
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, "on" if memory_security else "off", *args, "--json", "--quiet"],
        env=env, capture_output=True, text=True,
    )
    stats = json.loads(result.stderr.strip().splitlines()[-1])
    if result.returncode != 0:
        raise SystemExit(f"tracekit {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout), stats


def make_store(path: Path) -> None:
    from tracekit.crypto.kdf import FLOOR_PARAMS
    from tracekit.store import create_store

    create_store(path, bytearray(PASSPHRASE.encode()), kdf=FLOOR_PARAMS).close()


def measure_executemany(csv_path: Path, db_path: Path) -> float:
    """The ceiling: read the CSV and executemany every row into one table, one transaction."""
    started = time.perf_counter()
    conn = sqlite3.connect(db_path, isolation_level=None)
    with open(csv_path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        columns = ", ".join(f'"{h}" TEXT' for h in header)
        conn.execute(f"CREATE TABLE contacts ({columns})")
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO contacts VALUES ({', '.join('?' * len(header))})", reader)
        conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - started


def measure_sqlite_utils(csv_path: Path, db_path: Path) -> float | None:
    exe = shutil.which("sqlite-utils") or str(Path(sys.executable).with_name("sqlite-utils"))
    if not Path(exe).exists():
        return None
    started = time.perf_counter()
    subprocess.run([exe, "insert", str(db_path), "contacts", str(csv_path), "--csv"], check=True, capture_output=True)
    return time.perf_counter() - started


def profile(rows: int, work: Path) -> None:
    import cProfile
    import pstats

    from tracekit.importers import ImportOptions, import_file
    from tracekit.store import open_store

    _, contacts = generate(work, rows, max(1, rows // 5))
    store_path = work / "profile.store"
    make_store(store_path)
    with open_store(store_path, bytearray(PASSPHRASE.encode())) as store:
        import_file(store, "cases", work / "cases.csv", ImportOptions(today=TODAY))
        profiler = cProfile.Profile()
        profiler.enable()
        summary = import_file(store, "contacts", contacts, ImportOptions(today=TODAY))
        profiler.disable()
    print(f"{summary.rows_read:,} rows in {summary.seconds:.2f} s ({summary.rows_per_second:,.0f} rows/s)")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=None, help="default: rows / 5")
    parser.add_argument("--keep", action="store_true", help="keep the generated files (in bench/out/import)")
    parser.add_argument("--no-memory-security-run", action="store_true", help="skip the run with memory security off")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile an in-process import of N rows")
    args = parser.parse_args()
    work = HERE / "out" / "import" if args.keep else Path(tempfile.mkdtemp(prefix="tracekit-bench-import-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.profile:
            profile(args.profile, work)
            return
        cases = args.cases or max(1, args.rows // 5)
        t = time.perf_counter()
        cases_path, contacts_path = generate(work, args.rows, cases)
        print(f"Generated {args.rows:,} contacts of {cases:,} cases ({contacts_path.stat().st_size / 2**20:,.0f} MiB) "
              f"in {time.perf_counter() - t:.0f} s", flush=True)
        results: list[tuple[str, float, str]] = []
        runs = [True] if args.no_memory_security_run else [True, False]
        for memory_security in runs:
            store = work / f"bench-{'on' if memory_security else 'off'}.store"
            for leftover in (store, Path(f"{store}-journal")):
                leftover.unlink(missing_ok=True)
            make_store(store)
            cases_summary, _ = run_tracekit(store, ["import", "cases", str(cases_path)], memory_security)
            print(f"  (setup: {cases_summary['rows']['imported']:,} cases imported in {cases_summary['seconds']:.0f} s)", flush=True)
            summary, stats = run_tracekit(store, ["import", "contacts", str(contacts_path)], memory_security)
            label = "tracekit import contacts (encrypted, full validation)"
            if not memory_security:
                label += ", cipher_memory_security off"
            rows = summary["rows"]
            import_peak = f" (import phase {stats['import_hwm_kib'] / 1024:,.0f} MiB)" if stats.get("import_hwm_kib") else ""
            detail = (f"imported {rows['imported']:,}, linked {rows['linked']:,}, marked {rows['marked_sensitive']:,}, "
                      f"peak RSS {stats['maxrss_kib'] / 1024:,.0f} MiB{import_peak}, "
                      f"store {store.stat().st_size / 2**20:,.0f} MiB")
            results.append((label, stats["wall"], detail))
            print(f"  {label}: {stats['wall']:.1f} s ({detail})", flush=True)
            store.unlink(missing_ok=True)
        db = work / "ceiling.db"
        db.unlink(missing_ok=True)
        seconds = measure_executemany(contacts_path, db)
        results.append(("sqlite3 executemany, one table, unencrypted (ceiling)", seconds, ""))
        print(f"  ceiling: {seconds:.1f} s", flush=True)
        db.unlink(missing_ok=True)
        seconds_su = measure_sqlite_utils(contacts_path, db)
        if seconds_su is not None:
            results.append(("sqlite-utils insert --csv", seconds_su, ""))
        db.unlink(missing_ok=True)
        print(f"\nMachine: {machine()}\n")
        print(f"| what ({args.rows:,} contact rows) | seconds | rows/s | notes |")
        print("|---|---:|---:|---|")
        for label, secs, detail in results:
            print(f"| {label} | {secs:,.1f} | {args.rows / secs:,.0f} | {detail} |")
        ours = args.rows / results[0][1]
        ceiling = next(args.rows / s for label, s, _ in results if "ceiling" in label)
        print(f"\ntracekit: {ours:,.0f} rows/s; target 100,000; ceiling ratio {ceiling / ours:,.1f}x (target <= 4x)", end="")
        if seconds_su is not None:
            print(f"; vs sqlite-utils {ours / (args.rows / seconds_su):,.2f}x (target >= 4x)")
        else:
            print("; sqlite-utils not installed (pip install -e '.[bench]')")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
