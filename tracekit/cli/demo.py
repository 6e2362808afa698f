"""``tracekit demo``: a guided run of the real commands on a throwaway store.

Each step runs ``python -m tracekit ...`` in a child process, exactly as a user would
type it, against a store in a new temporary directory that is deleted at the end. The
demo passphrase reaches each child through a pipe (``--passphrase-fd``), so it is in no
child's arguments or environment. The steps are data (:data:`DEMO_STEPS`) so tests can
replay them.

The receiving teams' age keys are made in the temporary directory before the first step
(:func:`prepare_workdir`); in real life each team runs ``age-keygen`` and sends its
public key.

References are random, so a step that needs one made by an earlier step names it as a
placeholder (``{latest_case}``); the demo reads it just before the step from a quiet
``--json`` command (:data:`DEMO_LOOKUPS`), the way a script would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from tracekit.cli.context import command, err, out

DEMO_PASSPHRASE = "demo passphrase: correct horse battery staple"


@dataclass(frozen=True)
class DemoStep:
    title: str
    explanation: str
    args: tuple[str, ...]
    expect_exit: int = 0
    #: A different passphrase for this step (to show a wrong one); default: the demo's.
    passphrase: str | None = None


DEMO_STEPS: list[DemoStep] = [
    DemoStep(
        "Create an encrypted store",
        "One SQLCipher file, mode 0600, keyed with Argon2id calibrated for this machine.",
        ("init",),
    ),
    DemoStep(
        "What is in the store",
        "Format, schema, cipher and key-derivation parameters, record counts.",
        ("store", "info"),
    ),
    DemoStep(
        "A wrong passphrase",
        "Refused with its own exit code (5); the file is not touched.",
        ("store", "info"),
        expect_exit=5,
        passphrase="not the right passphrase",
    ),
    DemoStep(
        "Check the store",
        "Every page's authentication code, the database structure and references.",
        ("store", "check"),
    ),
    DemoStep(
        "Back it up",
        "A consistent encrypted copy, verified before it is put in place.",
        ("store", "backup", "{workdir}/backup.store"),
    ),
    DemoStep(
        "Record a case",
        "From flags here; at a terminal, 'tracekit case add' asks for what is missing and checks "
        "each answer. The infectious period and isolation come from the rule set in force.",
        (
            "case",
            "add",
            "--name",
            "Amara Example",
            "--dob",
            "14/03/1985",
            "--nhs-number",
            "999 000 0018",
            "--phone",
            "07700 900101",
            "--postcode",
            "sw1a 1aa",
            "--test-date",
            "10/10/2020",
            "--onset",
            "8/10/2020",
            "--notes",
            "works nights; call after 2pm",
        ),
    ),
    DemoStep(
        "Add a contact",
        "Whether it is a close contact, and under which clause of the rules, is worked out at once.",
        (
            "contact",
            "add",
            "{latest_case}",
            "--name",
            "Ben Example",
            "--phone",
            "07700 900102",
            "--last-exposure",
            "2020-10-09",
            "--setting",
            "workplace",
            "--proximity",
            "1.5",
            "--duration",
            "20",
        ),
    ),
    DemoStep(
        "Add another contact",
        "A household member: close whatever the distance.",
        (
            "contact",
            "add",
            "{latest_case}",
            "--name",
            "Cleo Example",
            "--phone",
            "07700 900103",
            "--last-exposure",
            "2020-10-07",
            "--setting",
            "household",
        ),
    ),
    DemoStep(
        "Today's calls",
        "Contacts not yet reached, highest risk first, with the reason and the number to ring.",
        ("today", "--date", "2020-10-12"),
    ),
    DemoStep(
        "A duplicate is caught",
        "The phone matches someone already stored: a script must say --link P-... or --new-person "
        "(at a terminal tracekit asks).",
        (
            "case",
            "add",
            "--name",
            "B. Example",
            "--phone",
            "07700 900102",
            "--test-date",
            "2020-10-13",
            "--asymptomatic",
        ),
        expect_exit=13,
    ),
    DemoStep(
        "A contact tests positive",
        "Promoting the contact makes them a case and keeps the chain of transmission.",
        ("contact", "promote", "{close_contact_person}", "--test-date", "2020-10-13", "--asymptomatic"),
    ),
    DemoStep(
        "The transmission chain",
        "From the first known case down, with the case asked about highlighted.",
        ("case", "tree", "{latest_case}"),
    ),
    DemoStep(
        "Find a person",
        "By any part of a name, phone number (any common form), NHS number or postcode.",
        ("person", "search", "07700900103"),
    ),
    DemoStep(
        "A bulk-import template",
        "The expected headers and one row of made-up data, to fill in or to match an export to.",
        ("import", "template", "cases", "--output", "{workdir}/cases.csv"),
    ),
    DemoStep(
        "Import cases from a file",
        "Every row is validated first and the file goes in whole or not at all. The example row "
        "has Amara's NHS number, so it is linked to her rather than added as a new person.",
        ("import", "cases", "{workdir}/cases.csv"),
    ),
    DemoStep(
        "Import the same file again",
        "Rows carry their source system's id: a second run changes nothing, and says so.",
        ("import", "cases", "{workdir}/cases.csv"),
    ),
    DemoStep(
        "Register the receiving teams",
        "Each team sends its age public key. The central team gets standard handovers; the vetted "
        "outbreak team alone can open referrals of people in sensitive roles.",
        ("recipients", "add", "PHE North", "{central_public}", "--role", "central-team"),
    ),
    DemoStep(
        "Register the vetted team",
        "Without a vetted-team key, nothing can be referred.",
        ("recipients", "add", "Vetted Team", "{vetted_public}", "--role", "vetted-team"),
    ),
    DemoStep(
        "A case who turns out to be an undercover officer",
        "Recorded like anyone else at the outset.",
        (
            "case",
            "add",
            "--name",
            "Dana Confidential",
            "--phone",
            "07700 900190",
            "--nhs-number",
            "999 000 0026",
            "--test-date",
            "12/10/2020",
            "--asymptomatic",
        ),
    ),
    DemoStep(
        "Her household contact",
        "Recorded before anyone knows who she is.",
        (
            "contact",
            "add",
            "{officer_case}",
            "--name",
            "Eli Partner",
            "--phone",
            "07700 900191",
            "--last-exposure",
            "2020-10-11",
            "--setting",
            "household",
        ),
    ),
    DemoStep(
        "Mark the sensitive role",
        "From now on the identity is masked in every output and the case's contacts are withheld.",
        ("role", "mark", "{officer}", "--role", "undercover-officer", "--reason", "operational safety"),
    ),
    DemoStep(
        "The case list now masks them",
        "A reference and an explicit marker, never a blank.",
        ("case", "list"),
    ),
    DemoStep(
        "Refer them to the vetted team",
        "The full record is sealed to the vetted team's key and purged from this store: even "
        "this passphrase can no longer recover it.",
        ("refer", "{marked_officer}", "--reason", "per protocol", "--yes"),
    ),
    DemoStep(
        "Today's handover to the central team",
        "Redacted by the central-handover policy, checked by the leak guard, signed and encrypted.",
        ("export", "handover", "--to", "PHE North", "--out", "{workdir}/outbox"),
    ),
    DemoStep(
        "And to the vetted team",
        "Only sensitive records and the sealed referral go to them.",
        ("export", "handover", "--to", "Vetted Team", "--out", "{workdir}/outbox"),
    ),
    DemoStep(
        "The tracer's signing key",
        "Given to the receiving teams once, over a channel they trust.",
        ("keys", "show"),
    ),
    DemoStep(
        "Receiving side: verify the central bundle",
        "Decrypt with the team's key, check the signature against the tracer's key, every hash and count.",
        (
            "bundle",
            "verify",
            "{workdir}/outbox/{central_bundle}",
            "--identity",
            "{workdir}/central.key",
            "--signer",
            "{signer}",
        ),
    ),
    DemoStep(
        "Receiving side: open it",
        "Written out only if everything verified: JSON Lines and CSV, a redaction report, the manifest.",
        (
            "bundle",
            "open",
            "{workdir}/outbox/{central_bundle}",
            "--identity",
            "{workdir}/central.key",
            "--out",
            "{workdir}/received",
            "--signer",
            "{signer}",
        ),
    ),
    DemoStep(
        "Receiving side: the vetted team opens theirs",
        "With the sealed referral inside (referrals/R-....age).",
        (
            "bundle",
            "open",
            "{workdir}/outbox/{vetted_bundle}",
            "--identity",
            "{workdir}/vetted.key",
            "--out",
            "{workdir}/received-vetted",
            "--signer",
            "{signer}",
        ),
    ),
    DemoStep(
        "The audit log is intact",
        "Every change above is in it, hash-chained, with references only.",
        ("audit", "verify"),
    ),
    DemoStep(
        "The vetted team's own case book",
        "The vetted outbreak team keeps its own encrypted store (here beside the tracer's).",
        ("--store", "{workdir}/vetted.store", "init"),
    ),
    DemoStep(
        "The vetted team receives the referral",
        "From their bundle: decrypted in memory with their key, the tracer's signature checked "
        "against the tracer's key, every value checked, then taken in whole: the officer marked "
        "with her role, her case and its contacts to trace.",
        (
            "--store",
            "{workdir}/vetted.store",
            "referrals",
            "receive",
            "{workdir}/outbox/{vetted_bundle}",
            "--identity",
            "{workdir}/vetted.key",
            "--signer",
            "{signer}",
        ),
    ),
    DemoStep(
        "Receiving it again changes nothing",
        "A referral is taken in once, whether it comes again as a file or in another bundle.",
        (
            "--store",
            "{workdir}/vetted.store",
            "referrals",
            "receive",
            "{workdir}/outbox/{vetted_bundle}",
            "--identity",
            "{workdir}/vetted.key",
            "--signer",
            "{signer}",
        ),
    ),
    DemoStep(
        "The vetted team's calls",
        "The referred case's contact is on their worklist (masked, as a marked person's contacts are).",
        ("--store", "{workdir}/vetted.store", "today", "--date", "2020-10-13"),
    ),
    DemoStep(
        "The vetted team works the case",
        "They reveal it, with a reason that is audited in their store.",
        (
            "--store",
            "{workdir}/vetted.store",
            "case",
            "show",
            "{vetted_case}",
            "--reveal",
            "--reason",
            "tracing the referred case",
        ),
    ),
    DemoStep(
        "And call the contact",
        "Logged in the vetted team's store; none of it ever goes back to central.",
        ("--store", "{workdir}/vetted.store", "contact", "call", "{vetted_contact}", "--outcome", "reached"),
    ),
]


@dataclass(frozen=True)
class Lookup:
    """A value later steps need (a new record's reference), read from a ``--json`` command."""

    args: tuple[str, ...]
    path: tuple[str | int, ...]


DEMO_LOOKUPS: dict[str, Lookup] = {
    "latest_case": Lookup(("case", "list", "--limit", "1"), ("items", 0, "ref")),
    "close_contact_person": Lookup(("contact", "list", "--close-only", "--limit", "1"), ("items", 0, "contact", "ref")),
    "officer": Lookup(("person", "search", "07700 900190"), ("items", 0, "ref")),
    "officer_case": Lookup(("case", "list", "--since", "2020-10-12", "--until", "2020-10-12"), ("items", 0, "ref")),
    # Once marked, search no longer finds her (by design): the role list does.
    "marked_officer": Lookup(("role", "list"), ("items", 0, "person")),
    "central_bundle": Lookup(("export", "list", "--to", "PHE North", "--limit", "1"), ("items", 0, "file_name")),
    "vetted_bundle": Lookup(("export", "list", "--to", "Vetted Team", "--limit", "1"), ("items", 0, "file_name")),
    "signer": Lookup(("keys", "show"), ("public_key",)),
    "vetted_case": Lookup(("--store", "{workdir}/vetted.store", "case", "list", "--limit", "1"), ("items", 0, "ref")),
    "vetted_contact": Lookup(
        ("--store", "{workdir}/vetted.store", "contact", "list", "--limit", "1"), ("items", 0, "ref")
    ),
}

#: Placeholders filled once, before the first step, by :func:`prepare_workdir`.
PREPARED = ("workdir", "central_public", "vetted_public")

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def step_lookups(step: DemoStep) -> list[str]:
    """The look-up placeholders a step's arguments use, in order."""
    names = [m for arg in step.args for m in _PLACEHOLDER.findall(arg) if m not in PREPARED]
    return list(dict.fromkeys(names))


def lookup_from(document: Any, lookup: Lookup) -> str:
    value = document
    for key in lookup.path:
        value = value[key]
    return str(value)


def step_command(step: DemoStep, workdir: Path, values: dict[str, str] | None = None) -> list[str]:
    return _fill(step.args, workdir, values)


def lookup_command(lookup: Lookup, workdir: Path) -> list[str]:
    """A look-up's arguments, ``--json`` first, with ``{workdir}`` filled in (the vetted
    team's store is there)."""
    return ["--json", *_fill(lookup.args, workdir)]


def _fill(args: tuple[str, ...], workdir: Path, values: dict[str, str] | None = None) -> list[str]:
    filled = {"workdir": str(workdir), **(values or {})}
    return [_PLACEHOLDER.sub(lambda m: filled.get(m.group(1), m.group(0)), arg) for arg in args]


def prepare_workdir(workdir: Path) -> dict[str, str]:
    """Make the receiving teams' age key pairs (as age-keygen would); return the public keys."""
    from pyrage import x25519

    values = {}
    for team in ("central", "vetted"):
        identity = x25519.Identity.generate()
        path = workdir / f"{team}.key"
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"# {team} team's demo identity\n{identity}\n")
        values[f"{team}_public"] = str(identity.to_public())
    return values


