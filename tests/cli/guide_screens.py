"""The captured screens in docs/guide-tracer.md, made by running the real commands.

The guide's story (Amara's and Femi's cases, their contacts, Ben's promotion and Gus,
made-up people and numbers) is recorded in a throwaway store with the real CLI, in
process, and each screen is the real command's output at a stated width, colour off:
piped (no COLUMNS: written whole, as on a wide terminal) or with COLUMNS=80 or 60.
References are random in real use and timestamps are the clock's; here the references
are the guide's, handed out in order, and the clock is the story's (each command a
minute after the one before, from the time the story sets), so the screens match the
rest of the guide. tests/cli/test_guide_screens.py checks the guide against this; to
rewrite the guide after a change to what tracekit prints:

    PYTHONPATH=. python -m tests.cli.guide_screens --write
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from unittest import mock

from tracekit.domain.refs import RefKind

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide-tracer.md"
PASSPHRASE = "guide screens: made-up data only"

#: The guide's references, in the order the story below creates them.
REFS = {
    "C": ["C-QYMD3A", "C-V7JPWT", "C-ZVEC2Z"],
    "P": ["P-5Y3710", "P-AWJ8S7", "P-DHD3TK", "P-C82TKH", "P-XG1JCR", "P-MPKZEN", "P-YZ7M9Y"],
    "E": ["E-JR048N", "E-SHP56A", "E-BF28DE", "E-KKF6PT", "E-DNJEQW", "E-QEQDTH"],
}


@dataclass(frozen=True)
class Screen:
    """A command whose output the guide shows between ``<!-- marker -->`` lines."""

    marker: str
    args: tuple[str, ...]
    columns: int | None = None  # None: piped, no width

    @property
    def prompt(self) -> str:
        width = "" if self.columns is None else f"COLUMNS={self.columns} "
        return f"$ {width}tracekit {' '.join(_quoted(arg) for arg in self.args)}"


@dataclass(frozen=True)
class At:
    """Set the story's clock: the next command runs at this UTC time, each after it a minute later."""

    when: str


def _quoted(arg: str) -> str:
    return f'"{arg}"' if " " in arg else arg


TODAY = ("today", "--date", "2020-10-15")

#: The story, in the guide's order: commands (``P-AWJ8S7`` style references are the
#: guide's own), the clock, and the screens the guide shows along the way.
STORY: list[tuple[str, ...] | Screen | At] = [
    At("2020-10-14T09:30:00+00:00"),
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
        "12/10/2020",
        "--onset",
        "10 Oct 2020",
    ),
    (
        "contact",
        "add",
        "C-QYMD3A",
        "--name",
        "Ben Example",
        "--phone",
        "07700 900102",
        "--last-exposure",
        "11/10/2020",
        "--setting",
        "workplace",
        "--proximity",
        "1.5",
        "--duration",
        "20",
    ),
    (
        "contact",
        "add",
        "C-QYMD3A",
        "--name",
        "Cleo Example",
        "--phone",
        "07700 900103",
        "--last-exposure",
        "2020-10-12",
        "--setting",
        "household",
    ),
    (
        "contact",
        "add",
        "C-QYMD3A",
        "--name",
        "Dev Example",
        "--phone",
        "07700 900104",
        "--last-exposure",
        "2020-10-09",
        "--setting",
        "social",
    ),
    (
        "contact",
        "add",
        "C-QYMD3A",
        "--name",
        "Esi Example",
        "--phone",
        "07700 900105",
        "--last-exposure",
        "2020-10-01",
        "--setting",
        "education",
        "--proximity",
        "1",
        "--duration",
        "45",
    ),
    (
        "case",
        "add",
        "--name",
        "Femi Example",
        "--phone",
        "07700 900106",
        "--test-date",
        "2020-10-13",
        "--onset",
        "2020-10-12",
    ),
    (
        "contact",
        "add",
        "C-V7JPWT",
        "--person",
        "P-AWJ8S7",
        "--last-exposure",
        "13/10/2020",
        "--setting",
        "social",
        "--proximity",
        "0.5",
        "--duration",
        "10",
        "--face-to-face",
    ),
    # the worklist is taken before Dev's distance and time are recorded
    Screen("today-wide", TODAY),
    Screen("today-80", TODAY, 80),
    Screen("today-60", TODAY, 60),
    Screen("contact-show-not-close", ("contact", "show", "E-BF28DE"), 80),
    At("2020-10-15T09:05:00+00:00"),
    ("contact", "update", "E-BF28DE", "--proximity", "1", "--duration", "25"),
    At("2020-10-15T10:12:00+00:00"),
    ("contact", "call", "E-SHP56A", "--outcome", "no-answer"),
    At("2020-10-15T11:40:00+00:00"),
    ("contact", "call", "E-SHP56A", "--outcome", "isolating", "--note", "isolating at home with her partner"),
    Screen("contact-show", ("contact", "show", "E-SHP56A"), 80),
    At("2020-10-16T09:20:00+00:00"),
    ("contact", "promote", "P-AWJ8S7", "--test-date", "16/10/2020", "--onset", "15/10/2020"),
    (
        "contact",
        "add",
        "C-ZVEC2Z",
        "--name",
        "Gus Example",
        "--phone",
        "07700 900107",
        "--last-exposure",
        "2020-10-15",
        "--setting",
        "household",
    ),
    Screen("case-tree", ("case", "tree", "C-ZVEC2Z"), 80),
    Screen("case-show", ("case", "show", "C-QYMD3A")),
    Screen("person-search", ("person", "search", "07700900104")),
    ("person", "update", "P-DHD3TK", "--phone", "07700 900113", "--address", "2 Example Mews"),
    Screen("case-list", ("case", "list", "--status", "open", "--since", "13/10/2020")),
    Screen("contact-list", ("contact", "list", "--limit", "3")),
    Screen("contact-list-80", ("contact", "list", "--limit", "3"), 80),
    Screen("rules-list", ("rules", "list")),
    Screen("rules-show", ("rules", "show", "england-2020-05-28"), 80),
    Screen("person-search-json", ("--json", "person", "search", "07700900106")),
]

