"""Bulk import: tracekit beside sqlite-utils and a bare executemany of the same rows, at several store sizes.

    python bench/bench_import.py [--rows N] [--cases N] [--existing 0,35000,200000,1000000]
                                 [--repeat 3] [--variants] [--json FILE] [--keep] [--profile N]

Generates a realistic, entirely made-up contacts CSV (default 105,000 rows) the way a
source system exports it (day-first dates, spaced NHS and phone numbers, a BOM, CRLF,
first name and surname columns, the contact's case by its external id), plus the cases
file those contacts refer to. For each store size (people already in the store: a copy of
a store bench/generate_store.py makes once into bench/out/existing-N.store; 0 is a new
empty store) the cases are imported first (untimed). Then ``--repeat`` rounds, each of
which runs every size in turn (so the machine's drift falls on all sizes alike), and at
each size, each on a fresh copy and in turn:

1. ``tracekit import contacts`` (a child process, exactly as a user runs it);
2. ``sqlite-utils insert --csv`` of the same file into a new plain SQLite file;
3. bare ``executemany``: the write statements the import issued (captured with their rows
   from an in-process import into another copy) replayed into the same schema on the
   import's connection set-up, BEGIN to COMMIT;
4. with ``--variants``, the same replay under each set-up of ``variants()`` (as before
   issue 16, without the search index's removals or the search index, memory security
   off, the floor), each in its own process (memory security is process-wide).

Prints medians, the ratios against the targets and the flatness ratio (empty store against
the largest). ``--profile N`` runs cProfile over an in-process import of N rows instead.
Identifiers are reserved for tests: NHS numbers from 999 000 0000 upwards with valid check
digits, Ofcom drama phone numbers, example.com addresses, made-up names and streets.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
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

FIRST = [
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Mia",
    "Ivy",
    "Lily",
    "Isabella",
    "Rosie",
    "Sophia",
    "Grace",
    "Willow",
    "Freya",
    "Florence",
    "Emily",
    "Ella",
    "Poppy",
    "Evie",
    "Elsie",
    "Charlotte",
    "Evelyn",
    "Sienna",
    "Sofia",
    "Daisy",
    "Phoebe",
    "Sophie",
    "Alice",
    "Harper",
    "Matilda",
    "Ruby",
    "Emilia",
    "Maya",
    "Oliver",
    "George",
    "Noah",
    "Arthur",
    "Harry",
    "Leo",
    "Muhammad",
    "Jack",
    "Charlie",
    "Oscar",
    "Jacob",
    "Henry",
    "Thomas",
    "Freddie",
    "Alfie",
    "Theo",
    "William",
    "James",
    "Isaac",
    "Edward",
    "Lucas",
    "Tommy",
    "Finley",
    "Max",
    "Logan",
    "Ethan",
    "Daniel",
    "David",
    "John",
    "Michael",
    "Paul",
    "Mark",
    "Andrew",
    "Priya",
    "Aisha",
    "Fatima",
    "Zainab",
    "Ngozi",
    "Chidinma",
    "Kwame",
    "Kofi",
    "Wei",
    "Mei",
    "Mehmet",
    "Elif",
    "Łukasz",
    "Zofia",
    "José",
    "Lucía",
    "Zoë",
    "Siân",
    "Seán",
    "Renée",
    "Chloë",
    "Anaïs",
    "João",
    "Inês",
]
LAST = [
    "Smith",
    "Jones",
    "Williams",
    "Taylor",
    "Brown",
    "Davies",
    "Evans",
    "Wilson",
    "Thomas",
    "Johnson",
    "Roberts",
    "Robinson",
    "Thompson",
    "Wright",
    "Walker",
    "White",
    "Edwards",
    "Hughes",
    "Green",
    "Hall",
    "Lewis",
    "Harris",
    "Clarke",
    "Patel",
    "Jackson",
    "Wood",
    "Turner",
    "Martin",
    "Cooper",
    "Hill",
    "Ward",
    "Morris",
    "Moore",
    "Clark",
    "Lee",
    "King",
    "Baker",
    "Harrison",
    "Morgan",
    "Allen",
    "James",
    "Scott",
    "Phillips",
    "Watson",
    "Davis",
    "Parker",
    "Price",
    "Bennett",
    "Young",
    "Griffiths",
    "Mitchell",
    "Kelly",
    "Cook",
    "Carter",
    "Richardson",
    "Bailey",
    "Collins",
    "Bell",
    "Shaw",
    "Murphy",
    "Khan",
    "Begum",
    "Singh",
    "Ali",
    "Hussain",
    "Ahmed",
    "Kaur",
    "Okafor",
    "Mensah",
    "Nguyen",
    "Chen",
    "Yilmaz",
    "Kowalski",
    "Wiśniewski",
    "Nowak",
    "García",
    "O'Brien",
    "O'Neill",
    "McCarthy",
    "D'Souza",
    "Jones-Evans",
    "Müller",
    "Rossi",
    "Silva",
]
STREETS = [
    "Church",
    "Station",
    "Victoria",
    "Park",
    "Albert",
    "Manor",
    "Mill",
    "Queens",
    "Kings",
    "Grange",
    "Green",
    "Chapel",
    "Springfield",
    "School",
    "Windsor",
    "Highfield",
    "Orchard",
    "Meadow",
    "Alexandra",
    "Beech",
    "Cedar",
    "Elm",
    "Oak",
    "Willow",
    "Ash",
    "Birch",
    "Holly",
]
KINDS = ["Road", "Street", "Avenue", "Lane", "Close", "Drive", "Grove", "Way", "Crescent"]
OUTWARDS = [
    "E17",
    "N16",
    "SE15",
    "SW2",
    "M14",
    "B29",
    "LS6",
    "BD8",
    "S10",
    "L15",
    "NE6",
    "NG7",
    "LE2",
    "BS7",
    "CV4",
    "HU5",
    "OL1",
    "BB2",
    "LU1",
    "SL1",
    "CR0",
    "IG1",
]
INWARD = "ABDEFGHJLNPQRSTUWXYZ"
OCCUPATIONS = [
    "care worker",
    "nurse",
    "teacher",
    "shop assistant",
    "warehouse operative",
    "delivery driver",
    "office worker",
    "student",
    "retired",
    "unemployed",
    "chef",
    "cleaner",
    "builder",
    "software developer",
    "bus driver",
    "pharmacist",
    "police officer",
    "prison officer",
]
SETTINGS = [
    ("household", 30),
    ("workplace", 20),
    ("education", 12),
    ("social", 20),
    ("healthcare", 5),
    ("travel", 5),
    ("other", 8),
]
DRAMA_PREFIXES = ["07700 900", "01632 960", "0113 496 0", "020 7946 0"]

CONTACT_HEADER = [
    "Contact ID",
    "Case ID",
    "First name",
    "Surname",
    "Date of birth",
    "NHS number",
    "Mobile",
    "Email",
    "Address",
    "Postcode",
    "Occupation",
    "Date of last contact",
    "Setting",
    "Distance (m)",
    "Duration (min)",
    "Face to face",
    "Notes",
]
CASE_HEADER = [
    "Case ID",
    "First name",
    "Surname",
    "Date of birth",
    "NHS number",
    "Mobile",
    "Postcode",
    "Specimen date",
    "Onset date",
    "Asymptomatic",
]


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
            writer.writerow(
                [
                    f"LAB-{i:08d}",
                    person[0],
                    person[1],
                    person[2],
                    person[3],
                    person[4],
                    person[7],
                    test.strftime("%d/%m/%Y"),
                    onset,
                    "yes" if asymptomatic else "no",
                ]
            )
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
            duration = (
                ""
                if setting == "household" or rng.random() < 0.2
                else str(rng.choice([5, 10, 15, 20, 30, 45, 60, 120]))
            )
            face = rng.choice(["yes", "no", "", "Y", "N"])
            notes = rng.choice(["", "", "", "works nights; call after 2pm", "prefers text", "interpreter: Polish"])
            writer.writerow(
                [
                    f"CT-{i:08d}",
                    f"LAB-{case:08d}",
                    person[0],
                    person[1],
                    person[2],
                    person[3],
                    person[4],
                    person[5],
                    person[6],
                    person[7],
                    occupation,
                    last.strftime("%d/%m/%Y"),
                    setting,
                    distance,
                    duration,
                    face,
                    notes,
                ]
            )
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


def run_tracekit(
    store: Path, args: list[str], memory_security: bool = True, passphrase: str = PASSPHRASE
) -> tuple[dict, dict]:
    env = {**os.environ, "TRACEKIT_STORE": str(store), "TRACEKIT_PASSPHRASE": passphrase}
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, "on" if memory_security else "off", *args, "--json", "--quiet"],
        env=env,
        capture_output=True,
        text=True,
    )
    stats = json.loads(result.stderr.strip().splitlines()[-1])
    if result.returncode != 0:
        raise SystemExit(f"tracekit {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout), stats


def make_store(path: Path, passphrase: str = PASSPHRASE) -> None:
    from tracekit.crypto.kdf import FLOOR_PARAMS
    from tracekit.store import create_store

    create_store(path, bytearray(passphrase.encode()), kdf=FLOOR_PARAMS).close()


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
    pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime")).print_stats(int(os.environ.get("TOP", "25")))


# --------------------------------------------------------- replaying the importer's statements

#: Captures every write statement of an in-process import (with its rows), for replaying.
CAPTURE = r"""
import pickle, sys
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from tracekit.importers import ImportOptions, import_file
from tracekit.store import open_store
from tracekit.store.core import Store

