"""Crash-consistency trials: run a tracekit command, SIGKILL it at a random moment, check.

Used by tests/test_crash.py (a few trials per operation) and bench/crash_trials.py
(hundreds). After every kill the store must open with the right passphrase (the old one,
or the new one only if a passphrase change completed), pass ``store check`` (pages,
structure, references, audit chain), and show the operation all-or-nothing.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pyrage import x25519

from tracekit.crypto.kdf import KdfParams
from tracekit.errors import WrongPassphrase
from tracekit.records import Casebook, PersonInput
from tracekit.records.sensitive import SensitiveRoles
from tracekit.store import create_store, open_store
from tracekit.store import migrations as migrations_module

PASSPHRASE = "crash trial passphrase"
NEW_PASSPHRASE = "crash trial new passphrase"
CHEAP = KdfParams(10, 1, 1)


@dataclass
class Outcome:
    operation: str
    killed_after: float
    finished: bool
    state: str  # "before" | "after"
    problems: list[str] = field(default_factory=list)


def _env(store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEKIT_")}
    env.update({"TRACEKIT_STORE": str(store), "TRACEKIT_PASSPHRASE": PASSPHRASE, "TRACEKIT_BUSY_TIMEOUT": "5"})
    return env


def _run_and_kill(args: list[str], env: dict[str, str], delay: float) -> bool:
    """Start ``python -m tracekit args``; SIGKILL after ``delay`` s. True if it finished first."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tracekit", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        child.wait(timeout=delay)
        return True
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGKILL)
        child.wait()
        return False


def _populate(store_path: Path, people: int, *, marked: bool = False) -> dict[str, str]:
    refs: dict[str, str] = {}
    with create_store(store_path, bytearray(PASSPHRASE.encode()), kdf=CHEAP) as store:
        book = Casebook(store, today=date(2020, 12, 1))
        with store.transaction():
            for i in range(people):
                case = book.add_case(
                    person=PersonInput(name=f"Crash Person {i}", phone=f"07700 9{i % 1000:05d}"),
                    test_date="2020-11-01",
                    asymptomatic=True,
                    new_person=True,
                )
                for j in range(4):
                    book.add_contact(
                        case.ref,
                        person=PersonInput(name=f"Crash Contact {i}-{j}"),
                        last_exposure="2020-10-31",
                        setting="household",
                        new_person=True,
                    )
                refs.setdefault("case", case.ref)
                refs.setdefault("person", case.person.ref)
        roles = SensitiveRoles(book)
        roles.add_recipient("Central", str(x25519.Identity.generate().to_public()), "central-team")
        roles.add_recipient("Vetted", str(x25519.Identity.generate().to_public()), "vetted-team")
        if marked:
            roles.mark(refs["person"], "undercover-officer", "operational safety")
    return refs


def _open_checked(path: Path, passphrases: list[str]) -> tuple[object, str]:
    for passphrase in passphrases:
        try:
            return open_store(path, bytearray(passphrase.encode())), passphrase
        except WrongPassphrase:
            continue
    raise AssertionError("the store opens with neither the old nor the new passphrase")


def _check(store: object, outcome: Outcome) -> None:
    report = store.check()  # type: ignore[attr-defined]
    outcome.problems.extend(report.problems)


def trial_export(work: Path, delay: float) -> Outcome:
    store_path = work / "x.store"
    out = work / "out"
    out.mkdir()
    _populate(store_path, 120)
    finished = _run_and_kill(
        ["export", "handover", "--to", "Central", "--all", "--out", str(out)], _env(store_path), delay
    )
    store, _ = _open_checked(store_path, [PASSPHRASE])
    outcome = Outcome("export", delay, finished, "before")
    with store:  # type: ignore[attr-defined]
        _check(store, outcome)
        recorded = store.query("SELECT count(*) FROM handovers")[0][0]  # type: ignore[attr-defined]
    bundles = [p for p in out.iterdir() if not p.name.startswith(".")]
    if bundles:
        outcome.state = "after"
        if recorded > 1:
            outcome.problems.append("more handovers recorded than bundles written")
    elif recorded:
        outcome.problems.append("a handover is recorded but no bundle was published")
    return outcome


