"""The command-line interface: a thin layer over the library API."""

from __future__ import annotations

from tracekit.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app(prog_name="tracekit")


__all__ = ["app", "main"]
