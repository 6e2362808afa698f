"""Every user-facing command of the CLI against one large store, as a user runs it.

    python bench/scale_run.py [--store PATH] [--work DIR] [--json FILE] [--reads-only]
                              [--only SUBSTRING ...] [--keep-work]

Default store: bench/out/casebook-1m-5m.store (made by
``bench/generate_store.py --people 1000000 --exposures 5000000 --path ...``); its passphrase
comes from the sidecar ``<store>.json``. Run it niced on a shared machine:
``nice -n 10 .venv/bin/python bench/scale_run.py``.

What it does. Each command is a child process of ``.venv/bin/tracekit`` (the installed entry
point), started exactly as a script would start it: ``--store PATH`` and the passphrase
through a pipe with ``--passphrase-fd N`` (so it is in no argument or environment), no
cached key (``unlock`` runs only near the end, and ``lock`` right after it), compiled
bytecode as an installed tracekit has (in bench/out/pycache). For each command: wall-clock
seconds, the command's peak RSS, its exit code, and a one-line check that the output is
sane (a count, a reference, "OK", a file written...). ``tracekit --version`` is the
baseline. The peak RSS is GNU time's ``%M`` (``/usr/bin/time`` runs the command): the
rusage of a child forked straight from this script would not do, because Linux keeps a
process's high-water mark across exec, so every child would start at this script's size.

Order. The read-only commands run first, on the store itself, which is left exactly as it
was. ``store backup`` then writes a copy into the work directory (default
bench/out/scale-run/, deleted at the end unless --keep-work), and every command that
writes (recipients, keys, case/contact/person changes, roles and a referral, imports, the
handover exports, rules pin/unpin, store passwd) runs on that copy, in an order where each
can use what the previous made (a new case, then a contact of it, then calls...). The
bundles are verified, inspected and opened like a central team would. Last, the copy is
checked again (``audit verify``), and ``init`` and ``demo`` run on stores of their own.

An interactive command (a tracer waiting at the prompt) slower than 10 s, any command that
fails, or a sanity check that fails, is flagged in the table; docs/performance.md has the
results and their reading.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
import generate_store  # noqa: E402
from common import machine  # noqa: E402

TRACEKIT = ROOT / ".venv" / "bin" / "tracekit"
TIME = "/usr/bin/time"  # GNU time, for the peak RSS
DEFAULT_STORE = generate_store.OUT / "casebook-1m-5m.store"
INTERACTIVE_LIMIT_S = 10.0
# rules pin/unpin recompute every case and contact one row at a time (about 2 ms a contact on
# a 100,000-contact store): hours at 5,000,000, so they are stopped after this long.
PIN_TIMEOUT_S = 1200.0
AUDIT_ALL_TIMEOUT_S = 300.0
AUDIT_ALL_MEMORY = 4 << 30
REF = r"\b{kind}-[0-9A-Z]{{6}}\b"

Check = Callable[[int, str, str, dict[str, Any]], tuple[bool, str]]


@dataclass
class Cmd:
    label: str
    args: list[str] | Callable[[dict[str, Any]], list[str]]
    check: Check
    kind: str = "interactive"  # or "batch": expected to take a while (checks, backups, exports, imports)
    store: str | None = "main"  # "main", "work" (the copy) or None (no store option, no passphrase)
    expect: int = 0
    passphrase: str | None = None  # another passphrase (a wrong one, or the new one after passwd)
    extra_fds: Callable[[dict[str, Any]], dict[str, bytes]] | None = None  # more pipes: {placeholder: content}
    after: Callable[[str, dict[str, Any]], None] | None = None  # reads what the command printed
    env: dict[str, str] = field(default_factory=dict)
    also_ok: tuple[int, ...] = ()  # exit codes that are not a failure of tracekit (e.g. 14: no keyring here)
    timeout: float | None = None  # stop it after this many seconds (reported as a finding)
    needs: str | None = None  # run only if ctx has this key (set by an earlier command)
    memory_limit: int | None = None  # bytes of address space (RLIMIT_AS), for a command that could take them all


# ------------------------------------------------------------------------------- checks


def has(*needles: str) -> Check:
    def check(rc: int, out: str, err: str, ctx: dict[str, Any]) -> tuple[bool, str]:
        text = out + err
        missing = [n for n in needles if n.format(**ctx) not in text]
        return (
            not missing,
            "has " + ", ".join(repr(n.format(**ctx)) for n in needles)
            if not missing
            else "missing " + ", ".join(repr(n.format(**ctx)) for n in missing),
        )

    return check


def matches(pattern: str, what: str) -> Check:
    def check(rc: int, out: str, err: str, ctx: dict[str, Any]) -> tuple[bool, str]:
        found = re.search(pattern, out + err, re.S)
        return (bool(found), (what + ": " + " ".join(found.group(0).split())[:70]) if found else f"no {what}")

    return check


def first_line() -> Check:
    def check(rc: int, out: str, err: str, ctx: dict[str, Any]) -> tuple[bool, str]:
        text = next((line.strip() for line in (out + "\n" + err).splitlines() if line.strip()), "")
        return bool(text), "says: " + " ".join(text.split())[:70]

    return check


def lines_at_least(n: int, what: str) -> Check:
    def check(rc: int, out: str, err: str, ctx: dict[str, Any]) -> tuple[bool, str]:
        count = len([line for line in out.splitlines() if line.strip()])
        return count >= n, f"{count} lines of {what}"

    return check


def exit_is(code: int, needle: str = "") -> Check:
    def check(rc: int, out: str, err: str, ctx: dict[str, Any]) -> tuple[bool, str]:
        ok = rc == code and needle.format(**ctx) in out + err
        return ok, f"exit {rc} as expected" + (f", says {needle!r}" if needle else "")

    return check


def file_written(key: str, min_bytes: int = 1) -> Check:
    def check(rc: int, out: str, err: str, ctx: dict[str, Any]) -> tuple[bool, str]:
        path = ctx.get(key)
        if not path or not Path(path).exists():
            return False, f"{key} not written"
        size = (
            Path(path).stat().st_size
            if Path(path).is_file()
            else sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())
        )
        return size >= min_bytes, f"{Path(path).name}: {size / 2**20:,.1f} MiB"

    return check


def both(*checks: Check) -> Check:
    def check(rc: int, out: str, err: str, ctx: dict[str, Any]) -> tuple[bool, str]:
        results = [c(rc, out, err, ctx) for c in checks]
        return all(ok for ok, _ in results), "; ".join(note for _, note in results)

    return check


def capture(key: str, pattern: str, group: int = 0) -> Callable[[str, dict[str, Any]], None]:
    def after(text: str, ctx: dict[str, Any]) -> None:
        found = re.search(pattern, text)
        if found:
            ctx[key] = found.group(group)

    return after


def capture_bundle(key: str) -> Callable[[str, dict[str, Any]], None]:
    def after(text: str, ctx: dict[str, Any]) -> None:
        found = re.findall(r"\S+\.tar\.age", text.replace("\n", ""))
        out_dir = Path(ctx["work"]) / "bundles"
        candidates = sorted(out_dir.glob("*.tar.age"), key=lambda p: p.stat().st_mtime)
        if found and Path(found[-1]).exists():
            ctx[key] = found[-1]
        elif candidates:
            ctx[key] = str(candidates[-1])

    return after


# ------------------------------------------------------------------------------ samples


def pick_samples(path: Path, passphrase: str) -> dict[str, Any]:
    """References and values to look up, read in-process (not timed)."""
    from tracekit.store import open_store

    with generate_store._without_memory_security():
        store = open_store(path, bytearray(passphrase.encode()))
    conn = store.conn
    one = lambda sql, *p: conn.execute(sql, p).fetchone()  # noqa: E731
    started = time.perf_counter()
    max_case = one("SELECT max(id) FROM cases")[0]
    max_exposure = one("SELECT max(id) FROM exposures")[0]
    max_person = one("SELECT max(id) FROM people")[0]
    s: dict[str, Any] = {}
    latest = date.fromisoformat(one("SELECT max(test_date) FROM cases")[0])
    s["busy_day"] = (latest + timedelta(days=1)).isoformat()
    s["week_from"], s["week_to"] = (latest - timedelta(days=6)).isoformat(), latest.isoformat()
    s["case"] = one(
        "SELECT ref FROM cases WHERE id >= ? AND source_exposure_id IS NOT NULL AND notes IS NULL ORDER BY id LIMIT 1",
        max_case // 2,
    )[0]
    s["noted_case"] = one(
        "SELECT ref FROM cases WHERE id >= ? AND notes IS NOT NULL ORDER BY id LIMIT 1", max_case // 2
    )[0]
    big_case_id, s["big_case_contacts"] = one(
        "SELECT case_id, count(*) AS n FROM exposures GROUP BY case_id ORDER BY n DESC LIMIT 1"
    )
    s["big_case"] = one("SELECT ref FROM cases WHERE id = ?", big_case_id)[0]
    # A case two links down a chain (a contact of a contact who became a case).
    s["chain_case"] = one(
        "SELECT c2.ref FROM cases c2 JOIN exposures e ON e.id = c2.source_exposure_id JOIN cases c1 ON c1.id = e.case_id "
        "WHERE c2.id >= ? AND c1.source_exposure_id IS NOT NULL ORDER BY c2.id LIMIT 1",
        max_case // 2,
    )[0]
    s["contact"] = one(
        "SELECT e.ref FROM exposures e WHERE e.id >= ? AND EXISTS "
        "(SELECT 1 FROM call_attempts a WHERE a.exposure_id = e.id) ORDER BY e.id LIMIT 1",
        max_exposure // 2,
    )[0]
    busy_person_id, s["busy_person_exposures"] = one(
        "SELECT person_id, count(*) AS n FROM exposures GROUP BY person_id ORDER BY n DESC LIMIT 1"
    )
    s["busy_person"] = one("SELECT ref FROM people WHERE id = ?", busy_person_id)[0]
    person_id, s["person"], nhs, postcode = one(
        "SELECT id, ref, nhs_number, postcode FROM people WHERE id >= ? AND nhs_number IS NOT NULL "
        "AND postcode IS NOT NULL ORDER BY id LIMIT 1",
        max_person // 3,
    )
    s["nhs"] = f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"
    s["postcode"] = postcode
    phone = one(
        "SELECT phone FROM people WHERE id >= ? AND phone LIKE '+447700900%' ORDER BY id LIMIT 1", max_person // 2
    )[0]
    s["phone"] = f"0{phone[3:7]} {phone[7:]}"
    s["matches_smith"] = one("SELECT count(*) FROM people_fts WHERE people_fts MATCH '\"smith\"'")[0]
    # For the writes (on the copy): people without a case, so nothing they touch collides.
    no_case = (
        "SELECT p.id, p.ref FROM people p WHERE p.id >= ? AND NOT EXISTS "
        "(SELECT 1 FROM cases c WHERE c.person_id = p.id) ORDER BY p.id LIMIT 1"
    )
    s["contact_person_id"], s["contact_person"] = one(no_case, max_person // 4)
    keep_id, s["merge_keep"] = one(no_case, max_person * 3 // 10)
    other_id, s["merge_other"] = one(no_case, max_person * 6 // 10)
    shared = one(
        "SELECT count(*) FROM exposures a JOIN exposures b ON a.case_id = b.case_id "
        "WHERE a.person_id = ? AND b.person_id = ?",
        keep_id,
        other_id,
    )[0]
    s["merge_shared_cases"] = shared
    s["update_person"] = one(no_case, max_person * 7 // 10)[1]
    s["unmark_person"] = one(no_case, max_person * 8 // 10)[1]
    s["to_call"] = one("SELECT ref FROM exposures WHERE trace_status = 'not-yet-reached' ORDER BY id DESC LIMIT 1")[0]
    s["to_update"] = one(
        "SELECT ref FROM exposures WHERE trace_status = 'not-yet-reached' ORDER BY id DESC LIMIT 1 OFFSET 5"
    )[0]
    s["promote_person"] = one(
        "SELECT p.ref FROM exposures e JOIN people p ON p.id = e.person_id WHERE e.trace_status = 'not-yet-reached' "
        "AND e.close_contact = 1 AND e.id >= ? AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.person_id = e.person_id) "
        "ORDER BY e.id LIMIT 1",
        max_exposure * 9 // 10,
    )[0]
    # The person to mark and refer: an index case (not from a contact) with contacts.
    marked_person, marked_case, marked_case_id = one(
        "SELECT p.ref, c.ref, c.id FROM cases c JOIN people p ON p.id = c.person_id WHERE c.id >= ? "
        "AND c.source_exposure_id IS NULL AND c.status = 'closed' ORDER BY c.id LIMIT 1",
        max_case * 4 // 10,
    )
    s["mark_person"], s["mark_case"] = marked_person, marked_case
    s["release_contact"] = one("SELECT ref FROM exposures WHERE case_id = ? ORDER BY id LIMIT 1", marked_case_id)[0]
    # Cases for the small contacts import (by reference), and the next free drama-range-free name.
    s["import_cases"] = [
        r[0] for r in conn.execute("SELECT ref FROM cases WHERE status = 'open' ORDER BY id DESC LIMIT 5").fetchall()
    ]
    s["ruleset_in_force"] = "england-2020-12-14"
    s["sample_seconds"] = round(time.perf_counter() - started, 1)
    store.close()
    return s


# ----------------------------------------------------------------------------- commands


def write_inputs(ctx: dict[str, Any]) -> None:
    """Small files for the import, policy and pseudonym commands, and the teams' age keys."""
    from pyrage import x25519

    work = Path(ctx["work"])
    for name in ("central", "vetted"):
        identity = x25519.Identity.generate()
        key_file = work / f"{name}.agekey"
        key_file.write_text(f"# made by bench/scale_run.py\n{identity}\n", encoding="utf-8")
        key_file.chmod(0o600)
        ctx[f"{name}_identity"] = str(key_file)
        ctx[f"{name}_public"] = str(identity.to_public())
    cases = [
        "external_id,name,date_of_birth,phone,postcode,occupation,test_date,test_type,test_result,"
        "symptom_onset,asymptomatic,notes"
    ]
    for i in range(10):
        cases.append(
            f"SCALE-C-{i:03d},Scale Importcase{chr(65 + i)},{1 + i:02d}/03/1980,,LS6 {i}AB,teacher,"
            f"30/12/2020,pcr,positive,28/12/2020,no,"
        )
    (work / "cases.csv").write_text("\r\n".join(cases) + "\r\n", encoding="utf-8")
    contacts = [
        "external_id,case_external_id,case_ref,name,date_of_birth,phone,postcode,last_exposure,setting,"
        "proximity_m,duration_min,face_to_face,direct_contact,notes"
    ]
    for i in range(40):
        by_external = i % 2 == 0
        case_external = f"SCALE-C-{i % 10:03d}" if by_external else ""
        case_ref = "" if by_external else ctx["import_cases"][i % len(ctx["import_cases"])]
        contacts.append(
            f"SCALE-E-{i:03d},{case_external},{case_ref},Scale Importcontact{chr(65 + i % 26)}{i},"
            f"{1 + i % 28:02d}/06/1975,,M14 {i % 10}DX,29/12/2020,workplace,1.5,30,no,no,"
        )
    (work / "contacts.csv").write_text("\r\n".join(contacts) + "\r\n", encoding="utf-8")
    # For the dry run on the store itself: every row names an existing case by reference.
    by_ref = [contacts[0]] + [
        f"SCALE-R-{i:03d},,{ctx['import_cases'][i % len(ctx['import_cases'])]},"
        f"Scale Dryrun{chr(65 + i % 26)}{i},{1 + i % 28:02d}/06/1975,,M14 {i % 10}DX,29/12/2020,"
        "workplace,1.5,30,no,no,"
        for i in range(40)
    ]
    (work / "contacts-by-ref.csv").write_text("\r\n".join(by_ref) + "\r\n", encoding="utf-8")
    (work / "policy.toml").write_text(
        'name = "outbreak-cell-summary"\n'
        'description = "Dates and settings for the outbreak cell, no identities"\n'
        'recipient_roles = ["central-team"]\n\n[fields]\n'
        'case = ["ref", "test_date", "symptom_onset", "status"]\n'
        'contact = ["ref", "case", "last_exposure", "setting", "close_contact"]\n',
        encoding="utf-8",
    )
    for sub in ("bundles", "opened", "referrals"):
        (work / sub).mkdir(exist_ok=True)
    ctx["pseudonym_key"] = str(work / "team.key")
    ctx["template"] = str(work / "template-contacts.csv")
    ctx["backup_dest"] = str(work / "copy.store")
    ctx["new_passphrase"] = "a new passphrase for the scale run copy"