log = []

class Recorder:
    def __init__(self, conn):
        self._conn = conn
    def __getattr__(self, name):
        return getattr(self._conn, name)
    def execute(self, sql, *args):
        if sql.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            log.append((sql, [tuple(args[0]) if args else ()]))
        return self._conn.execute(sql, *args)
    def executemany(self, sql, rows):
        rows = [tuple(row) for row in rows]
        log.append((sql, rows))
        return self._conn.executemany(sql, rows)

real = Store.transaction
@contextmanager
def recording(self):
    with real(self) as conn:
        yield Recorder(conn) if self._depth == 1 else conn
Store.transaction = recording
store_path, csv_path, passphrase, out = sys.argv[1:5]
with open_store(Path(store_path), bytearray(passphrase.encode())) as store:
    import_file(store, "contacts", Path(csv_path), ImportOptions(today=date(2020, 12, 31), skip_invalid=True))
with open(out, "wb") as handle:
    pickle.dump(log, handle)
"""

#: Replays captured statements on a store copy under one variant's connection set-up;
#: prints the seconds from BEGIN to COMMIT.
REPLAY = r"""
import json, pickle, sys, time
from pathlib import Path
import sqlcipher3
from tracekit.crypto.kdf import derive_key
from tracekit.store import core

store_path, statements, passphrase, variant = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
path = Path(store_path)
header = core.read_header(path)
key = derive_key(bytearray(passphrase.encode()), header.to_bytes(), header.kdf)
with open(statements, "rb") as handle:
    log = pickle.load(handle)