SCREENS = {step.marker: step for step in STORY if isinstance(step, Screen)}


@contextmanager
def _guide_refs() -> Iterator[None]:
    queues = {kind: list(refs) for kind, refs in REFS.items()}

    def next_ref(kind: RefKind) -> str:
        return queues[kind.value].pop(0)

    with mock.patch("tracekit.records.casebook.new_ref", next_ref):
        yield


@contextmanager
def _story_clock() -> Iterator[dict[str, datetime]]:
    """The time records are stamped with is ``clock["now"]`` (the caller moves it)."""
    clock = {"now": datetime.fromisoformat("2020-10-14T09:00:00+00:00")}

    def utcnow() -> str:
        return clock["now"].isoformat(timespec="seconds")

    with (
        mock.patch("tracekit.records.casebook.utcnow", utcnow),
        mock.patch("tracekit.records.sensitive.utcnow", utcnow),
    ):
        yield clock


def screens(workdir: Path) -> dict[str, str]:
    """Each screen's text (marker: text), from a new store in ``workdir``."""
    from typer.testing import CliRunner

    from tracekit.cli import app
    from tracekit.crypto.kdf import KdfParams

    env = {
        "TRACEKIT_STORE": str(workdir / "guide.store"),
        "TRACEKIT_PASSPHRASE": PASSPHRASE,
        "NO_COLOR": "1",
        "HOME": str(workdir),
        "XDG_DATA_HOME": str(workdir / "data"),
        "COLUMNS": "200",
    }
    runner = CliRunner()

    def run(*args: str, columns: int | None = 200) -> str:
        with mock.patch.dict(os.environ, env):
            if columns is None:
                del os.environ["COLUMNS"]  # piped: no width
            else:
                os.environ["COLUMNS"] = str(columns)
            result = runner.invoke(app, list(args), catch_exceptions=False)
        if result.exit_code != 0:
            raise RuntimeError(f"tracekit {' '.join(args)}: exit {result.exit_code}: {result.stderr}")
        return result.stdout

    shown: dict[str, str] = {}
    # cheap key derivation: the store is thrown away, and the screens do not show it
    with mock.patch(
        "tracekit.crypto.kdf.default_params", lambda: KdfParams(memory_log2=10, time_cost=1, parallelism=1)
    ):
        run("init")
        with _guide_refs(), _story_clock() as clock:
            for step in STORY:
                if isinstance(step, At):
                    clock["now"] = datetime.fromisoformat(step.when)
                elif isinstance(step, Screen):
                    shown[step.marker] = run(*step.args, columns=step.columns)
                else:
                    run(*step)
                    clock["now"] += timedelta(minutes=1)
    return shown


def block(marker: str, text: str) -> str:
    """The guide's text for one screen, between its markers."""
    return f"<!-- {marker} -->\n```console\n{SCREENS[marker].prompt}\n{text.rstrip()}\n```\n<!-- /{marker} -->"


def _marked(marker: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- {marker} -->\n.*?<!-- /{marker} -->", re.DOTALL)


def _span(guide: str, marker: str) -> tuple[int, int]:
    found = _marked(marker).search(guide)
    if not found:
        raise LookupError(f"{GUIDE.name} has no <!-- {marker} --> block")
    return found.span()


def in_guide(guide: str, marker: str) -> str:
    start, end = _span(guide, marker)
    return guide[start:end]


def rewritten(guide: str, shown: dict[str, str]) -> str:
    for marker, text in shown.items():
        start, end = _span(guide, marker)
        guide = guide[:start] + block(marker, text) + guide[end:]
    return guide


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        shown = screens(Path(workdir))
    if "--write" in sys.argv[1:]:
        GUIDE.write_text(rewritten(GUIDE.read_text(encoding="utf-8"), shown), encoding="utf-8")
        print(f"rewrote {len(shown)} screens in {GUIDE}")
    else:
        for marker, text in shown.items():
            print(block(marker, text), end="\n\n")


if __name__ == "__main__":
    main()
