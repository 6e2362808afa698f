"""Central ingest at scale: ``tracekit central ingest`` of 1,000,000 records from bundles
into PostgreSQL, beside a bare ``COPY`` of the very same rows into the same tables, in one run.

    python bench/bench_central_ingest.py [--records 1000000] [--tracers 4] [--rounds 2]

What runs:

* a throwaway PostgreSQL server (tests/central/pgserver.py: initdb in a temporary
  directory, Unix socket only; as root it runs as the ``postgres`` user) with its default
  settings (fsync on), and databases migrated to the central schema;
* ``--tracers`` bundles, one per tracer, made here in the format ``export handover`` writes
  (tracekit's own tar and age writers, JSON Lines and CSV members of 20,000 records, a
  signed manifest) under a central policy with pseudonyms: cases and contacts in a ratio of
  1:4, about 1 in 100 a withheld stub, and every tenth person known to two tracers;
* **ingest**: the CLI in a child process (``central ingest`` of every bundle into an empty
  database): decrypt and verify each bundle (the next one while the current one loads),
  decrypt again in the CLI's worker process streaming every record through the checks into
  ``COPY``, link the pseudonyms, one transaction per bundle. Its peak RSS is the CLI's
  plus its worker's (sampled from /proc); it is also measured for one bundle alone, to
  show that memory does not grow with the number of records;
* **bare COPY**: the rows that ingest wrote, dumped with ``COPY ... TO``, loaded into an
  empty database with the same schema and indexes by ``COPY ... FROM STDIN`` (psycopg's
  copy API, 1 MiB blocks), one transaction: the floor for loading these rows.

Rounds alternate the two (ingest, COPY, ingest, COPY...), each into a fresh database.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import hmac
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from common import machine  # noqa: E402  (bench/common.py, after the path is set)

from tracekit.redaction.policy import CASE_FIELDS, CONTACT_FIELDS, FREE_TEXT_FIELDS  # noqa: E402

CHUNK = 20_000
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: The records' fields as a central policy gives them: every field a handover can carry
#: but free text (and, for cases, the source exposure).
POLICY_FIELDS = {
    "case": [f for f in CASE_FIELDS if f not in FREE_TEXT_FIELDS and f != "source_exposure"],
    "contact": [f for f in CONTACT_FIELDS if f not in FREE_TEXT_FIELDS],
}
SETTINGS = ("household", "workplace", "education", "healthcare", "social", "travel", "other")


def code(n: int, width: int = 6) -> str:
    out = []
    for _ in range(width):
        n, digit = divmod(n, 32)
        out.append(ALPHABET[digit])
    return "".join(reversed(out))


def marker() -> dict[str, object]:
    return {"withheld": "sensitive-role", "referral": None}


def records(tracer: int, count: int, team_key: bytes):  # type: ignore[no-untyped-def]
    """(type, record) as ``export handover`` writes them under the policy above: ordinary
    ones first, then the stubs. Person numbers: a tenth are shared with the next tracer."""
    cases = count // 5
    stubs: list[tuple[str, dict[str, object]]] = []
    for record_type, total in (("case", cases), ("contact", count - cases)):
        for i in range(total):
            serial = tracer * 10_000_000 + i + (0 if record_type == "case" else 5_000_000)
            person = (tracer + 1) * 10_000_000 + i if i % 10 else i  # every tenth: person i, known to every tracer
            day = 1 + i % 28
            if i % 100 == 99:
                stub = {name: marker() for name in POLICY_FIELDS[record_type]}
                stub.update(ref="W-" + code(serial, 16), withheld="sensitive-role", referral=None)
                if record_type == "case":
                    stub.update(
                        test_date=f"2020-10-{day:02d}",
                        status="open",
                        asymptomatic=True,
                        isolation_end=f"2020-11-{day:02d}",
                    )
                else:
                    stub.update(last_exposure=f"2020-10-{day:02d}", close_contact=True, trace_status="not-yet-reached")
                stubs.append((record_type, stub))
                continue
            nhs = f"9{person:09d}"
            record = {
                "ref": ("C-" if record_type == "case" else "E-") + code(serial),
                "person": "P-" + code(person),
                "pseudonym": "PS-" + hmac.new(team_key, f"nhs:{nhs}".encode(), hashlib.sha256).hexdigest()[:24],
                "name": f"Person {person} Example",
                "date_of_birth": "1980-03-04",
                "nhs_number": nhs,
                "phone": f"+4477009{person % 100000:05d}",
                "email": None,
                "address": f"{i % 300} High Street",
                "postcode": "LS1 4AP",
            }
            if record_type == "case":
                record.update(
                    test_date=f"2020-10-{day:02d}",
                    test_type="pcr",
                    test_result="positive",
                    symptom_onset=f"2020-10-{day:02d}",
                    asymptomatic=False,
                    status="open",
                    infectious_start=f"2020-09-{day:02d}",
                    infectious_end=f"2020-10-{day:02d}",
                    isolation_end=f"2020-11-{day:02d}",
                    ruleset="england-2020-05-28",
                    updated_at="2020-10-30T09:00:00+00:00",
                )
            else:
                record.update(
                    case="C-" + code(tracer * 10_000_000 + i // 4),
                    last_exposure=f"2020-10-{day:02d}",
                    setting=SETTINGS[i % 7],
                    proximity_m=1.5,
                    duration_min=20,
                    face_to_face=True,
                    direct_contact=False,
                    close_contact=True,
                    clause="face-to-face-1m",
                    trace_status="reached",
                    isolation_end=f"2020-11-{day:02d}",
                    ruleset="england-2020-05-28",
                    updated_at="2020-10-30T09:00:00+00:00",
                )
            record["withheld"] = False
            yield record_type, record
    yield from stubs


def make_bundle(folder: Path, tracer: int, count: int, team_key: bytes, recipient: str):  # type: ignore[no-untyped-def]
    """One bundle, streamed to disk (tracekit's own tar and age writers); its path and signer fingerprint."""
    import orjson
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from pyrage import x25519

    from tracekit.bundle.writer import _Encryptor, _TarStream
    from tracekit.crypto import signing
    from tracekit.redaction.apply import CsvLayout

    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    bundle_id = hashlib.sha256(f"{tracer}-{public}".encode()).hexdigest()[:32]
    path = folder / f"tracer-{tracer}.tar.age"
    counts = {"cases": 0, "contacts": 0, "referrals": 0, "withheld_sensitive-role": 0}
    with open(path, "wb") as out:
        encryptor = _Encryptor(out, [x25519.Recipient.from_str(recipient)])
        tar = _TarStream(encryptor.sink, time.time())
        chunks: dict[str, list[dict[str, object]]] = {"case": [], "contact": []}
        numbers = {"case": 0, "contact": 0}

        def flush(record_type: str) -> None:
            rows = chunks[record_type]
            if not rows:
                return
            numbers[record_type] += 1
            layout = CsvLayout([*POLICY_FIELDS[record_type], "withheld", "referral"])
            text = io.StringIO()
            text.write("\ufeff")
            writer = csv.writer(text, lineterminator="\r\n")
            writer.writerow(layout.header)
            for row in rows:
                writer.writerow(layout.row(row))
            name = f"records/{record_type}s-{numbers[record_type]:05d}"
            tar.add(name + ".jsonl", b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows))
            tar.add(name + ".csv", text.getvalue().encode())
            rows.clear()

        current = "case"
        for record_type, record in records(tracer, count, team_key):
            if record_type != current and chunks[current]:
                flush(current)
            current = record_type
            chunks[record_type].append(record)
            counts[f"{record_type}s"] += 1
            if record.get("withheld"):
                counts["withheld_sensitive-role"] += 1
            if len(chunks[record_type]) >= CHUNK:
                flush(record_type)
        flush("case")
        flush("contact")
        tar.add("redaction-report.json", b"{}", listed=True)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        manifest = {
            "format": "tracekit-bundle",
            "version": 1,
            "bundle_id": bundle_id,
            "created_at": now,
            "tracekit_version": "0.1.0",
            "tracer_key": {"algorithm": "ed25519", "public_key": public, "fingerprint": signing.fingerprint(public)},
            "recipient": {"name": "Bench", "role": "central-team"},
            "policy": {
                "name": "central-with-pseudonyms",
                "sha256": "0" * 64,
                "kind": "records",
                "definition": {
                    "name": "central-with-pseudonyms",
                    "description": "bench",
                    "kind": "records",
                    "recipient_roles": ["central-team"],
                    "fields": POLICY_FIELDS,
                    "scope": "standard",
                    "role_category": False,
                    "statistics": [],
                },
            },
            "changes": {"since": None, "until": now},
            "record_counts": counts,
            "files": tar.entries,
            "audit_head": "1:" + "a" * 64,
        }
        body = json.dumps(manifest, indent=1, sort_keys=True).encode()
        tar.add("manifest.json", body, listed=False)
        tar.add("manifest.sig", (key.sign(body).hex() + "\n").encode(), listed=False)
        tar.close()
        encryptor.finish()
    return path, signing.fingerprint(public)