if variant.get("no_fts"):
    log = [s for s in log if "people_fts" not in s[0]]
if variant.get("no_removals"):
    # Without the removals (delete markers, with secure delete turned off and on around them).
    log = [s for s in log if not any(w in s[0] for w in ("'delete'", "'secure-delete'"))]
conn = sqlcipher3.connect(str(path), isolation_level=None)
if variant.get("lookaside"):
    if variant.get("memory_security", True):
        conn_ms = sqlcipher3.connect(":memory:"); conn_ms.execute("PRAGMA cipher_memory_security = ON"); conn_ms.close()
    assert core._enlarge_lookaside(conn, path, *variant["lookaside"])
if variant.get("memory_security", True):
    conn.execute("PRAGMA cipher_memory_security = ON")
conn.execute(core._key_pragma(key, header))
for pragma in ("secure_delete = ON", "foreign_keys = ON", "temp_store = MEMORY", f"cache_size = -{variant['cache_kib']}"):
    conn.execute(f"PRAGMA {pragma}")
for index in variant.get("drop_indexes", ()):
    conn.execute(f"DROP INDEX {index}")
started = time.perf_counter()
conn.execute("BEGIN IMMEDIATE")
for sql, rows in log:
    conn.executemany(sql, rows)
conn.execute("COMMIT")
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

SHIPPED_BEFORE = {"cache_kib": 32 * 1024}  # the connection set-up before issue 16


#: The secondary indexes of the tables an import writes (the b-tree floor drops them).
SECONDARY_INDEXES = (
    "people_nhs",
    "people_name_dob",
    "people_phone",
    "people_postcode",
    "people_updated",
    "exposures_person",
    "exposures_worklist",
    "exposures_status_date",
    "exposures_pending",
    "exposures_isolation_end",
    "exposures_date",
    "exposures_updated",
)


def as_shipped() -> dict:
    """The import's own connection set-up (``Store.bulk_writes``)."""
    from tracekit.store import core

    return {"lookaside": list(core.BULK_LOOKASIDE), "cache_kib": core.BULK_CACHE_KIB}


