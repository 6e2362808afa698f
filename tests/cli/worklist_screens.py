"""The `today` screens shown in docs/guide-tracer.md, made by running the real command.

The guide's story (Amara's and Femi's cases and their contacts, made-up people and
numbers) is recorded in a throwaway store with the real CLI, in process, and
``tracekit today --date 2020-10-15`` is run piped (written whole, as on a wide terminal)
and with COLUMNS=80 and COLUMNS=60, colour off. References are random in real use;
here they are the guide's, handed out in order, so the screens match the rest of the
guide. tests/cli/test_worklist_screens.py checks the guide against this; to rewrite the
guide after a change to what `today` prints:

    PYTHONPATH=. python -m tests.cli.worklist_screens --write
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide-tracer.md"
PASSPHRASE = "worklist screens: made-up data only"
COMMAND = ("today", "--date", "2020-10-15")
#: The screens, by the marker around each in the guide: None is piped (no COLUMNS).
SCREENS = {"today-wide": None, "today-80": 80, "today-60": 60}

#: The guide's references, in the order the story below creates them.
REFS = {
    "C": ["C-QYMD3A", "C-V7JPWT"],
    "P": ["P-5Y3710", "P-AWJ8S7", "P-DHD3TK", "P-C82TKH", "P-XG1JCR", "P-MPKZEN"],
    "E": ["E-JR048N", "E-SHP56A", "E-BF28DE", "E-KKF6PT", "E-DNJEQW"],
}

#: The story, as commands (``{P-AWJ8S7}`` style references are the guide's own).
STORY: list[tuple[str, ...]] = [
    ("case", "add", "--name", "Amara Example", "--dob", "14/03/1985", "--nhs-number", "999 000 0018", "--phone",
     "07700 900101", "--postcode", "sw1a 1aa", "--test-date", "12/10/2020", "--onset", "10 Oct 2020"),
    ("contact", "add", "C-QYMD3A", "--name", "Ben Example", "--phone", "07700 900102", "--last-exposure", "11/10/2020",
     "--setting", "workplace", "--proximity", "1.5", "--duration", "20"),
    ("contact", "add", "C-QYMD3A", "--name", "Cleo Example", "--phone", "07700 900103", "--last-exposure",
     "2020-10-12", "--setting", "household"),
    ("contact", "add", "C-QYMD3A", "--name", "Dev Example", "--phone", "07700 900104", "--last-exposure", "2020-10-09",
     "--setting", "social"),
    ("contact", "add", "C-QYMD3A", "--name", "Esi Example", "--phone", "07700 900105", "--last-exposure", "2020-10-01",
     "--setting", "education", "--proximity", "1", "--duration", "45"),
    ("case", "add", "--name", "Femi Example", "--phone", "07700 900106", "--test-date", "2020-10-13", "--onset",
     "2020-10-12"),
    ("contact", "add", "C-V7JPWT", "--person", "P-AWJ8S7", "--last-exposure", "13/10/2020", "--setting", "social",
     "--proximity", "0.5", "--duration", "10", "--face-to-face"),
]


@contextmanager
def _guide_refs() -> Iterator[None]:
    queues = {kind: list(refs) for kind, refs in REFS.items()}

    def next_ref(kind):  # type: ignore[no-untyped-def]
        return queues[kind.value].pop(0)

    with mock.patch("tracekit.records.casebook.new_ref", next_ref):
        yield


def screens(workdir: Path) -> dict[str, str]:
    """Each screen's text (marker: text), from a new store in ``workdir``."""
    from typer.testing import CliRunner

    from tracekit.cli import app
    from tracekit.crypto.kdf import KdfParams

    env = {"TRACEKIT_STORE": str(workdir / "guide.store"), "TRACEKIT_PASSPHRASE": PASSPHRASE, "NO_COLOR": "1",
           "HOME": str(workdir), "XDG_DATA_HOME": str(workdir / "data"), "COLUMNS": "200"}
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

    # cheap key derivation: the store is thrown away, and the screens do not show it
    with mock.patch("tracekit.crypto.kdf.default_params", lambda: KdfParams(memory_log2=10, time_cost=1, parallelism=1)):
        run("init")
        with _guide_refs():
            for args in STORY:
                run(*args)
        return {marker: run(*COMMAND, columns=columns) for marker, columns in SCREENS.items()}


def block(marker: str, text: str) -> str:
    """The guide's text for one screen, between its markers."""
    columns = SCREENS[marker]
    prompt = f"$ tracekit {' '.join(COMMAND)}"
    if columns is not None:
        prompt = f"$ COLUMNS={columns} tracekit {' '.join(COMMAND)}"
    return f"<!-- {marker} -->\n```console\n{prompt}\n{text.rstrip()}\n```\n<!-- /{marker} -->"


def _marked(marker: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- {marker} -->\n.*?<!-- /{marker} -->", re.DOTALL)


def in_guide(guide: str, marker: str) -> str:
    found = _marked(marker).search(guide)
    if not found:
        raise LookupError(f"{GUIDE.name} has no <!-- {marker} --> block")
    return found.group(0)


def rewritten(guide: str, shown: dict[str, str]) -> str:
    for marker, text in shown.items():
        in_guide(guide, marker)
        guide = _marked(marker).sub(lambda _, marker=marker, text=text: block(marker, text), guide)
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