def fresh_database(server, name: str) -> str:  # type: ignore[no-untyped-def]
    import psycopg

    from tracekit.central.database import connect, migrate

    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    url = server.url(name)
    conn = connect(url)
    migrate(conn, url)
    conn.close()
    return url


def _tree_rss_kib(pid: int) -> int:
    """The resident memory of ``pid`` and its descendants (the CLI and its worker), from /proc."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                total += next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
            with open(f"/proc/{current}/task/{current}/children") as children:
                pending.extend(map(int, children.read().split()))
        except (OSError, ValueError):
            pass  # gone meanwhile
    return total


def tracekit(url: str, *args: str) -> tuple[float, int, str]:
    """Run the CLI in a child: (seconds, peak RSS in KiB of the child and its worker process together, stdout).

    The peak is sampled from /proc every 20 ms (the sum of the two at each sample), not read
    from rusage: Linux carries a parent's RSS high-water mark into a child's ``ru_maxrss``
    across fork and exec, so rusage would report this script's own memory (the bundles it
    made) as the CLI's."""
    env = {**os.environ, "TRACEKIT_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "tracekit", *args]
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        peak = 0
        while child.poll() is None:
            peak = max(peak, _tree_rss_kib(child.pid))
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"tracekit {' '.join(args[:2])} failed ({child.returncode}): {stderr[-2000:]}")
    return seconds, peak, stdout