def variants() -> dict[str, dict]:
    """The connection set-ups and statement sets replayed side by side (``--variants``)."""
    bulk = as_shipped()
    floor = {**bulk, "memory_security": False, "cache_kib": 1024 * 1024}
    return {
        "before issue 16 (default lookaside, 32 MiB cache)": SHIPPED_BEFORE,
        "larger lookaside, 32 MiB cache": {**SHIPPED_BEFORE, "lookaside": bulk["lookaside"]},
        "as shipped, without the search index removals of people marked": {**bulk, "no_removals": True},
        "as shipped, without the search index": {**bulk, "no_fts": True},
        "as shipped, memory security off": {**bulk, "memory_security": False},
        "as shipped, memory security off, 1 GiB cache (floor)": floor,
        "floor without the search index and secondary indexes": {
            **floor,
            "no_fts": True,
            "drop_indexes": list(SECONDARY_INDEXES),
        },
    }


def replay(store: Path, statements: Path, passphrase: str, variant: dict) -> float:
    result = subprocess.run(
        [sys.executable, "-c", REPLAY, str(store), str(statements), passphrase, json.dumps(variant)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"replay failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["seconds"]


def capture(store: Path, csv_path: Path, passphrase: str, out: Path) -> None:
    subprocess.run(
        [sys.executable, "-c", CAPTURE, str(store), str(csv_path), passphrase, str(out)],
        check=True,
        capture_output=True,
    )


def existing_store(people: int, work: Path) -> tuple[Path, str]:
    """A store of ``people`` existing people (bench/generate_store.py, made once and kept in
    bench/out), or a new empty store for 0; and its passphrase."""
    import generate_store

    if not people:
        path = work / "empty.store"
        path.unlink(missing_ok=True)
        make_store(path, generate_store.BENCH_PASSPHRASE)
        return path, generate_store.BENCH_PASSPHRASE
    path = HERE / "out" / f"existing-{people}.store"
    if not path.exists():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "generate_store.py"),
                "--people",
                str(people),
                "--no-audit",
                "--kdf",
                "floor",
                "--path",
                str(path),
            ],
            check=True,
        )
    return path, generate_store.BENCH_PASSPHRASE


