"""After every command of the demo, no canary value is in plaintext on disk.

The demo's steps are replayed in-process (cheap Argon2), with a private TMPDIR. After each
step, every regular file in the demo's directory and the temporary directory is read
and searched for canaries: values that went into the store but that no file may hold in
plaintext (the referred officer's details, and a free-text note, which central handovers
drop). The opened central bundle legitimately holds ordinary people's details: the scan
must find those, so it is known to see plaintext.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

from tracekit.cli.demo import (
    DEMO_LOOKUPS,
    DEMO_STEPS,
    lookup_command,
    lookup_from,
    prepare_workdir,
    step_command,
    step_lookups,
)

CANARIES = [
    b"Dana Confidential",
    b"Confidential",
    b"07700 900190",
    b"+447700900190",
    b"447700900190",
    b"07700900190",
    b"9990000026",
    b"999 000 0026",
    b"works nights",
]


def plaintext_files_with(needles: list[bytes], *folders: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for folder in folders:
        for root, _dirs, names in os.walk(folder):
            for name in names:
                path = Path(root) / name
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue
                data = path.read_bytes()
                hits = [n.decode() for n in needles if n in data]
                if hits:
                    found[str(path)] = hits
    return found


def test_demo_leaves_no_canary_on_disk(cli, tmp_path):
    workdir = tmp_path / "demo"
    workdir.mkdir()
    temp = Path(tempfile.gettempdir())  # private to this test (conftest)
    prepared = prepare_workdir(workdir)
    store = {"TRACEKIT_STORE": str(workdir / "demo.store")}
    for number, step in enumerate(DEMO_STEPS, 1):
        values = dict(prepared)
        for name in step_lookups(step):
            lookup = DEMO_LOOKUPS[name]
            found = cli(*lookup_command(lookup, workdir), env=store)
            assert found.exit_code == 0, found.stderr
            values[name] = lookup_from(json.loads(found.stdout), lookup)
        result = cli(
            *step_command(step, workdir, values),
            env={**store, **({"TRACEKIT_PASSPHRASE": step.passphrase} if step.passphrase else {})},
        )
        assert result.exit_code == step.expect_exit, f"step {number}: {result.stderr}"
        leaks = plaintext_files_with(CANARIES, workdir, temp)
        assert leaks == {}, f"after step {number} ({step.title}): {leaks}"
    # The control: the opened central bundle holds ordinary details in plaintext, by design.
    assert plaintext_files_with([b"Amara Example"], workdir / "received"), "the scan saw no plaintext at all"
