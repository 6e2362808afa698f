"""``tracekit demo``: a guided run of the real commands on a throwaway store.

Each step runs ``python -m tracekit ...`` in a child process, exactly as a user would
type it, against a store in a new temporary directory that is deleted at the end. The
demo passphrase goes to the children through ``TRACEKIT_PASSPHRASE``, the variable meant
for scripts. The steps are data (:data:`DEMO_STEPS`) so tests can replay them.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

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
]


def step_command(step: DemoStep, workdir: Path) -> list[str]:
    return [arg.replace("{workdir}", str(workdir)) for arg in step.args]


def demo_environment(workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TRACEKIT_STORE"] = str(workdir / "demo.store")
    env["TRACEKIT_PASSPHRASE"] = DEMO_PASSPHRASE
    env.setdefault("COLUMNS", "100")
    return env


def run_step(step: DemoStep, workdir: Path, *, capture: bool = False) -> subprocess.CompletedProcess[str]:
    env = demo_environment(workdir)
    env.update(step.env)
    return subprocess.run(
        [sys.executable, "-m", "tracekit", *step_command(step, workdir)],
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
            shown = " ".join(shlex.quote(a) for a in step_command(step, workdir))
            console.print(f"[bold green]$[/bold green] tracekit {shown}", highlight=False)
            sys.stdout.flush()
            result = run_step(step, workdir)
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
