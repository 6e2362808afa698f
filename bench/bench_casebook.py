"""The case book at scale: `case show`, `person search`, `today` and the lists on a store of
1,000,000 people, beside the fixed cost of starting and unlocking, in the same run.

    python bench/bench_casebook.py [--runs N] [--people N] [--store PATH] [--unlocked]
                                   [--cli-only | --skip-cli] [--try-fixes] [--json FILE]

The store comes from bench/generate_store.py (made first if missing, reused after). The
requirement (issue 3): each of `case show`, `person search` and `today` takes at most 50 ms
beyond the fixed cost of unlocking and starting. Results and their reading are in
docs/performance.md.

Three measurements, all in this one run:

1. The CLI, each command a fresh process, as a tracer runs it (`python -m tracekit ...`,
   passphrase in TRACEKIT_PASSPHRASE so no prompt and no cached key), with compiled
   bytecode as an installed tracekit has (in bench/out/pycache). Rounds are interleaved
   (every command once per round, then the next round) so drift and other load on the
   machine hit every command alike; medians are reported. Baselines: `tracekit --version`
   (start-up only) and `tracekit store info` on an *empty* store with the same Argon2id
   parameters as the big one: start-up + unlock + a trivial query, the fixed cost.
   (`store info` on the big store is shown too: it counts every table, which on this
   store is not trivial.) "beyond fixed" is a command's median minus that; "paired" is
   the median over rounds of the command minus the fixed cost of the same round. Each
   run's CPU time (user + system, from ``wait4``) is reported beside it, paired the same
   way: on a machine shared with other work it moves far less than wall-clock time.
   ``--unlocked`` also runs every store command with the key cached in a fresh kernel
   session keyring (as after ``tracekit unlock``), so no command derives a key and
   Argon2id's round-to-round noise (4 lanes on 2 cores) leaves the comparison.
2. The same operations in-process through the library (a new ``Casebook`` for each, as
   each command makes one), without process start-up, so the query cost is visible on
   its own; SQLCipher's memory security is on, as in the CLI, and then off in a separate
   process, to show its share.
3. Each library operation's SQL statements (captured with a trace callback), timed one by
   one, with EXPLAIN QUERY PLAN for the slow ones. --try-fixes also times the statements
   that were slow before the fixes of migration 7 (c2018c6, 0b13672) against their fixed
   form on a copy of the store, adding any index the store lacks.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import generate_store  # noqa: E402
from common import machine, summary, time_call  # noqa: E402

TARGET_MS = 50.0
NO_PYC_LABEL = "tracekit --version, no bytecode cache (PYTHONDONTWRITEBYTECODE=1)"
IMPORTS_LABEL = "python -c 'import tracekit.cli, tracekit.cli.render, tracekit.records.casebook'"
SLOW_STATEMENT_MS = 5.0


CPU_SAMPLES: dict[str, list[float]] = {}


def interleaved(
    commands: list[tuple[str, list[str], dict[str, str]]], runs: int, base_env: dict[str, str]
) -> dict[str, list[float]]:
    """Wall-clock seconds of each command, ``runs`` rounds of every command in turn
    (after one warm-up round). Every run must exit 0. The CPU seconds (user + system) of
    each run go to CPU_SAMPLES: on a machine shared with other work they move far less
    than wall-clock time, because waiting for a core is not counted."""
    samples: dict[str, list[float]] = {label: [] for label, _, _ in commands}
    CPU_SAMPLES.update({label: [] for label, _, _ in commands})
    for round_ in range(runs + 1):
        for label, argv, env in commands:
            full_env = {k: v for k, v in {**base_env, **env}.items() if v is not None}
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                start = time.perf_counter()
                child = subprocess.Popen(argv, env=full_env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
                _, status, usage = os.wait4(child.pid, 0)
                elapsed = time.perf_counter() - start
                child.returncode = os.waitstatus_to_exitcode(status)
                if child.returncode != 0:
                    err.seek(0)
                    raise SystemExit(
                        f"{label} failed ({child.returncode}): {err.read().decode(errors='replace')[-2000:]}"
                    )
            if round_:
                samples[label].append(elapsed)
                CPU_SAMPLES[label].append(usage.ru_utime + usage.ru_stime)
        print(f"  round {round_}/{runs} done (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    return samples


UNLOCKED = " [unlocked]"
KEYCTL_JOIN_SESSION_KEYRING = 1


def fixed_of(label: str) -> str:
    """The fixed-cost row a command is compared with: the one of its own mode."""
    base = "store info, EMPTY store, same KDF (fixed cost)"
    return base + UNLOCKED if label.endswith(UNLOCKED) else base


def unlocked_commands(
    commands: list[tuple[str, list[str], dict[str, Any]]], fixed_label: str, big: Path, empty: Path, passphrase: str
) -> list[tuple[str, list[str], dict[str, Any]]]:
    """The store commands again, run with the key cached by `tracekit unlock` in a fresh
    session keyring that this process joins (as `keyctl session` does) and its children
    inherit; no passphrase in their environment, so none of them derives a key."""
    from tracekit.crypto import keyring

    keyring._keyctl(KEYCTL_JOIN_SESSION_KEYRING, None)
    for path in (big, empty):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEKIT_")}
        env.update({"TRACEKIT_STORE": str(path), "TRACEKIT_PASSPHRASE": passphrase})
        subprocess.run(
            [sys.executable, "-m", "tracekit", "unlock", "--for", "3h"], env=env, check=True, capture_output=True
        )
    again = []
    for label, argv, env in commands:
        if "TRACEKIT_STORE" in env:
            again.append((label + UNLOCKED, argv, {**env, "TRACEKIT_PASSPHRASE": None}))
    return again


def code_state() -> str:
    """The commit measured, and whether tracekit/ had uncommitted changes (read-only git)."""
    root = HERE.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "tracekit"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"commit {head}" + (f" with uncommitted changes to {', '.join(changed)}" if changed else "")


def pick_samples(conn: Any) -> dict[str, Any]:
    """What to look up: mid-store cases with a typical number of contacts that came from a
    contact (so a chain), a common and a rare surname, a phone as a tracer would type it,
    and the day for `today`."""
    max_case = conn.execute("SELECT max(id) FROM cases").fetchone()[0]
    # Two cases: one whose record and contacts have no free-text note, and one where one of
    # them has (about 30% of cases here): showing a note runs the sensitive-role scrubber,
    # which has a query of its own.
    typical = (
        "SELECT c.ref, (SELECT count(*) FROM exposures e WHERE e.case_id = c.id) AS n FROM cases c "
        "WHERE c.id >= ? AND c.source_exposure_id IS NOT NULL AND n BETWEEN 5 AND 7 AND {notes} ORDER BY c.id LIMIT 1"
    )
    has_notes = (
        "(c.notes IS NOT NULL OR EXISTS (SELECT 1 FROM exposures e WHERE e.case_id = c.id AND e.notes IS NOT NULL))"
    )
    case_ref, contacts = conn.execute(typical.format(notes="NOT " + has_notes), (max_case // 2,)).fetchone()
    noted_ref, noted_contacts = conn.execute(typical.format(notes=has_notes), (max_case // 2,)).fetchone()
    max_person = conn.execute("SELECT max(id) FROM people").fetchone()[0]
    # A number in Ofcom's drama range (07700 900xxx), which tracekit's phone validation
    # accepts, so the search also tries its +44 form as it would for any real number.
    phone = conn.execute(
        "SELECT phone FROM people WHERE id >= ? AND phone LIKE '+447700900%' ORDER BY id LIMIT 1", (max_person // 2,)
    ).fetchone()[0]
    typed_phone = f"0{phone[3:7]} {phone[7:]}"  # +447700912345 -> "07700 912345"
    # The day for `today`: the morning after the data ends (every record is then in the
    # past), at the top of the December surge: the most contacts waiting to be called.
    latest_test = date.fromisoformat(conn.execute("SELECT max(test_date) FROM cases").fetchone()[0])
    busy_day = (latest_test + timedelta(days=1)).isoformat()
    ending = conn.execute("SELECT count(*) FROM exposures WHERE isolation_end = ?", (busy_day,)).fetchone()[0]
    to_call = conn.execute(
        "SELECT count(*) FROM exposures WHERE trace_status = 'not-yet-reached' AND isolation_end >= ?", (busy_day,)
    ).fetchone()[0]
    matches = {
        name: conn.execute("SELECT count(*) FROM people_fts WHERE people_fts MATCH ?", (f'"{name}"',)).fetchone()[0]
        for name in ("smith", "kowalczyk")
    }
    return {
        "matches": matches,
        "case_ref": case_ref,
        "case_contacts": contacts,
        "noted_case_ref": noted_ref,
        "noted_case_contacts": noted_contacts,
        "common_name": "smith",
        "rare_name": "kowalczyk",
        "phone": typed_phone,
        "busy_day": busy_day,
        "busy_day_ending": ending,
        "busy_day_waiting": to_call,
    }


def library_operations(store: Any, s: dict[str, Any], limit: int) -> list[tuple[str, Callable[[], object]]]:
    """Each call uses a new Casebook, as each CLI command does (it caches per instance)."""
    from tracekit.records import Casebook

    day = date.fromisoformat(s["busy_day"])

    def book() -> Any:
        return Casebook(store, today=day)

    def show(ref: str) -> object:
        casebook = book()
        return casebook.get_case(ref), casebook.list_contacts(case_ref=ref, limit=limit)

    return [
        ("get_case (case show --json)", lambda: book().get_case(s["case_ref"])),
        ("get_case + list_contacts(case) (case show)", lambda: show(s["case_ref"])),
        ("the same, a case with a note (case show)", lambda: show(s["noted_case_ref"])),
        (f"search_people('{s['common_name']}')", lambda: book().search_people(s["common_name"])),
        (f"search_people('{s['rare_name']}')", lambda: book().search_people(s["rare_name"])),
        (f"search_people('{s['phone']}')", lambda: book().search_people(s["phone"])),
        (f"worklist({s['busy_day']}) (today)", lambda: book().worklist(day, limit=limit)),
        ("list_cases() (case list)", lambda: book().list_cases(limit=limit)),
        ("list_contacts(status=not-yet-reached)", lambda: book().list_contacts(status="not-yet-reached", limit=limit)),
        ("store.info() (store info)", lambda: store.info()),
    ]


def statements_of(conn: Any, fn: Callable[[], object]) -> list[str]:
    captured: list[str] = []
    conn.set_trace_callback(captured.append)
    try:
        fn()
    finally:
        conn.set_trace_callback(None)
    seen: dict[str, None] = {}
    for sql in captured:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.setdefault(sql, None)
    return list(seen)


def time_statement(conn: Any, sql: str, runs: int = 5) -> float:
    conn.execute(sql).fetchall()
    best = []
    for _ in range(runs):
        start = time.perf_counter()
        conn.execute(sql).fetchall()
        best.append(time.perf_counter() - start)
    return statistics.median(best) * 1000


def plan(conn: Any, sql: str) -> str:
    rows = conn.execute("EXPLAIN QUERY PLAN " + sql).fetchall()
    depth: dict[int, int] = {0: 0}
    lines = []
    for node, parent, _, detail in rows:
        depth[node] = depth.get(parent, 0) + 1
        lines.append("  " * depth[node] + detail)
    return "\n".join(lines)


# The index changes and query shapes recommended for tracekit/ (see docs/performance.md),
# tried on a copy of the store: (name, definition). Each is prefix-compatible with the
# index of the same name it replaces. An index already defined this way (a store migrated
# by a tracekit that has them) is left alone.
FIX_INDEXES = [
    ("exposures_status_date", "CREATE INDEX exposures_status_date ON exposures(trace_status, last_exposure)"),
    ("exposures_worklist", "CREATE INDEX exposures_worklist ON exposures(trace_status, risk_rank, last_exposure DESC)"),
    ("exposures_pending", "CREATE INDEX exposures_pending ON exposures(trace_status, isolation_end, person_id)"),
    ("exposures_isolation_end", "CREATE INDEX exposures_isolation_end ON exposures(isolation_end, risk_rank)"),
    ("cases_person", "CREATE INDEX cases_person ON cases(person_id, status)"),
]


def fix_queries(s: dict[str, Any], limit: int) -> list[tuple[str, str, tuple[Any, ...], str, tuple[Any, ...], str]]:
    """(operation, SQL now, params, SQL recommended, params, what changes) for the slow ones."""
    from tracekit.domain import identifiers as ids
    from tracekit.records import casebook as cbm

    E, P = cbm.EXPOSURE_VIEW.sql, cbm.PERSON_VIEW.sql
    nyr, day = "not-yet-reached", s["busy_day"]
    pending = (
        "e.trace_status = ? AND e.isolation_end >= ? AND NOT EXISTS "
        "(SELECT 1 FROM cases oc WHERE oc.person_id = e.person_id AND oc.status = 'open')"
    )
    search = f"SELECT {P} FROM people_fts f JOIN people p ON p.id = f.rowid WHERE people_fts MATCH ? "
    common = cbm._search_query(s["common_name"])
    phone_query = cbm._search_query(s["phone"])
    phone = ids.normalise_phone(s["phone"])
    return [
        (
            "sensitive-role scrubber, first note shown (Casebook._scrub)",
            f"SELECT {P} FROM person_roles r JOIN people p ON p.id = r.person_id WHERE p.referral_id IS NULL",
            (),
            f"SELECT {P} FROM person_roles r CROSS JOIN people p ON p.id = r.person_id WHERE p.referral_id IS NULL",
            (),
            "CROSS JOIN: loop over the (few) marked people, not over every person",
        ),
        (
            "contact list --status not-yet-reached (rows)",
            f"SELECT {E} FROM exposures e JOIN people p ON p.id = e.person_id WHERE e.trace_status = ? "
            "ORDER BY e.last_exposure DESC, e.id DESC LIMIT ? OFFSET 0",
            (nyr, limit),
            None,
            (),
            "index exposures(trace_status, last_exposure): the ORDER BY is read off the index, LIMIT stops early",
        ),
        (
            "today: count to call",
            f"SELECT count(*) FROM exposures e INDEXED BY exposures_worklist WHERE {pending}",
            (nyr, day),
            f"SELECT count(*) FROM exposures e WHERE {pending}",
            (nyr, day),
            "drop INDEXED BY from the count; covering index exposures(trace_status, isolation_end, person_id) "
            "and cases(person_id, status)",
        ),
        (
            "today: count to call, capped at 1,000",
            f"SELECT count(*) FROM exposures e INDEXED BY exposures_worklist WHERE {pending}",
            (nyr, day),
            f"SELECT count(*) FROM (SELECT 1 FROM exposures e WHERE {pending} LIMIT 1001)",
            (nyr, day),
            "or show '1,000+' instead of an exact count: the count stops after 1,001 rows",
        ),
        (
            "today: to call (rows)",
            f"SELECT {E} FROM exposures e INDEXED BY exposures_worklist JOIN people p ON p.id = e.person_id "
            f"WHERE {pending} ORDER BY e.risk_rank, e.last_exposure DESC, e.id LIMIT ?",
            (nyr, day, limit),
            None,
            (),
            "exposures_worklist as (trace_status, risk_rank, last_exposure DESC): matches the ORDER BY",
        ),
        (
            "today: isolation ending (rows)",
            f"SELECT {E} FROM exposures e JOIN people p ON p.id = e.person_id WHERE e.isolation_end = ? "
            "ORDER BY e.risk_rank, e.id LIMIT ?",
            (day, limit),
            None,
            (),
            "exposures_isolation_end as (isolation_end, risk_rank)",
        ),
        (
            f"person search {s['common_name']}: rank every match",
            search + "ORDER BY f.rank LIMIT ?",
            (common, 20),
            f"SELECT {P} FROM (SELECT rowid, rank FROM people_fts WHERE people_fts MATCH ? LIMIT 200) f "
            "JOIN people p ON p.id = f.rowid ORDER BY f.rank LIMIT ?",
            ('"' + s["common_name"] + '"', 20),
            "one phrase per case-insensitive variant; rank only the first 200 matches",
        ),
        (
            f"person search {s['common_name']}: newest first",
            search + "ORDER BY f.rank LIMIT ?",
            (common, 20),
            search + "ORDER BY f.rowid DESC LIMIT ?",
            ('"' + s["common_name"] + '"', 20),
            "or order by rowid DESC (newest first), which FTS5 serves without ranking",
        ),
        (
            f"person search '{s['phone']}'",
            search + "ORDER BY f.rank LIMIT ?",
            (phone_query, 20),
            f"SELECT {P} FROM people p WHERE p.phone = ? LIMIT ?",
            (phone, 20),
            "a full phone number: exact lookup on index people_phone (FTS only for part of a number)",
        ),
    ]


def try_fixes(
    path: Path, passphrase: str, s: dict[str, Any], limit: int, runs: int
) -> tuple[list[str], list[dict[str, Any]]]:
    """Time the slow statements on a copy of the store, before and after the fixes."""
    import shutil

    from tracekit import audit
    from tracekit.store import open_store

    lines, results = [], []
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        copy = Path(tmp) / "fixes.store"
        shutil.copyfile(path, copy)
        store = open_store(copy, bytearray(passphrase.encode()))
        conn = store.conn
        queries = fix_queries(s, limit)
        before = {name: time_statement(conn, conn_sql(sql, params), runs) for name, sql, params, *_ in queries}
        head_now = statistics.median(time_call(lambda: audit._head(conn), 3)) * 1000
        head_sql = "SELECT seq, hash FROM audit_log ORDER BY rowid DESC LIMIT 1"
        head_fix = time_statement(conn, head_sql, runs)
        assert conn.execute(head_sql).fetchone() == (audit._head(conn) if conn.execute(head_sql).fetchone() else None)
        for name, ddl in FIX_INDEXES:
            row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)).fetchone()
            if row and " ".join(row[0].split()) == ddl:
                lines.append(f"   already there  {ddl}")
                continue
            started = time.perf_counter()
            with store.transaction() as c:
                if row:
                    c.execute(f"DROP INDEX {name}")
                c.execute(ddl)
            lines.append(f"{(time.perf_counter() - started):6.1f} s  {'DROP INDEX ' + name + '; ' if row else ''}{ddl}")
        for name, sql, params, new_sql, new_params, change in queries:
            final = conn_sql(new_sql or sql, new_params if new_sql else params)
            after = time_statement(conn, final, runs)
            results.append(
                {
                    "operation": name,
                    "now_ms": round(before[name], 2),
                    "fixed_ms": round(after, 2),
                    "change": change,
                    "plan_after": plan(conn, final),
                }
            )
        results.append(
            {
                "operation": "audit head on every write (audit._head as it is now)",
                "now_ms": round(head_now, 2),
                "fixed_ms": round(head_fix, 2),
                "change": "ORDER BY rowid DESC (rows are appended in seq order) or index audit_log(seq)",
                "plan_after": "",
            }
        )
        store.close()
    return lines, results


def conn_sql(sql: str, params: tuple[Any, ...]) -> str:
    """Inline parameters (ints and quoted strings) so the statement can be timed and explained as is."""
    parts = sql.split("?")
    assert len(parts) == len(params) + 1, sql
    out = [parts[0]]
    for value, rest in zip(params, parts[1:]):
        out.append(str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'")
        out.append(rest)
    return "".join(out)


def shorten(sql: str, width: int = 220) -> str:
    sql = " ".join(sql.split())
    return sql if len(sql) <= width else sql[: width - 3] + "..."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11, help="CLI rounds and library runs (medians)")
    parser.add_argument("--people", type=int, default=generate_store.DEFAULT_PEOPLE)
    parser.add_argument("--store", type=Path, help="default: bench/out/casebook-1m.store (or casebook-N.store)")
    parser.add_argument("--skip-cli", action="store_true", help="library and SQL measurements only")
    parser.add_argument(
        "--try-fixes",
        action="store_true",
        help="also time the slow statements on a copy of the store with the recommended indexes",
    )
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument(
        "--memory-security",
        choices=("on", "off"),
        default="on",
        help="off: open the store without SQLCipher's memory security (a diagnostic; tracekit always turns it on)",
    )
    parser.add_argument("--cli-only", action="store_true", help="the CLI measurements only")
    parser.add_argument(
        "--target-only",
        action="store_true",
        help="only issue 3's commands (case show, person search, today) beside --version and the "
        "fixed cost: more rounds in the same time",
    )
    parser.add_argument(
        "--unlocked",
        action="store_true",
        help="also run every CLI command with the store unlocked (key cached in a fresh "
        "kernel session keyring, as after `tracekit unlock`): no Argon2id in the "
        "command, so its +-150 ms of noise leaves the comparison",
    )
    parser.add_argument("--library-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    path = args.store or generate_store.default_path(args.people)
    facts = generate_store.ensure_store(path, args.people)
    passphrase = facts.get("passphrase", generate_store.BENCH_PASSPHRASE)
    loads = [os.getloadavg()[0]]

    from tracekit.cli.options import DEFAULT_LIMIT
    from tracekit.store import create_store, open_store, read_header

    header = read_header(path)
    started = time.perf_counter()
    if args.memory_security == "off":
        with generate_store._without_memory_security():
            store = open_store(path, bytearray(passphrase.encode()))
    else:
        store = open_store(path, bytearray(passphrase.encode()))
    open_ms = (time.perf_counter() - started) * 1000
    conn = store.conn
    samples = pick_samples(conn)
    schema_version = store.schema_version()
    from tracekit.records import Casebook

    for text in (samples["phone"], samples["common_name"]):
        if not Casebook(store).search_people(text):
            raise SystemExit(
                f"searching the store for {text!r} finds nobody: it was made by an older generator or "
                f"tracekit; remake it with bench/generate_store.py --force"
            )
    report: dict[str, Any] = {
        "machine": machine(),
        "store": facts,
        "samples": samples,
        "kdf": header.kdf.describe(),
        "code": code_state(),
    }

    # -- 2. the library, in-process --------------------------------------------------------
    print(f"Library, in-process ({args.runs} runs each, after one warm-up)...", file=sys.stderr, flush=True)
    library_rows = []
    operations = library_operations(store, samples, DEFAULT_LIMIT)
    for label, fn in operations if not args.cli_only else []:
        library_rows.append((label, summary(time_call(fn, args.runs))))
    loads.append(os.getloadavg()[0])
    if args.library_only:
        store.close()
        if args.json:
            args.json.write_text(json.dumps({label: s for label, s in library_rows}, indent=2) + "\n", encoding="utf-8")
        return
    # The same without SQLCipher's memory security, in a process of its own (once on, it
    # stays on for the whole process): how much of each query is mlock/munlock and wiping.
    without_memsec: dict[str, Any] = {}
    if not args.cli_only:
        print("Library again, memory security off (a separate process)...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            out_json = Path(tmp) / "off.json"
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--store",
                    str(path),
                    "--people",
                    str(args.people),
                    "--runs",
                    str(args.runs),
                    "--library-only",
                    "--memory-security",
                    "off",
                    "--json",
                    str(out_json),
                ],
                check=True,
            )
            without_memsec = json.loads(out_json.read_text(encoding="utf-8"))

    # -- 3. the SQL of each operation ------------------------------------------------------
    statement_report = []
    for label, fn in operations if not args.cli_only else []:
        for sql in statements_of(conn, fn):
            ms = time_statement(conn, sql)
            entry = {"operation": label, "ms": round(ms, 2), "sql": " ".join(sql.split())}
            if ms >= SLOW_STATEMENT_MS:
                entry["plan"] = plan(conn, sql)
            statement_report.append(entry)
    store.close()
    fix_lines: list[str] = []
    fix_results: list[dict[str, Any]] = []
    if args.try_fixes and not args.cli_only:
        print("Trying the recommended fixes on a copy of the store...", file=sys.stderr, flush=True)
        fix_lines, fix_results = try_fixes(path, passphrase, samples, DEFAULT_LIMIT, args.runs)

    # -- 1. the CLI ------------------------------------------------------------------------
    cli_rows: list[tuple[str, dict[str, float]]] = []
    fixed_label = "store info, EMPTY store, same KDF (fixed cost)"
    if not args.skip_cli:
        py = sys.executable
        tk = [py, "-m", "tracekit"]
        big = {"TRACEKIT_STORE": str(path), "TRACEKIT_PASSPHRASE": passphrase}
        with tempfile.TemporaryDirectory() as tmp:
            empty = Path(tmp) / "empty.store"
            create_store(empty, bytearray(passphrase.encode()), kdf=header.kdf).close()
            small = {"TRACEKIT_STORE": str(empty), "TRACEKIT_PASSPHRASE": passphrase}
            commands = [
                ("tracekit --version (start-up only)", [*tk, "--version"], {}),
                (NO_PYC_LABEL, [*tk, "--version"], {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": ""}),
                ("python -c 'import tracekit.cli'", [py, "-c", "import tracekit.cli"], {}),
                (IMPORTS_LABEL, [py, "-c", "import tracekit.cli, tracekit.cli.render, tracekit.records.casebook"], {}),
                (fixed_label, [*tk, "store", "info"], small),
                ("store info, big store (counts every table)", [*tk, "store", "info"], big),
                (f"case show {samples['case_ref']}", [*tk, "case", "show", samples["case_ref"]], big),
                (
                    f"case show {samples['noted_case_ref']} (has a note)",
                    [*tk, "case", "show", samples["noted_case_ref"]],
                    big,
                ),
                (f"person search {samples['common_name']}", [*tk, "person", "search", samples["common_name"]], big),
                (f"person search {samples['rare_name']}", [*tk, "person", "search", samples["rare_name"]], big),
                (f"person search '{samples['phone']}'", [*tk, "person", "search", samples["phone"]], big),
                (f"today --date {samples['busy_day']}", [*tk, "today", "--date", samples["busy_day"]], big),
                ("case list", [*tk, "case", "list"], big),
                ("contact list --status not-yet-reached", [*tk, "contact", "list", "--status", "not-yet-reached"], big),
            ]
            if args.target_only:
                targets = ("tracekit --version (start-up only)", fixed_label, "case show", "person search", "today")
                commands = [c for c in commands if c[0].startswith(targets)]
            if args.unlocked:
                commands += unlocked_commands(commands, fixed_label, path, empty, passphrase)
            print(f"CLI, {len(commands)} commands x {args.runs} interleaved rounds...", file=sys.stderr, flush=True)
            # Like an installed tracekit, with compiled bytecode: this sandbox sets
            # PYTHONDONTWRITEBYTECODE=1, so the CLI would otherwise compile every module
            # on every run. The bytecode goes to bench/out/pycache, not into the source tree.
            base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            base_env["PYTHONPYCACHEPREFIX"] = str(generate_store.OUT / "pycache")
            timings = interleaved(commands, args.runs, base_env)
        cli_rows = [(label, summary(timings[label])) for label, _, _ in commands]
        # Each command minus the fixed cost measured in the same round: pairs cancel the
        # drift that other load on the machine puts on whole rounds.
        paired = {
            label: statistics.median([(c - f) * 1000 for c, f in zip(timings[label], timings[fixed_of(label)])])
            for label, _, _ in commands
        }
        report["cli_samples_s"] = timings
        report["cli_cpu_samples_s"] = CPU_SAMPLES
        cpu_paired = {
            label: statistics.median([(c - f) * 1000 for c, f in zip(CPU_SAMPLES[label], CPU_SAMPLES[fixed_of(label)])])
            for label, _, _ in commands
        }
        loads.append(os.getloadavg()[0])

    # -- the report ------------------------------------------------------------------------
    c = facts["counts"]
    print(f"Machine: {machine()}")
    print(f"tracekit: {report['code']}; schema version {schema_version}")
    print(
        f"Store: {path} ({facts['size_bytes'] / 2**20:,.0f} MiB; {c['people']:,} people, {c['cases']:,} cases, "
        f"{c['exposures']:,} exposures, {c['call_attempts']:,} call attempts, {c['audit_log']:,} audit entries; "
        f"made in {facts['generation_seconds']} s); key derivation {header.kdf.describe()}"
    )
    print(
        f"Samples: case {samples['case_ref']} ({samples['case_contacts']} contacts, came from a contact); "
        f"`today` on {samples['busy_day']}, the day after the data ends ({samples['busy_day_waiting']:,} contacts "
        f"not yet reached and still isolating, {samples['busy_day_ending']:,} isolations ending)"
    )
    print(f"Search fragments: {', '.join(f'{n!r} matches {c:,} people' for n, c in samples['matches'].items())}")
    print(
        f"Load average (1 min) before/after: {', '.join(f'{x:.1f}' for x in loads)}; "
        f"in-process open_store (Argon2id + open): {open_ms:.0f} ms\n"
    )
    if cli_rows:
        medians = dict(cli_rows)
        print("CLI (each a new process; medians of interleaved rounds):\n")
        lines = [
            "| command | median ms | min ms | max ms | runs | beyond fixed cost ms | same, paired by round | target "
            "| CPU ms (median) | beyond, CPU, paired |",
            "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
        for label, s in cli_rows:
            beyond = s["median_ms"] - medians[fixed_of(label)]["median_ms"]
            baseline = label.startswith(("tracekit --version", "store info", "python -c"))
            verdict = "" if baseline else ("met" if paired[label] <= TARGET_MS else "NOT met")
            shown = not (
                label in (fixed_label, fixed_of(fixed_label + UNLOCKED))
                or label.startswith(("tracekit --version", "python -c"))
            )
            beyond_text = f"{beyond:+.1f} | {paired[label]:+.1f}" if shown else " | "
            cpu_ms = statistics.median(CPU_SAMPLES[label]) * 1000
            cpu_beyond = f"{cpu_paired[label]:+.1f}" if shown else ""
            lines.append(
                f"| {label} | {s['median_ms']:.1f} | {s['min_ms']:.1f} | {s['max_ms']:.1f} | "
                f"{int(s['runs'])} | {beyond_text} | {verdict} | {cpu_ms:.1f} | {cpu_beyond} |"
            )
        print("\n".join(lines) + "\n")
    if library_rows:
        print("Library, in-process (no start-up, no unlock); memory security on, as in the CLI, and off:\n")
        lines = [
            "| operation | median ms | min ms | max ms | runs | median ms, memory security off |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for label, s in library_rows:
            off = without_memsec.get(label, {}).get("median_ms")
            lines.append(
                f"| {label} | {s['median_ms']:.1f} | {s['min_ms']:.1f} | {s['max_ms']:.1f} | {int(s['runs'])} | "
                + (f"{off:.1f} |" if off is not None else " |")
            )
        print("\n".join(lines) + "\n")
    if statement_report:
        print(f"SQL statements of each operation (median of 5; plans for those over {SLOW_STATEMENT_MS:g} ms):\n")
    for entry in statement_report:
        print(f"- {entry['ms']:8.2f} ms  [{entry['operation']}]  {shorten(entry['sql'])}")
        if "plan" in entry:
            print("    " + entry["plan"].replace("\n", "\n    "))
    if fix_results:
        print(
            "\nRecommended fixes, tried on a copy of the store (in-process, median ms). 'before': the statement "
            "as tracekit ran it before the fixes (commit da4b2e6), on the store's indexes as they are:\n"
        )
        print("Index changes (time to build on this store):\n")
        print("\n".join("    " + line for line in fix_lines) + "\n")
        print("| statement | before ms | with fix ms | change |\n|---|---:|---:|---|")
        for r in fix_results:
            print(f"| {r['operation']} | {r['now_ms']:.2f} | {r['fixed_ms']:.2f} | {r['change']} |")
        for r in fix_results:
            if r["plan_after"]:
                print(f"\nplan with fix, {r['operation']}:\n    " + r["plan_after"].replace("\n", "\n    "))
    report.update(
        {
            "fixes": fix_results,
            "fix_indexes": fix_lines,
            "loads": loads,
            "open_store_ms": open_ms,
            "cli": {label: s for label, s in cli_rows},
            "library": {label: s for label, s in library_rows},
            "library_memory_security_off": without_memsec,
            "statements": statement_report,
        }
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
