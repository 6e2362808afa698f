"""Issue 14's interactive items on a real terminal: ``python -m tracekit`` runs as a child
on a pseudo-terminal (its controlling terminal, of a set width), and the test types at
it as a tracer would, waiting for each prompt before answering.

The other CLI tests pretend to be at a terminal by replacing
``tracekit.cli.context.interactive``; these check what those cannot: getpass on the real
terminal (no echo), Ctrl-C as the terminal sends it, and Rich's layout at the terminal's
own width (no COLUMNS).

Stores are made in-process with cheap Argon2 (tests/conftest.py), so the child opens them
quickly; the child replaces ``tracekit.crypto.kdf.default_params`` with the same cheap
parameters before running tracekit, so ``init`` is quick too (nothing else differs from
``python -m tracekit``). Reads wait up to READ_TIMEOUT for the expected text: generous
for a loaded machine, and never waited out when things go right.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from pyrage import x25519

from tests.cli.casebook_helpers import add_case, add_contact, as_json
from tests.conftest import CHEAP_KDF, PASSPHRASE
from tracekit.errors import ExitCode
from tracekit.records import Casebook, PersonInput

REPO = Path(__file__).resolve().parents[2]
READ_TIMEOUT = 20.0

#: ``python -m tracekit`` with cheap Argon2 for a new store (see the module docstring).
LAUNCH_TRACEKIT = (
    "import runpy, tracekit.crypto.kdf as kdf; "
    f"kdf.default_params = lambda: kdf.KdfParams({CHEAP_KDF.memory_log2}, {CHEAP_KDF.time_cost}, {CHEAP_KDF.parallelism}); "
    "runpy.run_module('tracekit', run_name='__main__')"
)

#: CSI and OSC sequences, and the two-byte escapes Rich writes (cursor, erase, show/hide).
_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def _take_the_terminal() -> None:
    """In the child before exec: a new session whose controlling terminal is the pty on
    stdin, so getpass opens /dev/tty and Ctrl-C (\\x03) sends SIGINT to tracekit; and
    SIGINT's default action, as a shell gives a command run at a terminal. (A test run
    started in the background of a shell script inherits SIGINT ignored, and so would
    tracekit, which then rightly keeps ignoring Ctrl-C.)"""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Terminal:
    """tracekit running on a pseudo-terminal ``columns`` wide; what it printed is ``screen``."""

    def __init__(self, args: tuple[str, ...], *, columns: int, env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        try:
            self.child = subprocess.Popen(
                [sys.executable, "-c", LAUNCH_TRACEKIT, *args],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=REPO,
                preexec_fn=_take_the_terminal,
                close_fds=True,
            )
        finally:
            os.close(slave)  # only the child holds it: its exit ends the output (EIO)
        self.master = master
        self.output = bytearray()
        self.ended = False
        self._position = 0  # in the flattened screen: where the next expect starts looking

    # -- what it printed -------------------------------------------------------------------
    @property
    def screen(self) -> str:
        """Everything printed, escape sequences removed, lines ending in "\\n"."""
        text = _ESCAPE.sub("", self.output.decode("utf-8", errors="replace"))
        return text.replace("\r\n", "\n").replace("\r", "\n")

    @property
    def flat(self) -> str:
        """The screen with every run of white space as one space: a message Rich wrapped
        at the terminal's width (or redrew, for a spinner) still reads as one sentence."""
        return " ".join(self.screen.split())

    def _read(self, until: float) -> bool:
        """Read what is there, waiting until ``until`` at most; False once the child is gone."""
        if self.ended:
            return False
        ready, _, _ = select.select([self.master], [], [], max(0.0, until - time.monotonic()))
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every process with the terminal open has closed it
            chunk = b""
        if not chunk:
            self.ended = True
            return False
        self.output += chunk
        return True

    def expect(self, text: str, *, timeout: float = READ_TIMEOUT) -> None:
        """Wait until ``text`` (white space flattened) appears after what was expected before."""
        wanted = " ".join(text.split())
        deadline = time.monotonic() + timeout
        while (found := self.flat.find(wanted, self._position)) < 0:
            if time.monotonic() >= deadline or not self._read(deadline):
                raise AssertionError(
                    f"{text!r} did not appear within {timeout:g} s; the terminal shows:\n{self.screen}"
                )
        self._position = found + len(wanted)

    def watch(self, seconds: float) -> None:
        """Keep reading for ``seconds`` (only to show that something goes on that long)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self._read(deadline):
            pass

    # -- typing ----------------------------------------------------------------------------
    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def answer(self, prompt: str, text: str) -> None:
        """Wait for ``prompt``, then type ``text`` and Enter (typing ahead is not safe:
        getpass flushes what was typed before its prompt)."""
        self.expect(prompt)
        self.type(text + "\r")

    def unlock(self) -> None:
        self.answer("Passphrase for", PASSPHRASE)

    def finish(self, *, timeout: float = READ_TIMEOUT) -> int:
        """Read to the end of the output; the exit code."""
        deadline = time.monotonic() + timeout
        while self._read(deadline):
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"tracekit did not finish within {timeout:g} s; the terminal shows:\n{self.screen}"
                )
        return self.child.wait(timeout=max(1.0, deadline - time.monotonic()))

    def close(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()
        os.close(self.master)


@pytest.fixture
def terminal(store_path) -> Iterator:
    """Start ``tracekit ARGS`` on a terminal ``columns`` wide, on the test's store; the
    passphrase is typed at the prompt (none in the environment)."""
    started: list[Terminal] = []
    env = {name: value for name, value in os.environ.items() if name not in ("COLUMNS", "LINES")}
    env.update(
        {
            "TRACEKIT_STORE": str(store_path),
            "PYTHONPATH": str(REPO),
            "TERM": "xterm-256color",
            "NO_COLOR": "1",
            "LC_ALL": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8",
        }
    )

    def start(*args: str, columns: int = 80, **extra_env: str) -> Terminal:
        session = Terminal(args, columns=columns, env={**env, **extra_env})
        started.append(session)
        return session

    yield start
    for session in started:
        session.close()


def _never_echoed(session: Terminal) -> None:
    """The passphrase typed at the prompt is nowhere on the screen (the terminal echoes
    other answers: the tests check that one of them shows, so this absence means something)."""
    assert PASSPHRASE not in session.flat and PASSPHRASE.split()[-1] not in session.screen


# -- item 8: a new passphrase is asked for again when the two differ -------------------------------


def test_init_asks_again_when_the_two_passphrases_differ(terminal, store_path):
    session = terminal("init")
    session.answer("New passphrase for", PASSPHRASE)
    session.answer("(again):", PASSPHRASE + " typo")
    session.expect("The two passphrases do not match; type it again (2 more tries).")
    session.answer("New passphrase for", PASSPHRASE)
    session.answer("(again):", PASSPHRASE)
    assert session.finish() == 0, session.screen
    assert "Created store" in session.flat
    _never_echoed(session)
    from tracekit.store import open_store

    with open_store(store_path, bytearray(PASSPHRASE.encode())) as opened:  # the passphrase that matched
        assert opened.header.kdf == CHEAP_KDF


def test_init_gives_up_after_three_mismatches_and_leaves_no_file(terminal, store_path):
    session = terminal("init")
    for attempt in range(3):
        session.answer("New passphrase for", PASSPHRASE)
        session.answer("(again):", f"something else {attempt}")
    assert session.finish() == ExitCode.PASSPHRASE, session.screen
    assert "the two passphrases entered did not match (3 tries); nothing was created or changed" in session.flat
    leftovers = list(store_path.parent.iterdir()) if store_path.parent.exists() else []
    assert not store_path.exists() and leftovers == []
    _never_echoed(session)
    assert "something else" not in session.screen


# -- item 5: refer asks for a reason and a confirmation; "no" is not an error ----------------------


@pytest.fixture
def marked_case(store):
    """A case (made-up details) with a household contact; the store closed again."""
    book = Casebook(store, today=date(2020, 11, 1))
    case = book.add_case(
        person=PersonInput(name="Perpetua Quillfeather", phone="+447700900555"),
        test_date="2020-10-20",
        asymptomatic=True,
    )
    book.add_contact(
        case.ref, person=PersonInput(name="Ordinary Contact"), last_exposure="2020-10-19", setting="household"
    )
    store.close()
    return case


@pytest.fixture
def referable(marked_case, cli_with_store):
    """The case's person marked, and a vetted team to refer them to."""
    case = marked_case
    assert (
        cli_with_store("role", "mark", case.person.ref, "--role", "undercover-officer", "--reason", "ops").exit_code
        == 0
    )
    vetted = str(x25519.Identity.generate().to_public())
    assert cli_with_store("recipients", "add", "Vetted North", vetted, "--role", "vetted-team").exit_code == 0
    return case