def register(url: str, tracers: list[tuple[Path, str]]) -> None:
    for number, (_, fingerprint) in enumerate(tracers):
        tracekit(url, "central", "tracers", "add", "--name", f"Tracer {number}", "--signer", fingerprint)


def ingest(server, tracers, identity: Path, name: str) -> tuple[float, int, str]:  # type: ignore[no-untyped-def]
    url = fresh_database(server, name)
    register(url, tracers)
    seconds, rss, _ = tracekit(url, "central", "ingest", *(str(p) for p, _ in tracers), "--identity", str(identity))
    return seconds, rss, url


def dump_rows(url: str, folder: Path) -> dict[str, Path]:
    import psycopg

    files = {}
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        for table in ("bundles", "cases", "contacts"):
            path = folder / f"{table}.copy"
            with open(path, "wb") as out, cursor.copy(f"COPY {table} TO STDOUT") as copy:
                out.writelines(copy)
            files[table] = path
    return files


def bare_copy(server, files: dict[str, Path], tracers, name: str) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    import psycopg

    url = fresh_database(server, name)
    register(url, tracers)
    rows = 0
    start = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cursor:  # one transaction
        for table in ("cases", "contacts"):
            with open(files[table], "rb") as source, cursor.copy(f"COPY {table} FROM STDIN") as copy:
                while block := source.read(1 << 20):
                    copy.write(block)
            rows += cursor.rowcount
    return time.perf_counter() - start, rows


class _Discard:
    """Stands in for a COPY in the breakdown's "checks, no database" step: takes the rows, keeps nothing."""

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, data: object) -> None:
        return None