def _tracekit(args: list[str], workdir: Path, passphrase: str, *, capture: bool) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tracekit`` with the passphrase on a pipe (``--passphrase-fd``)."""
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, (passphrase + "\n").encode())
    finally:
        os.close(write_fd)
    try:
        return subprocess.run(
            [sys.executable, "-m", "tracekit", "--passphrase-fd", str(read_fd), *args],
            env=demo_environment(workdir),
            text=True,
            capture_output=capture,
            stdin=subprocess.DEVNULL,
            pass_fds=(read_fd,),
            check=False,
        )
    finally:
        os.close(read_fd)


def run_lookup(name: str, workdir: Path) -> str:
    lookup = DEMO_LOOKUPS[name]
    result = _tracekit(lookup_command(lookup, workdir), workdir, DEMO_PASSPHRASE, capture=True)
    if result.returncode != 0:
        from tracekit.errors import TracekitError

        raise TracekitError(f"demo look-up {name} exited with {result.returncode}")
    return lookup_from(json.loads(result.stdout), lookup)


def demo_environment(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEKIT_")}
    env["TRACEKIT_STORE"] = str(workdir / "demo.store")
    env.setdefault("COLUMNS", "100")
    return env


def run_step(
    step: DemoStep, workdir: Path, *, capture: bool = False, values: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return _tracekit(step_command(step, workdir, values), workdir, step.passphrase or DEMO_PASSPHRASE, capture=capture)


@command
def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary directory and print how to use its store.")
    ] = False,
) -> None:
    """A guided tour of tracekit on a throwaway store (nothing of yours is touched)."""
    from rich.rule import Rule

    from tracekit.cli.safe_text import safe_markup
    from tracekit.errors import TracekitError

    console = out()
    rule_width = min(console.width, 80)  # piped, the console has no width (context.PIPED_WIDTH)
    workdir = Path(tempfile.mkdtemp(prefix="tracekit-demo-"))
    os.chmod(workdir, 0o700)
    console.print(f"[bold]tracekit demo[/bold]: a throwaway store in {safe_markup(workdir)}")
    console.print(
        "[dim]Each command gets the demo passphrase through a pipe (--passphrase-fd), as a script would.[/dim]\n"
    )
    try:
        prepared = prepare_workdir(workdir)
        for number, step in enumerate(DEMO_STEPS, 1):
            console.print(Rule(f"{number}. {step.title}", align="left"), width=rule_width)
            console.print(f"[dim]{step.explanation}[/dim]")
            values = {**prepared, **{name: run_lookup(name, workdir) for name in step_lookups(step)}}
            shown = " ".join(shlex.quote(a) for a in step_command(step, workdir, values))
            console.print(f"[bold green]$[/bold green] tracekit {safe_markup(shown)}", highlight=False)
            sys.stdout.flush()
            result = run_step(step, workdir, values=values)
            if result.returncode != step.expect_exit:
                raise TracekitError(
                    f"demo step {number} ({step.title}) exited with {result.returncode}, expected {step.expect_exit}"
                )
            console.print()
        console.print(Rule("Done", align="left"), width=rule_width)
        console.print("Every step above ran the real tracekit against a real encrypted store.")
    finally:
        if keep:
            err().print(
                f"Kept {safe_markup(workdir)}. Try: export TRACEKIT_STORE={safe_markup(workdir)}/demo.store  "
                "(the demo passphrase is in tracekit/cli/demo.py)"
            )
        else:
            _remove_tree(workdir)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def register(app: typer.Typer) -> None:
    app.command()(demo)