def test_refer_at_a_terminal_shows_what_goes_asks_why_and_no_changes_nothing(terminal, referable, cli_with_store):
    person = referable.person.ref
    session = terminal("refer", person)
    session.unlock()
    session.answer("Reason (stored and audited; no names or numbers)", "operational protocol")
    session.expect(f"Refer {person} (undercover-officer): sealed to Vetted North.")
    session.expect(f"their cases: {referable.ref}; contacts of those cases: 1")
    session.answer(f"Seal {person} to the vetted team and purge it from this store? [y/N]", "n")
    session.expect("Nothing changed.")
    assert session.finish() == 0, session.screen
    assert "error" not in session.screen.lower()
    assert "operational protocol" in session.flat  # echoed as typed, unlike the passphrase
    assert "Quillfeather" not in session.screen and "900555" not in session.screen
    _never_echoed(session)
    assert as_json(cli_with_store, "person", "show", person)["ref"] == person  # still here
    assert as_json(cli_with_store, "referrals", "list")["items"] == []


def test_person_merge_answered_no_exits_0_with_nothing_changed(terminal, cli_with_store):
    keep = add_case(cli_with_store, "Ada Example", n=1)["person"]["ref"]
    other = add_case(cli_with_store, "Ada Exampel", n=2, test_date="2020-10-20")["person"]["ref"]
    session = terminal("person", "merge", keep, other)
    session.unlock()
    session.expect(f"Keep: {keep}")
    session.expect(f"Merge: {other}")
    session.answer(f"Merge {other} into {keep}? [y/N]", "n")
    session.expect("Nothing changed.")
    assert session.finish() == 0, session.screen
    assert "error" not in session.screen.lower() and "cancelled" not in session.screen
    _never_echoed(session)
    assert as_json(cli_with_store, "person", "show", other)["ref"] == other  # not merged