def commands(s: dict[str, Any]) -> list[Cmd]:
    day = s["busy_day"]
    reads = [
        Cmd("tracekit --version (baseline: start-up only)", ["--version"], matches(r"\d+\.\d+", "version"), store=None),
        Cmd("store info", ["store", "info"], matches(r"exposures\s+[\d,]+", "count")),
        Cmd(
            "store info, wrong passphrase (exit 5)",
            ["store", "info"],
            exit_is(5),
            expect=5,
            passphrase="not the right passphrase at all",
        ),
        Cmd("store check", ["store", "check"], has(": OK (4 checks"), kind="batch"),
        Cmd("audit verify", ["audit", "verify"], matches(r"(?i)(ok|intact|verified)[^\n]*", "result"), kind="batch"),
        Cmd("audit show --limit 50", ["audit", "show", "--limit", "50"], lines_at_least(10, "entries")),
        Cmd("audit show --ref <case> (every entry naming it)", ["audit", "show", "--ref", s["case"]], has("case.add")),
        Cmd(
            "audit show --action case.close --limit 50",
            ["audit", "show", "--action", "case.close", "--limit", "50"],
            has("case.close"),
        ),
        Cmd(
            f"audit show --since {s['week_to']} --limit 50",
            ["audit", "show", "--since", s["week_to"], "--limit", "50"],
            lines_at_least(10, "entries"),
        ),
        # Before bb0a738, no options meant every entry, read into memory and laid out as one
        # table (260,256 entries: 263 s and 1.2 GiB; 13 million: MemoryError at 4 GiB), so it
        # runs with a time limit and capped address space (a shared machine).
        Cmd(
            f"audit show (no options; stopped at {AUDIT_ALL_TIMEOUT_S:g} s or {AUDIT_ALL_MEMORY >> 30} GiB)",
            ["audit", "show"],
            lines_at_least(10, "entries"),
            timeout=AUDIT_ALL_TIMEOUT_S,
            memory_limit=AUDIT_ALL_MEMORY,
        ),
        Cmd("case list", ["case", "list"], matches(r"of [\d,]+", "paging")),
        Cmd("case list --status open", ["case", "list", "--status", "open"], matches(r"of [\d,]+", "paging")),
        Cmd(
            f"case list --since {s['week_from']} --until {s['week_to']}",
            ["case", "list", "--since", s["week_from"], "--until", s["week_to"]],
            matches(r"of [\d,]+", "paging"),
        ),
        Cmd(
            "case list --offset 100000",
            ["case", "list", "--offset", "100000"],
            matches(r"of [\d,]+|[\d,]+ cases in all", "paging"),
        ),
        Cmd("case show <case from a contact>", ["case", "show", s["case"]], has("{case}")),
        Cmd("case show <case with a note>", ["case", "show", s["noted_case"]], has("{noted_case}")),
        Cmd(
            f"case show <case with most contacts: {s['big_case_contacts']}>",
            ["case", "show", s["big_case"]],
            has("{big_case}"),
        ),
        Cmd("case tree <case two links down a chain>", ["case", "tree", s["chain_case"]], has("{chain_case}")),
        Cmd("contact list", ["contact", "list"], matches(r"of [\d,]+", "paging")),
        Cmd(
            "contact list --status not-yet-reached",
            ["contact", "list", "--status", "not-yet-reached"],
            matches(r"of [\d,]+", "paging"),
        ),
        Cmd(
            "contact list --case <case with most contacts>",
            ["contact", "list", "--case", s["big_case"]],
            matches(r"of [\d,]+", "paging"),
        ),
        Cmd(
            "contact list --setting education --close-only",
            ["contact", "list", "--setting", "education", "--close-only"],
            matches(r"of [\d,]+", "paging"),
        ),
        Cmd(
            f"contact list --since {s['week_from']} --until {s['week_to']}",
            ["contact", "list", "--since", s["week_from"], "--until", s["week_to"]],
            matches(r"of [\d,]+", "paging"),
        ),
        Cmd(
            "contact list --offset 1000000",
            ["contact", "list", "--offset", "1000000"],
            matches(r"of [\d,]+|[\d,]+ contacts in all", "paging"),
        ),
        Cmd("contact show <contact with calls>", ["contact", "show", s["contact"]], has("{contact}")),
        Cmd("person show <person>", ["person", "show", s["person"]], has("{person}")),
        Cmd(
            f"person show <person in most exposures: {s['busy_person_exposures']}>",
            ["person", "show", s["busy_person"]],
            has("{busy_person}"),
        ),
        Cmd("person search smith (common surname)", ["person", "search", "smith"], lines_at_least(5, "matches")),
        Cmd("person search kowalczyk (rare surname)", ["person", "search", "kowalczyk"], lines_at_least(3, "matches")),
        Cmd("person search '<phone, as typed>'", ["person", "search", s["phone"]], has("{phone}")),
        Cmd("person search '<NHS number, spaced>'", ["person", "search", s["nhs"]], has("{person}")),
        Cmd("person search '<postcode>'", ["person", "search", s["postcode"]], has("{person}")),
        Cmd(
            f"today --date {day}",
            ["today", "--date", day],
            matches(r"To call \((more than )?[\d,]+ not yet reached\)", "to call"),
        ),
        Cmd("today (the real date: nothing due)", ["today"], matches(r"(?i)worklist for", "header")),
        Cmd("rules list", ["rules", "list"], has("england-2020-12-14")),
        Cmd("rules show", ["rules", "show"], has("england-2020-12-14")),
        Cmd("role list", ["role", "list"], first_line()),
        Cmd("recipients list", ["recipients", "list"], first_line()),
        Cmd("referrals list", ["referrals", "list"], first_line()),
        Cmd("export list", ["export", "list"], first_line()),
        Cmd("keys show", ["keys", "show"], matches(r"[0-9a-f]{64}", "public key")),
        Cmd("policy list (no store)", ["policy", "list"], has("central-handover", "statistics"), store=None),
        Cmd("policy show central-handover (no store)", ["policy", "show", "central-handover"], has("ref"), store=None),
        Cmd(
            "import template contacts (no store)",
            ["import", "template", "contacts"],
            has("case_external_id"),
            store=None,
        ),
        Cmd(
            "import contacts --dry-run (40 rows, cases by reference)",
            ["import", "contacts", "{work}/contacts-by-ref.csv", "--dry-run"],
            matches(r"(?i)[^\n]*(valid|would)[^\n]*", "report"),
        ),
    ]
    backup = [
        Cmd(
            "store backup (to bench/out/; the copy the writes use)",
            ["store", "backup", "{backup_dest}"],
            both(has("verified"), file_written("backup_dest", 1 << 20)),
            kind="batch",
        ),
    ]
    w = "work"
    writes = [
        Cmd(
            "recipients add <central team>",
            ["recipients", "add", "Central Team", "{central_public}"],
            has("Central Team"),
            store=w,
        ),
        Cmd(
            "recipients add <vetted team> --role vetted-team",
            ["recipients", "add", "Vetted Team", "{vetted_public}", "--role", "vetted-team"],
            has("Vetted Team"),
            store=w,
        ),
        Cmd("recipients list", ["recipients", "list"], has("Central Team", "Vetted Team"), store=w),
        Cmd(
            "keys pseudonym generate",
            ["keys", "pseudonym", "generate", "--out", "{pseudonym_key}"],
            file_written("pseudonym_key"),
            store=w,
        ),
        Cmd("keys pseudonym import", ["keys", "pseudonym", "import", "{pseudonym_key}"], first_line(), store=w),
        Cmd(
            "case add (new person, from flags)",
            [
                "case",
                "add",
                "--name",
                "Scale Runner",
                "--dob",
                "02/02/1982",
                "--postcode",
                "LS6 2AB",
                "--occupation",
                "teacher",
                "--test-date",
                s["week_to"],
                "--onset",
                s["week_from"],
            ],
            matches(REF.format(kind="C"), "new case"),
            store=w,
            after=capture("new_case", REF.format(kind="C")),
        ),
        Cmd("case show <the new case>", ["case", "show", "{new_case}"], has("Scale Runner"), store=w),
        Cmd(
            "case update <the new case> --onset",
            ["case", "update", "{new_case}", "--onset", s["week_to"]],
            has("{new_case}"),
            store=w,
        ),
        Cmd(
            "contact add <new case> --person <existing>",
            [
                "contact",
                "add",
                "{new_case}",
                "--person",
                s["contact_person"],
                "--last-exposure",
                s["week_to"],
                "--setting",
                "workplace",
                "--proximity",
                "1",
                "--duration",
                "30",
            ],
            matches(REF.format(kind="E"), "new contact"),
            store=w,
            after=capture("new_contact", REF.format(kind="E")),
        ),
        Cmd(
            "contact call <the new contact> --outcome no-answer",
            ["contact", "call", "{new_contact}", "--outcome", "no-answer"],
            has("{new_contact}"),
            store=w,
        ),
        Cmd(
            "contact call <oldest waiting contact> --outcome reached",
            ["contact", "call", s["to_call"], "--outcome", "reached"],
            has(s["to_call"]),
            store=w,
        ),
        Cmd(
            "contact update <contact> --notes",
            ["contact", "update", s["to_update"], "--notes", "Scale run note."],
            has(s["to_update"]),
            store=w,
        ),
        Cmd("contact show <the new contact>", ["contact", "show", "{new_contact}"], has("no answer"), store=w),
        Cmd(
            "person update <person> --email",
            ["person", "update", s["update_person"], "--email", "scale.runner@example.org"],
            has(s["update_person"]),
            store=w,
        ),
        Cmd(
            "contact promote <close contact, not yet reached>",
            ["contact", "promote", s["promote_person"], "--test-date", s["week_to"], "--asymptomatic"],
            matches(REF.format(kind="C"), "new case"),
            store=w,
            after=capture("promoted_case", REF.format(kind="C")),
        ),
        Cmd("case tree <the promoted case>", ["case", "tree", "{promoted_case}"], has("{promoted_case}"), store=w),
        Cmd(
            "person merge <keep> <other> --yes",
            ["person", "merge", s["merge_keep"], s["merge_other"], "--yes"],
            has(s["merge_keep"]),
            store=w,
        ),
        Cmd(
            "person show <the merged-away reference>",
            ["person", "show", s["merge_other"]],
            has(s["merge_keep"]),
            store=w,
        ),
        Cmd(
            "rules pin england-2020-12-14 (recomputes every record)",
            ["rules", "pin", "england-2020-12-14"],
            has("england-2020-12-14"),
            store=w,
            kind="batch",
            timeout=PIN_TIMEOUT_S,
        ),
        Cmd(
            "rules unpin (recomputes every record)",
            ["rules", "unpin"],
            first_line(),
            store=w,
            kind="batch",
            timeout=PIN_TIMEOUT_S,
        ),
        Cmd(
            "role mark <a case's person> --role victim",
            ["role", "mark", s["mark_person"], "--role", "victim", "--reason", "benchmark run"],
            has(s["mark_person"]),
            store=w,
        ),
        Cmd("role list", ["role", "list"], has(s["mark_person"]), store=w),
        Cmd(
            "role release <a contact of the marked case>",
            ["role", "release", s["release_contact"], "--reason", "benchmark run: plainly unrelated"],
            has(s["release_contact"]),
            store=w,
        ),
        Cmd("case show <the marked person's case>", ["case", "show", s["mark_case"]], has(s["mark_case"]), store=w),
        Cmd(
            "refer <the marked person>",
            ["refer", s["mark_person"], "--reason", "benchmark run", "--yes"],
            matches(REF.format(kind="R"), "referral"),
            store=w,
            after=capture("referral", REF.format(kind="R")),
        ),
        Cmd("referrals list", ["referrals", "list"], has("{referral}"), store=w),
        Cmd("referrals export", ["referrals", "export", "--out", "{work}/referrals"], has("{referral}"), store=w),
        Cmd(
            "role mark <another person> --role other",
            ["role", "mark", s["unmark_person"], "--role", "other", "--reason", "benchmark run"],
            has(s["unmark_person"]),
            store=w,
        ),
        Cmd(
            "role unmark <that person>",
            ["role", "unmark", s["unmark_person"], "--reason", "benchmark run: marked in error"],
            has(s["unmark_person"]),
            store=w,
        ),
        Cmd(
            "case close <the new case>",
            ["case", "close", "{new_case}", "--reason", "tracing complete"],
            has("{new_case}"),
            store=w,
        ),
        Cmd(
            "import template contacts -o <file>",
            ["import", "template", "contacts", "-o", "{template}"],
            file_written("template"),
            store=None,
        ),
        Cmd(
            "import cases (10 rows)",
            ["import", "cases", "{work}/cases.csv"],
            matches(r"imported\s+10\b", "imported"),
            store=w,
            kind="batch",
        ),
        Cmd(
            "import contacts (40 rows; by external id and by reference)",
            ["import", "contacts", "{work}/contacts.csv"],
            matches(r"imported\s+40\b", "imported"),
            store=w,
            kind="batch",
        ),
        Cmd(
            "import contacts again (re-run: all skipped)",
            ["import", "contacts", "{work}/contacts.csv"],
            matches(r"unchanged\s+40\b", "unchanged"),
            store=w,
            kind="batch",
        ),
        Cmd("policy check <custom policy>", ["policy", "check", "{work}/policy.toml"], first_line(), store=None),
        Cmd(
            "export handover --to <central> --all (central-handover)",
            ["export", "handover", "--to", "Central Team", "--all", "--out", "{work}/bundles"],
            matches(r"[^\n]*\.tar\.age", "bundle"),
            store=w,
            kind="batch",
            after=capture_bundle("bundle"),
        ),
        Cmd(
            "bundle inspect <the handover>",
            ["bundle", "inspect", "-i", "{central_identity}", "{bundle}"],
            has("central-handover"),
            store=None,
        ),
        Cmd(
            "bundle verify <the handover>",
            ["bundle", "verify", "-i", "{central_identity}", "{bundle}"],
            matches(r"(?i)[^\n]*(verified|ok)[^\n]*", "result"),
            store=None,
            kind="batch",
        ),
        Cmd(
            "bundle open <the handover>",
            ["bundle", "open", "-i", "{central_identity}", "--out", "{work}/opened", "{bundle}"],
            matches(r"(?i)[^\n]*(opened|written|verified)[^\n]*", "result"),
            store=None,
            kind="batch",
        ),
        Cmd(
            "export handover --policy statistics --all",
            [
                "export",
                "handover",
                "--to",
                "Central Team",
                "--policy",
                "statistics",
                "--all",
                "--out",
                "{work}/bundles",
            ],
            matches(r"[^\n]*\.tar\.age", "bundle"),
            store=w,
            kind="batch",
            after=capture_bundle("stats_bundle"),
        ),
        Cmd(
            "bundle verify <the statistics bundle>",
            ["bundle", "verify", "-i", "{central_identity}", "{stats_bundle}"],
            matches(r"(?i)[^\n]*(verified|ok)[^\n]*", "result"),
            store=None,
        ),
        Cmd(
            "export handover --policy <custom file> --since <last day of the data>",
            [
                "export",
                "handover",
                "--to",
                "Central Team",
                "--policy",
                "{work}/policy.toml",
                "--since",
                s["week_to"],
                "--out",
                "{work}/bundles",
            ],
            matches(r"[^\n]*\.tar\.age", "bundle"),
            store=w,
            kind="batch",
        ),
        Cmd(
            "export handover --to <central> (since the last: the few changes)",
            ["export", "handover", "--to", "Central Team", "--out", "{work}/bundles"],
            matches(r"[^\n]*\.tar\.age", "bundle"),
            store=w,
            kind="batch",
        ),
        Cmd("export list", ["export", "list"], has("Central Team"), store=w),
        Cmd(
            "unlock --for 5m",
            ["unlock", "--for", "5m"],
            first_line(),
            store=w,
            also_ok=(14,),
            after=lambda text, ctx: ctx.__setitem__("unlocked", True),
        ),
        Cmd(
            "store info, unlocked (no passphrase: cached key)",
            ["store", "info"],
            matches(r"exposures\s+[\d,]+", "count"),
            store="work-unlocked",
            needs="unlocked",
        ),
        Cmd("lock", ["lock"], first_line(), store=w),
        Cmd(
            "audit verify (the copy, after the writes)",
            ["audit", "verify"],
            matches(r"(?i)(ok|intact|verified)[^\n]*", "result"),
            store=w,
            kind="batch",
        ),
        Cmd(
            "store passwd (re-key the copy)",
            ["store", "passwd", "--new-passphrase-fd", "{new_fd}"],
            has("Passphrase changed"),
            store=w,
            kind="batch",
            extra_fds=lambda ctx: {"new_fd": ctx["new_passphrase"].encode()},
        ),
        Cmd(
            "store info, new passphrase",
            ["store", "info"],
            matches(r"exposures\s+[\d,]+", "count"),
            store=w,
            passphrase="{new_passphrase}",
        ),
        Cmd("init (a new store)", ["init"], has("Created store"), store="new"),
        Cmd("demo (its own throwaway store)", ["demo"], first_line(), store=None, kind="batch"),
    ]
    return reads + backup + writes


