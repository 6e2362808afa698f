"""Waiting for the store while another process writes to it (an import, a backup).

At a terminal the tracer is told who is writing and tracekit keeps waiting, with a
spinner, until the store is free or the tracer gives up with Ctrl-C. Scripts wait at most
the bounded ``TRACEKIT_BUSY_TIMEOUT`` (10 s by default) and then fail with "store is
busy" (exit 9), after a note on stderr saying whom they waited for.
"""

from __future__ import annotations

from collections.abc import Callable

from tracekit.cli import context
from tracekit.cli.safe_text import safe_markup
from tracekit.errors import Interrupted

#: How long each attempt to take the lock waits at a terminal before the next one.
POLL_SECONDS = 0.25


def wait_for_store(writer: str, try_lock: Callable[[float], bool]) -> None:
    """A :data:`tracekit.store.core.BusyWaiter` for the CLI."""
    from tracekit.store.core import BUSY_TIMEOUT_ENV, busy_timeout_seconds, store_busy

    if not context.interactive():
        timeout = busy_timeout_seconds()
        context.note(f"The store is busy: {safe_markup(writer)} is writing to it; waiting up to {timeout:g} s ({BUSY_TIMEOUT_ENV}).")
        if not try_lock(timeout):
            raise store_busy(None, writer)
        return
    status = f"Waiting for the store: {safe_markup(writer)} is writing to it. Press Ctrl-C to give up."
    try:
        with context.err().status(status):
            while not try_lock(POLL_SECONDS):
                pass
    except KeyboardInterrupt:
        raise Interrupted(f"gave up waiting for the store while {writer} was writing to it") from None
    context.note("The store is free again; carrying on.")
