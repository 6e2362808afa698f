"""The docs stay true to the code: generated references are current, every command documented."""

from __future__ import annotations

from pathlib import Path

import typer

from tracekit.cli import app
from tracekit.cli.docs import render, render_exit_codes

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_cli_reference_is_current():
    assert (DOCS / "cli.md").read_text() == render(), "docs/cli.md is stale: run `make docs-cli`"


def test_exit_codes_page_is_current():
    assert (DOCS / "exit-codes.md").read_text() == render_exit_codes(), "run `make docs-cli`"


def _all_command_paths(command, prefix=()):
    paths = []
    for name, sub in getattr(command, "commands", {}).items():
        path = (*prefix, name)
        paths.append(path)
        paths.extend(_all_command_paths(sub, path))
    return paths


def test_every_command_is_in_the_reference():
    reference = (DOCS / "cli.md").read_text()
    for path in _all_command_paths(typer.main.get_command(app)):
        assert f"## `tracekit {' '.join(path)}`" in reference


def test_every_command_has_help_text():
    def walk(command, prefix=()):
        for name, sub in getattr(command, "commands", {}).items():
            assert sub.help, f"tracekit {' '.join((*prefix, name))} has no help text"
            walk(sub, (*prefix, name))

    walk(typer.main.get_command(app))


def test_site_builds_in_strict_mode(tmp_path):
    """The docs build as a site (mkdocs, material theme, strict: broken links fail)."""
    import subprocess
    import sys

    root = DOCS.parent
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "threat-model" / "index.html").exists()