# ------------------------------------------------------------------------------ running


def run_one(cmd: Cmd, ctx: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    fmt = lambda text: text.format(**ctx)  # noqa: E731
    # Each passphrase goes through a pipe of its own (short: it fits in the pipe buffer);
    # the command line names the descriptor, as `--passphrase-fd N` expects.
    contents: dict[str, bytes] = {}
    rss_file = tempfile.NamedTemporaryFile(prefix="rss-", delete=False)
    rss_file.close()
    argv = [TIME, "-f", "%M", "-o", rss_file.name, str(TRACEKIT)]
    if cmd.store is not None:
        store = {
            "main": ctx["store"],
            "work": ctx["backup_dest"],
            "work-unlocked": ctx["backup_dest"],
            "new": str(Path(ctx["work"]) / "new.store"),
        }[cmd.store]
        argv += ["--store", store]
        if cmd.store != "work-unlocked":
            contents["pass_fd"] = (fmt(cmd.passphrase) if cmd.passphrase else ctx["passphrase"]).encode()
            argv += ["--passphrase-fd", "{pass_fd}"]
    if cmd.extra_fds:
        contents.update(cmd.extra_fds(ctx))
    pipes: dict[str, int] = {}
    try:
        for name, content in contents.items():
            r, w = os.pipe()
            os.write(w, content)
            os.close(w)
            pipes[name] = r
        fill = {**ctx, **{name: str(r) for name, r in pipes.items()}}
        argv = [a.format(**fill) for a in argv]
        argv += [a.format(**fill) for a in (cmd.args(ctx) if callable(cmd.args) else cmd.args)]
        child_env = dict(env, **cmd.env)
        out_f, err_f = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        limit = cmd.memory_limit
        preexec = (lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))) if limit else None
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out_f,
            stderr=err_f,
            env=child_env,
            pass_fds=tuple(pipes.values()),
            cwd=ctx["work"],
            preexec_fn=preexec,
            start_new_session=True,
        )
        stop = lambda: os.killpg(proc.pid, signal.SIGTERM)  # noqa: E731  (time and the command)
        timer = threading.Timer(cmd.timeout, stop) if cmd.timeout else None
        if timer:
            timer.start()
        _, status, _ = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        if timer:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        for r in pipes.values():
            os.close(r)
    rss_text = Path(rss_file.name).read_text().strip().splitlines()
    os.unlink(rss_file.name)
    # GNU time writes "Command exited with non-zero status N" / "Command terminated by signal N"
    # before the number when the command did not exit 0.
    peak_kib = int(rss_text[-1]) if rss_text and rss_text[-1].isdigit() else 0
    out_f.seek(0)
    err_f.seek(0)
    out, err = out_f.read().decode(errors="replace"), err_f.read().decode(errors="replace")
    rc = proc.returncode
    timed_out = cmd.timeout is not None and elapsed >= cmd.timeout
    if cmd.after is not None and rc == cmd.expect:
        cmd.after(out + err, ctx)
    if rc == cmd.expect:
        ok, note = cmd.check(rc, out, err, ctx)
    elif timed_out:
        ok, note = False, f"stopped after {cmd.timeout:g} s (not finished; nothing written: its transaction rolls back)"
    elif rc in cmd.also_ok:
        ok, note = True, "not possible here: " + " ".join(err.split())[-150:]
    else:
        ok, note = False, "stderr: " + " ".join(err.split())[-160:]
    slow = cmd.kind == "interactive" and elapsed > INTERACTIVE_LIMIT_S
    return {
        "label": cmd.label,
        "kind": cmd.kind,
        "store": cmd.store,
        "argv": argv[6:],
        "seconds": round(elapsed, 3),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "exit": rc,
        "expected_exit": cmd.expect,
        "ok": ok and (rc == cmd.expect or rc in cmd.also_ok),
        "timed_out": timed_out,
        "check": note,
        "slow": slow,
        "load_before": round(load_before, 2),
        "stdout_tail": out[-1500:],
        "stderr_tail": err[-1500:],
    }


