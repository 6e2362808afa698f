"""``tracekit demo``: a guided run of the real commands on a throwaway store.

Each step runs ``python -m tracekit ...`` in a child process, exactly as a user would
type it, against a store in a new temporary directory that is deleted at the end. The
demo passphrase goes to the children through ``TRACEKIT_PASSPHRASE``, the variable meant
for scripts. The steps are data (:data:`DEMO_STEPS`) so tests can replay them.

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
from dataclasses import dataclass, field
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
    env: dict[str, str] = field(default_factory=dict)


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
        env={"TRACEKIT_PASSPHRASE": "not the right passphrase"},
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
            "case", "add", "--name", "Amara Example", "--dob", "14/03/1985", "--nhs-number", "999 000 0018",
            "--phone", "07700 900101", "--postcode", "sw1a 1aa", "--test-date", "10/10/2020", "--onset", "8/10/2020",
        ),
    ),
    DemoStep(
        "Add a contact",
        "Whether it is a close contact, and under which clause of the rules, is worked out at once.",
        (
            "contact", "add", "{latest_case}", "--name", "Ben Example", "--phone", "07700 900102",
            "--last-exposure", "2020-10-09", "--setting", "workplace", "--proximity", "1.5", "--duration", "20",
        ),
    ),
    DemoStep(
        "Add another contact",
        "A household member: close whatever the distance.",
        (
            "contact", "add", "{latest_case}", "--name", "Cleo Example", "--phone", "07700 900103",
            "--last-exposure", "2020-10-07", "--setting", "household",
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
        ("case", "add", "--name", "B. Example", "--phone", "07700 900102", "--test-date", "2020-10-13", "--asymptomatic"),
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
]


@dataclass(frozen=True)
class Lookup:
    """A value later steps need (a new record's reference), read from a ``--json`` command."""

    args: tuple[str, ...]
    path: tuple[str | int, ...]


DEMO_LOOKUPS: dict[str, Lookup] = {
    "latest_case": Lookup(("case", "list", "--limit", "1"), ("items", 0, "ref")),
    "close_contact_person": Lookup(
        ("contact", "list", "--close-only", "--limit", "1"), ("items", 0, "contact", "ref")
    ),
}

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def step_lookups(step: DemoStep) -> list[str]:
    """The look-up placeholders a step's arguments use, in order."""
    names = [m for arg in step.args for m in _PLACEHOLDER.findall(arg) if m != "workdir"]
    return list(dict.fromkeys(names))


def lookup_from(document: Any, lookup: Lookup) -> str:
    value = document
    for key in lookup.path:
        value = value[key]
    return str(value)


def step_command(step: DemoStep, workdir: Path, values: dict[str, str] | None = None) -> list[str]:
    filled = {"workdir": str(workdir), **(values or {})}
    return [_PLACEHOLDER.sub(lambda m: filled.get(m.group(1), m.group(0)), arg) for arg in step.args]


def run_lookup(name: str, workdir: Path) -> str:
    lookup = DEMO_LOOKUPS[name]
    result = subprocess.run(
        [sys.executable, "-m", "tracekit", "--json", *lookup.args],
        env=demo_environment(workdir),
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        from tracekit.errors import TracekitError

        raise TracekitError(f"demo look-up {name} exited with {result.returncode}")
    return lookup_from(json.loads(result.stdout), lookup)


def demo_environment(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TRACEKIT_STORE"] = str(workdir / "demo.store")
    env["TRACEKIT_PASSPHRASE"] = DEMO_PASSPHRASE
    env.setdefault("COLUMNS", "100")
    return env


def run_step(
    step: DemoStep, workdir: Path, *, capture: bool = False, values: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = demo_environment(workdir)
    env.update(step.env)
    return subprocess.run(
        [sys.executable, "-m", "tracekit", *step_command(step, workdir, values)],
        env=env,
        text=True,
        capture_output=capture,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@command
def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temporary directory and print how to use its store.")
    ] = False,
) -> None:
    """A guided tour of tracekit on a throwaway store (nothing of yours is touched)."""
    from rich.markup import escape
    from rich.rule import Rule

    from tracekit.errors import TracekitError

    console = out()
    workdir = Path(tempfile.mkdtemp(prefix="tracekit-demo-"))
    os.chmod(workdir, 0o700)
    console.print(f"[bold]tracekit demo[/bold]: a throwaway store in {workdir}\n")
    try:
        for number, step in enumerate(DEMO_STEPS, 1):
            console.print(Rule(f"{number}. {step.title}", align="left"))
            console.print(f"[dim]{step.explanation}[/dim]")
            values = {name: run_lookup(name, workdir) for name in step_lookups(step)}
            shown = " ".join(shlex.quote(a) for a in step_command(step, workdir, values))
            console.print(f"[bold green]$[/bold green] tracekit {escape(shown)}", highlight=False)
            sys.stdout.flush()
            result = run_step(step, workdir, values=values)
            if result.returncode != step.expect_exit:
                raise TracekitError(
                    f"demo step {number} ({step.title}) exited with {result.returncode}, "
                    f"expected {step.expect_exit}"
                )
            console.print()
        console.print(Rule("Done", align="left"))
        console.print("Every step above ran the real tracekit against a real encrypted store.")
    finally:
        if keep:
            err().print(
                f"Kept {workdir}. Try: export TRACEKIT_STORE={workdir}/demo.store  "
                "(the demo passphrase is in tracekit/cli/demo.py)"
            )
        else:
            _remove_tree(workdir)


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def register(app: typer.Typer) -> None:
    app.command()(demo)