def copy_store(source: Path, dest: Path) -> Path:
    for leftover in (dest, Path(f"{dest}-journal")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(source, dest)
    os.chmod(dest, 0o600)
    return dest


class Size:
    """One store size, made ready once: a copy of its store with the cases imported, and
    the import's write statements captured from an in-process import into another copy."""

    def __init__(self, existing: int, cases_path: Path, contacts_path: Path, work: Path) -> None:
        self.existing = existing
        self.dir = work / f"size-{existing}"
        self.dir.mkdir(parents=True, exist_ok=True)
        template, self.passphrase = existing_store(existing, self.dir)
        self.base = copy_store(template, self.dir / "base.store")
        # --skip-invalid: a generated store can hold two people with the name and date of
        # birth of a row of these files, which strict mode refuses (the same rows are
        # skipped by every contender: the replay is of what tracekit wrote).
        run_tracekit(self.base, ["import", "cases", str(cases_path), "--skip-invalid"], passphrase=self.passphrase)
        self.statements = self.dir / "statements.pickle"
        capture(copy_store(self.base, self.dir / "capture.store"), contacts_path, self.passphrase, self.statements)
        (self.dir / "capture.store").unlink()

    def measure_round(self, contacts_path: Path, rows: int, times: dict[str, list[float]], with_variants: bool) -> None:
        """One run of each contender, in turn, each on a fresh copy; appended to ``times``."""
        contenders = {"bare executemany (same rows, same schema, as shipped)": as_shipped()}
        if with_variants:
            contenders.update({f"replay: {name}": v for name, v in variants().items()})
        run = copy_store(self.base, self.dir / "run.store")
        summary, stats = run_tracekit(
            run, ["import", "contacts", str(contacts_path), "--skip-invalid"], passphrase=self.passphrase
        )
        assert summary["rows"]["imported"] >= 0.99 * rows, summary["rows"]
        times.setdefault("tracekit import contacts", []).append(stats["wall"])
        times.setdefault("_peak_rss_mib", []).append(stats["maxrss_kib"] / 1024)
        db = self.dir / "sqlite-utils.db"
        db.unlink(missing_ok=True)
        seconds = measure_sqlite_utils(contacts_path, db)
        if seconds is not None:
            times.setdefault("sqlite-utils insert --csv", []).append(seconds)
        for label, variant in contenders.items():
            times.setdefault(label, []).append(
                replay(copy_store(self.base, run), self.statements, self.passphrase, variant)
            )
        print(f"  {self.existing:,} existing: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in times.items()), flush=True)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def measure_sizes(
    sizes: list[int], cases_path: Path, contacts_path: Path, rows: int, work: Path, repeat: int, with_variants: bool
) -> dict[int, dict[str, list[float]]]:
    """Seconds of each contender at each size (lists, one per round). Every size is made
    ready first; then each round runs every size in turn, so that the machine's drift over
    the run (on a shared virtual machine, tens of percent) falls on all sizes alike rather
    than on the last ones, and the flatness ratio compares runs made minutes apart."""
    ready = [Size(existing, cases_path, contacts_path, work) for existing in sizes]
    times: dict[int, dict[str, list[float]]] = {size.existing: {} for size in ready}
    try:
        for round_number in range(1, repeat + 1):
            print(f"round {round_number} of {repeat}", flush=True)
            for size in ready:
                size.measure_round(contacts_path, rows, times[size.existing], with_variants)
    finally:
        for size in ready:
            size.remove()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=105_000, help="contacts imported (default 105,000)")
    parser.add_argument("--cases", type=int, default=None, help="their cases, imported first (default rows / 3)")
    parser.add_argument(
        "--existing",
        default="0,35000,200000,1000000",
        help="store sizes (people already in the store), comma-separated; 0 is an empty store",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender per size, alternated (median)")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also replay the import's statements under each connection set-up of variants()",
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the generated files (in bench/out/import)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="profile an in-process import of N rows")
    args = parser.parse_args()
    work = HERE / "out" / "import" if args.keep else Path(tempfile.mkdtemp(prefix="tracekit-bench-import-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.profile:
            profile(args.profile, work)
            return
        cases = args.cases or max(1, args.rows // 3)
        t = time.perf_counter()
        cases_path, contacts_path = generate(work, args.rows, cases)
        print(
            f"Generated {args.rows:,} contacts of {cases:,} cases ({contacts_path.stat().st_size / 2**20:,.0f} MiB) "
            f"in {time.perf_counter() - t:.0f} s",
            flush=True,
        )
        sizes_wanted = [int(n) for n in args.existing.split(",")]
        all_times = measure_sizes(sizes_wanted, cases_path, contacts_path, args.rows, work, args.repeat, args.variants)
        results = {
            existing: {label: statistics.median(values) for label, values in times.items()}
            for existing, times in all_times.items()
        }
        print(f"\nMachine: {machine()}; {args.rows:,} contacts of {cases:,} cases; medians of {args.repeat}\n")
        sizes = list(results)
        print("| what | " + " | ".join(f"{n:,} existing: s (rows/s)" for n in sizes) + " |")
        print("|---|" + "---:|" * len(sizes))
        for label in results[sizes[0]]:
            if label.startswith("_"):
                continue
            cells = [f"{results[n][label]:,.1f} ({args.rows / results[n][label]:,.0f})" for n in sizes]
            print(f"| {label} | " + " | ".join(cells) + " |")
        print(
            "| peak RSS of the import, MiB | " + " | ".join(f"{results[n]['_peak_rss_mib']:,.0f}" for n in sizes) + " |"
        )
        print()
        for n in sizes:
            r = results[n]
            ours = r["tracekit import contacts"]
            line = f"{n:,} existing: tracekit {args.rows / ours:,.0f} rows/s (target >= 100,000)"
            if "sqlite-utils insert --csv" in r:
                line += f"; {r['sqlite-utils insert --csv'] / ours:.2f}x sqlite-utils (target >= 4x)"
            bare = r["bare executemany (same rows, same schema, as shipped)"]
            line += f"; {ours / bare:.2f}x the time of bare executemany (target <= 4x)"
            print(line)
        if 0 in results and len(sizes) > 1:
            largest = max(sizes)
            flat = results[largest]["tracekit import contacts"] / results[0]["tracekit import contacts"]
            rounds = [
                big / empty
                for big, empty in zip(
                    all_times[largest]["tracekit import contacts"],
                    all_times[0]["tracekit import contacts"],
                    strict=True,
                )
            ]
            print(
                f"rate into an empty store / rate at {largest:,} existing: {flat:.2f}x (target <= 1.5x); "
                "round by round: " + ", ".join(f"{r:.2f}x" for r in rounds)
            )
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "rows": args.rows,
                        "cases": cases,
                        "repeat": args.repeat,
                        "machine": machine(),
                        "results": {str(k): v for k, v in results.items()},
                        "runs": {str(k): v for k, v in all_times.items()},
                    },
                    indent=2,
                )
                + "\n"
            )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