def code_state() -> str:
    """The commit run, and whether tracekit/ had uncommitted changes (read-only git)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "tracekit"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"commit {head}" + (f" with uncommitted changes to {', '.join(changed)}" if changed else "")


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| # | command | seconds | peak RSS MiB | exit | check |", "|---:|---|---:|---:|---:|---|"]
    for i, r in enumerate(results, 1):
        flags = []
        if r.get("timed_out"):
            flags.append("**STOPPED**")
        elif not r["ok"]:
            flags.append("**FAILED**")
        if r["slow"]:
            flags.append(f"**SLOW** (> {INTERACTIVE_LIMIT_S:g} s)")
        where = {"work": " [copy]", "work-unlocked": " [copy]"}.get(r["store"] or "", "")
        check = r["check"].replace("|", "/")
        lines.append(
            f"| {i} | {r['label']}{where} | {r['seconds']:,.2f} | {r['peak_rss_mib']:,.0f} | {r['exit']} | "
            f"{' '.join(flags + [check])} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE)
    parser.add_argument("--work", type=Path, help="work directory (default bench/out/scale-run)")
    parser.add_argument("--json", type=Path, help="default bench/out/scale_run-<store name>.json")
    parser.add_argument("--reads-only", action="store_true", help="only the read-only commands on the store")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="TEXT",
        help="only the commands whose label contains one of these (reads, and the backup if a write "
        "is chosen; a write whose input an unchosen one makes will fail)",
    )
    parser.add_argument("--keep-work", action="store_true", help="keep the work directory (the copy, the bundles)")
    args = parser.parse_args()

    facts = generate_store.read_sidecar(args.store)
    if facts is None or not args.store.exists():
        raise SystemExit(f"{args.store} or its sidecar {generate_store.sidecar_path(args.store).name} is missing")
    work = (args.work or generate_store.OUT / "scale-run").resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    json_path = args.json or generate_store.OUT / f"scale_run-{args.store.stem}.json"

    print(f"Picking samples from {args.store}...", file=sys.stderr, flush=True)
    ctx: dict[str, Any] = {"store": str(args.store.resolve()), "passphrase": facts["passphrase"], "work": str(work)}
    samples = pick_samples(args.store, facts["passphrase"])
    ctx.update(samples)
    write_inputs(ctx)

    # Like an installed tracekit: compiled bytecode (this sandbox sets PYTHONDONTWRITEBYTECODE);
    # no passphrase or store in the environment, so only what the command line says counts.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONDONTWRITEBYTECODE", "TRACEKIT_PASSPHRASE", "TRACEKIT_STORE")
    }
    env["PYTHONPYCACHEPREFIX"] = str(generate_store.OUT / "pycache")

    todo = commands(samples)
    first_write = next(i for i, c in enumerate(todo) if c.label.startswith("store backup"))
    if args.reads_only:
        todo = todo[:first_write]
    if args.only:
        chosen = [c for c in todo if any(t in c.label for t in args.only)]
        if any(todo.index(c) > first_write for c in chosen) and todo[first_write] not in chosen:
            chosen.insert(next(i for i, c in enumerate(chosen) if todo.index(c) > first_write), todo[first_write])
        todo = chosen
    results = []
    code = [code_state()]
    started = time.perf_counter()
    loads = [os.getloadavg()]
    try:
        for cmd in todo:
            if cmd.needs and cmd.needs not in ctx:
                print(f"skip {cmd.label}: no {cmd.needs}", file=sys.stderr, flush=True)
                continue
            try:
                result = run_one(cmd, ctx, env)
            except KeyError as missing:  # an input an earlier command should have made
                result = {
                    "label": cmd.label,
                    "kind": cmd.kind,
                    "store": cmd.store,
                    "argv": [],
                    "seconds": 0.0,
                    "peak_rss_mib": 0.0,
                    "exit": -1,
                    "expected_exit": cmd.expect,
                    "ok": False,
                    "slow": False,
                    "check": f"not run: no {missing} from an earlier command",
                    "load_before": os.getloadavg()[0],
                }
            result["code"] = code_state()
            results.append(result)
            mark = "ok " if result["ok"] else "BAD"
            print(
                f"{mark} {result['seconds']:9.2f} s {result['peak_rss_mib']:7.0f} MiB  exit {result['exit']:<3} "
                f"{cmd.label}: {result['check']}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        loads.append(os.getloadavg())
        code.append(code_state())
        total = time.perf_counter() - started
        report = {
            "machine": machine(),
            "store": facts,
            "store_path": str(args.store),
            "samples": samples,
            "loads_1_5_15_before_after": loads,
            "code_before_after": code,
            "total_seconds": round(total, 1),
            "results": results,
            "work_size_bytes": sum(p.stat().st_size for p in work.rglob("*") if p.is_file()),
        }
        json_path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    c = facts["counts"]
    print(f"Machine: {machine()}; load average (1, 5, 15 min) before {loads[0]}, after {loads[-1]}")
    print(
        f"Store: {args.store} ({facts['size_bytes'] / 2**30:,.2f} GiB; {c['people']:,} people, {c['cases']:,} cases, "
        f"{c['exposures']:,} exposures, {c['call_attempts']:,} call attempts, {c['audit_log']:,} audit entries)"
    )
    print(
        f"tracekit: {code[0]} at the start, {code[-1]} at the end"
        + ("" if code[0] == code[-1] else " (the code changed during the run: see each result's 'code')")
    )
    print(f"{len(results)} commands in {total:,.0f} s; results in {json_path}\n")
    print(table(results))
    bad = [r for r in results if not r["ok"] or r["slow"]]
    if bad:
        print(
            "\nFindings (failed, or interactive and slower than "
            f"{INTERACTIVE_LIMIT_S:g} s):\n"
            + "\n".join(f"- {r['label']}: exit {r['exit']}, {r['seconds']:.1f} s; {r['check']}" for r in bad)
        )


if __name__ == "__main__":
    main()