def breakdown(server, tracer: tuple[Path, str], identity: Path) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    """Where one bundle's ingest goes, in this process: (wall, CPU) seconds of each step."""
    from tracekit.bundle.reader import load_identities, read_bundle, read_members
    from tracekit.central import ingest as central_ingest
    from tracekit.central.database import connect

    identities = load_identities(identity)
    path = tracer[0]
    steps: dict[str, dict[str, float]] = {}

    def measure(name: str, action) -> object:  # type: ignore[no-untyped-def]
        wall, cpu = time.perf_counter(), time.process_time()
        result = action()
        steps[name] = {"wall": round(time.perf_counter() - wall, 2), "cpu": round(time.process_time() - cpu, 2)}
        return result

    verified = measure("verify pass (decrypt, hash, count)", lambda: read_bundle(path, identities))
    measure(
        "second pass, nothing consumed (decrypt, hash)",
        lambda: read_members(path, identities, verified, lambda name: None),
    )
    layouts = {
        t: central_ingest._RecordTable(t, central_ingest._allowed_fields(verified, t)) for t in central_ingest.TABLES
    }
    totals = central_ingest._Totals()

    def consume(name: str):  # type: ignore[no-untyped-def]
        match = central_ingest._MEMBER.fullmatch(name)
        if match is None:
            return None
        layout = layouts["case" if match.group(1) == "cases" else "contact"]
        return central_ingest._MemberLoader(_Discard(), layout, name, 1, 1, totals)

    measure(
        "second pass with every record parsed and checked (no database)",
        lambda: read_members(path, identities, verified, consume),
    )
    url = fresh_database(server, "breakdown")
    register(url, [tracer])
    conn = connect(url)
    measure("whole ingest of the bundle, in process", lambda: central_ingest.ingest_bundle(conn, url, path, identities))
    files = dump_rows(url, path.parent)
    conn.close()
    measure("bare COPY of its rows", lambda: bare_copy(server, files, [tracer], "breakdown_copy"))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--tracers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--breakdown", action="store_true", help="also time the steps of one bundle's ingest in process"
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # progress lines as they come, also into a file

    from pyrage import x25519

    from tests.central.pgserver import TemporaryPostgres

    folder = Path(tempfile.mkdtemp(prefix="tracekit-bench-central-"))
    server = TemporaryPostgres().start()
    try:
        central = x25519.Identity.generate()
        identity = folder / "central.key"
        identity.write_text(f"{central}\n")
        os.chmod(identity, 0o600)
        team_key = os.urandom(32)
        started = time.perf_counter()
        per_tracer = args.records // args.tracers
        tracers = [make_bundle(folder, t, per_tracer, team_key, str(central.to_public())) for t in range(args.tracers)]
        size = sum(p.stat().st_size for p, _ in tracers)
        print(
            f"made {args.tracers} bundles of {per_tracer:,} records ({size / 1e6:,.0f} MB) in {time.perf_counter() - started:.0f} s"
        )

        one_seconds, one_rss, _ = ingest(server, tracers[:1], identity, "one_bundle")
        print(f"ingest of one bundle ({per_tracer:,} records): {one_seconds:.1f} s, peak RSS {one_rss / 1024:.0f} MiB")
        ingest_runs, copy_runs, rss = [], [], []
        files: dict[str, Path] = {}
        for round_number in range(args.rounds):
            seconds, peak, url = ingest(server, tracers, identity, f"ingest_{round_number}")
            ingest_runs.append(seconds)
            rss.append(peak)
            if not files:
                files = dump_rows(url, folder)
            copy_seconds, rows = bare_copy(server, files, tracers, f"copy_{round_number}")
            copy_runs.append(copy_seconds)
            print(
                f"round {round_number + 1}: ingest {seconds:.1f} s (peak RSS {peak / 1024:.0f} MiB), bare COPY of {rows:,} rows {copy_seconds:.1f} s"
            )
        steps = breakdown(server, tracers[0], identity) if args.breakdown else {}
        for step, times in steps.items():
            print(f"  {step}: {times['wall']:.1f} s wall, {times['cpu']:.1f} s CPU (this process)")
        ingest_median, copy_median = statistics.median(ingest_runs), statistics.median(copy_runs)
        print(
            json.dumps(
                {
                    "machine": machine(),
                    "records": per_tracer * args.tracers,
                    "bundles": args.tracers,
                    "bundle_bytes": size,
                    "ingest_seconds": [round(s, 2) for s in ingest_runs],
                    "bare_copy_seconds": [round(s, 2) for s in copy_runs],
                    "ratio": round(ingest_median / copy_median, 2),
                    "records_per_second": round(per_tracer * args.tracers / ingest_median),
                    "peak_rss_mib": {
                        "one_bundle": round(one_rss / 1024),
                        "all_bundles": [round(r / 1024) for r in rss],
                    },
                    "breakdown_one_bundle": steps,
                },
                indent=1,
            )
        )
    finally:
        server.stop()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