def trial_passwd(work: Path, delay: float) -> Outcome:
    store_path = work / "x.store"
    _populate(store_path, 50)
    secret = work / "new.txt"
    secret.write_text(NEW_PASSPHRASE + "\n")
    os.chmod(secret, 0o600)
    finished = _run_and_kill(["store", "passwd", "--new-passphrase-file", str(secret)], _env(store_path), delay)
    store, used = _open_checked(store_path, [PASSPHRASE, NEW_PASSPHRASE])
    outcome = Outcome("passwd", delay, finished, "after" if used == NEW_PASSPHRASE else "before")
    with store:  # type: ignore[attr-defined]
        _check(store, outcome)
        if store.query("SELECT count(*) FROM people")[0][0] != 250:  # type: ignore[attr-defined]
            outcome.problems.append("people were lost")
    if finished and used != NEW_PASSPHRASE:
        outcome.problems.append("the change finished but the new passphrase does not open the store")
    leftovers = [p.name for p in work.iterdir() if p.name.startswith(".x.store.passwd")]
    if leftovers and outcome.state == "after":
        outcome.problems.append(f"temporary copy left after a completed change: {leftovers}")
    return outcome


def trial_refer(work: Path, delay: float) -> Outcome:
    store_path = work / "x.store"
    refs = _populate(store_path, 60, marked=True)
    finished = _run_and_kill(["refer", refs["person"], "--reason", "per protocol", "--yes"], _env(store_path), delay)
    store, _ = _open_checked(store_path, [PASSPHRASE])
    outcome = Outcome("refer", delay, finished, "before")
    with store:  # type: ignore[attr-defined]
        _check(store, outcome)
        referrals = store.query("SELECT count(*) FROM referrals")[0][0]  # type: ignore[attr-defined]
        name = store.query("SELECT name FROM people WHERE ref = ?", (refs["person"],))[0][0]  # type: ignore[attr-defined]
    if referrals == 1 and name == "":
        outcome.state = "after"
    elif referrals == 0 and name == "Crash Person 0":
        outcome.state = "before"
    else:
        outcome.problems.append(f"half a referral: {referrals} envelopes, person name {'kept' if name else 'purged'}")
    return outcome


def trial_migration(work: Path, delay: float) -> Outcome:
    store_path = work / "x.store"
    first = migrations_module.MIGRATIONS[:1]
    create_store(store_path, bytearray(PASSPHRASE.encode()), kdf=CHEAP, migrations=first).close()
    finished = _run_and_kill(["store", "info"], _env(store_path), delay)  # opening upgrades the schema
    store, _ = _open_checked(store_path, [PASSPHRASE])  # this process upgrades if the child did not
    outcome = Outcome("migration", delay, finished, "after")
    with store:  # type: ignore[attr-defined]
        _check(store, outcome)
        if store.schema_version() != len(migrations_module.MIGRATIONS):  # type: ignore[attr-defined]
            outcome.problems.append("the schema was not upgraded on the next open")
    return outcome


def migration_state_after_kill(work: Path, delay: float) -> int:
    """The schema version a killed upgrade left behind (1 or the latest, nothing between)."""
    store_path = work / "y.store"
    create_store(
        store_path, bytearray(PASSPHRASE.encode()), kdf=CHEAP, migrations=migrations_module.MIGRATIONS[:1]
    ).close()
    _run_and_kill(["store", "info"], _env(store_path), delay)
    with open_store(store_path, bytearray(PASSPHRASE.encode()), migrate=False) as store:
        return store.schema_version()


TRIALS: dict[str, Callable[[Path, float], Outcome]] = {
    "export": trial_export,
    "passwd": trial_passwd,
    "refer": trial_refer,
    "migration": trial_migration,
}

#: How long each operation takes at most here, to spread kill times over it.
KILL_WINDOW = {"export": 1.5, "passwd": 3.0, "refer": 1.5, "migration": 1.5}


def random_delay(operation: str, rng: random.Random) -> float:
    return rng.uniform(0.05, KILL_WINDOW[operation])
