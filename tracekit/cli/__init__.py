"""The command-line interface: a thin layer over the library API."""

from __future__ import annotations

from tracekit.cli.app import app


def main() -> None:
    """Console-script entry point."""
    import signal

    # `tracekit ... | head`: when the reader goes away, end quietly like other Unix tools
    # (killed by SIGPIPE), not with exit 1, which means "internal error" in our table.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    app(prog_name="tracekit")


__all__ = ["app", "main"]