# -- item 1: a write that finds the store busy says so, waits, and keeps what was typed -------------


def _type_a_case(session: Terminal) -> None:
    """Answer ``case add --name 'Ada Example' --phone ...``'s questions: tested 10/10/2020, no symptoms."""
    session.unlock()
    session.answer("Test date", "10/10/2020")
    session.answer("Date symptoms started ('none' if no symptoms)", "none")


WAITING = f"Waiting for the store: process {os.getpid()}"


def test_a_busy_store_at_a_terminal_says_who_writes_and_waits_past_the_timeout(terminal, other_writer, cli_with_store):
    session = terminal("case", "add", "--name", "Ada Example", "--phone", "07700 900001", TRACEKIT_BUSY_TIMEOUT="0.2")
    _type_a_case(session)
    session.expect(WAITING)
    assert "10/10/2020" in session.flat  # echoed as typed, unlike the passphrase
    session.expect("is writing to it. Press Ctrl-C to give up.")
    session.watch(1.5)  # well past the 0.2 s a script would wait
    assert session.child.poll() is None, session.screen
    assert "store is busy" not in session.flat
    other_writer.conn.execute("ROLLBACK")
    session.expect("The store is free again; carrying on.")
    session.expect("Recorded case C-")
    assert session.finish() == 0, session.screen
    _never_echoed(session)
    [case] = as_json(cli_with_store, "case", "list")["items"]
    assert case["test_date"] == "2020-10-10"


def test_ctrl_c_while_waiting_prints_the_command_that_keeps_the_answers(terminal, other_writer, cli_with_store):
    session = terminal("case", "add", "--name", "Ada Example", "--phone", "07700 900001")
    _type_a_case(session)
    session.expect(WAITING)
    session.type("\x03")
    session.expect("Nothing was recorded. Your answers are kept in this command; run it when the store is free:")
    assert session.finish() == ExitCode.INTERRUPTED, session.screen
    assert f"gave up waiting for the store while process {os.getpid()}" in session.flat
    printed = [line.strip() for line in session.screen.splitlines() if line.strip().startswith("tracekit case add")]
    assert printed == [
        "tracekit case add --name 'Ada Example' --phone '07700 900001' --test-date 2020-10-10 --asymptomatic"
    ]
    _never_echoed(session)
    other_writer.conn.execute("ROLLBACK")
    assert as_json(cli_with_store, "case", "list")["items"] == []  # nothing was recorded
    again = cli_with_store("--json", *shlex.split(printed[0])[1:])
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["person"]["phone"] == "+447700900001"


# -- item 6: tables at the terminal's own width -----------------------------------------------------


def test_case_show_at_60_columns_keeps_every_reference_whole(terminal, cli_with_store):
    """At 60 columns the contacts table squeezed the person column until a reference
    came two letters a line ('P-' over 'PP')."""
    columns = 60
    case = add_case(cli_with_store, "Ada Example", n=1)
    contacts = [
        add_contact(cli_with_store, case["ref"], "Bartholomew Maximilian Longname-Example", n=222, setting="household"),
        add_contact(cli_with_store, case["ref"], "Di Example", "--proximity", "1", "--duration", "20", n=14),
    ]
    session = terminal("case", "show", case["ref"], columns=columns)
    session.unlock()
    assert session.finish() == 0, session.screen
    lines = [line for line in session.screen.splitlines() if not line.startswith("Passphrase for ")]
    assert all(len(line) <= columns for line in lines), [line for line in lines if len(line) > columns]
    assert "…" not in session.screen
    whole = [case["ref"], case["person"]["ref"], "07700 900001", "07700 900222", "07700 900014"]
    for contact in contacts:
        whole += [contact["ref"], contact["contact"]["ref"]]
    for value in whole:
        assert any(value in line for line in lines), f"{value!r} is not whole on one line:\n{session.screen}"
    _never_echoed(session)
