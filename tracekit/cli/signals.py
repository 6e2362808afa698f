"""SIGTERM and SIGHUP end tracekit the way Ctrl-C does: cleanly, with nothing left behind.

Python's default for these signals is to die on the spot, skipping every ``finally``:
an import's rollback, the removal of a half-written backup, of a store copy under a new
passphrase, of a bundle's temporary file or of an opened bundle's plaintext. Here the
first of them raises :class:`TerminationRequested` in the main thread, so the same
cleanup that runs for an error or Ctrl-C runs, and the error boundary ends the process
with exit code 143 (``ExitCode.TERMINATED``). Later signals are ignored while that
cleanup runs; SIGKILL still ends the process at once.

Python runs a signal handler only between bytecodes of the main thread: during one long
call into C (SQLCipher's ``sqlcipher_export`` copying a large store for ``store backup``
or ``store passwd``, Argon2 deriving a key, SQLite waiting for a busy store) the signal
takes effect when that call returns, and the cleanup runs then.
"""

from __future__ import annotations

import signal
from types import FrameType

from tracekit.errors import Terminated

#: Signals that ask tracekit to stop; each exists only on POSIX.
TERMINATION_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class TerminationRequested(BaseException):
    """Raised by the handler. A BaseException, like KeyboardInterrupt: ``except Exception``
    does not swallow it, while ``finally`` and ``except BaseException`` cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


def terminated(stop: TerminationRequested) -> Terminated:
    return Terminated(f"stopped by {stop.signal_name}; nothing was changed by the unfinished step")


def install() -> None:
    """Handle SIGTERM and SIGHUP like Ctrl-C. Called once, by the console entry point."""
    for signum in TERMINATION_SIGNALS:
        signal.signal(signum, _request_termination)


def _request_termination(signum: int, frame: FrameType | None) -> None:
    for other in TERMINATION_SIGNALS:
        signal.signal(other, _ignore)  # a second signal must not cut the cleanup short
    raise TerminationRequested(signum)


def _ignore(signum: int, frame: FrameType | None) -> None:
    pass
