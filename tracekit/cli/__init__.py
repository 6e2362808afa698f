"""The command-line interface: a thin layer over the library API."""

from __future__ import annotations

import sys

from tracekit.cli import signals
from tracekit.cli.app import app


def main() -> None:
    """Console-script entry point."""
    import signal

    # `tracekit ... | head`: when the reader goes away, end quietly like other Unix tools
    # (killed by SIGPIPE), not with exit 1, which means "internal error" in our table.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signals.install()  # SIGTERM and SIGHUP: clean up and exit 143, like Ctrl-C
    try:
        app(prog_name="tracekit")
    except signals.TerminationRequested as stop:
        # Met before or after a command's own error boundary (parsing the command line).
        from tracekit.cli.context import settings
        from tracekit.cli.errors import report_error

        sys.exit(report_error(signals.terminated(stop), as_json=settings().json))
    except OSError as exc:
        # Met before a command's own error boundary (--version, --help, usage messages):
        # output to a full disk is a write failure (exit 16); anything else is a bug.
        from tracekit.cli.errors import report_error, report_unexpected, write_failure

        failure = write_failure(exc)
        sys.exit(report_error(failure, as_json=False) if failure else report_unexpected(exc, as_json=False))


__all__ = ["app", "main"]
