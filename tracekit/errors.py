"""The one error hierarchy of tracekit, with the exit code of each expected failure.

Every failure a user can cause or meet is a :class:`TracekitError`. The CLI turns it into
one line on stderr and its exit code (see ``tracekit.cli.errors``); nothing else in the
package decides how errors are shown. Messages name the thing that is wrong (which
field, which row, which record reference) and never contain a passphrase, a key or the
identity of a person in a sensitive role.

The exit codes are part of the interface scripts depend on: they are listed in
``docs/exit-codes.md`` (checked against this module by a test) and never renumbered.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes. Stable: never renumber, only add."""

    OK = 0
    INTERNAL = 1  # a bug: an unexpected exception (reported without locals)
    USAGE = 2  # bad command-line usage (Typer/Click's own code)
    STORE_NOT_FOUND = 3
    NOT_A_STORE = 4
    WRONG_PASSPHRASE = 5  # wrong passphrase or damaged store (they cannot be told apart)
    STORE_TOO_NEW = 6
    STORE_EXISTS = 7
    PASSPHRASE = 8  # no passphrase source, unsafe passphrase file, mismatch at confirmation
    STORE_BUSY = 9
    INTEGRITY = 10  # store check or audit verification found damage or tampering
    VALIDATION = 11  # input data failed validation
    NOT_FOUND = 12  # a record reference that does not exist
    CONFLICT = 13  # the change conflicts with what is stored (duplicates, state)
    KEYRING = 14  # the kernel keyring is unavailable
    ENVIRONMENT = 15  # unsupported library (e.g. SQLCipher not 4.x) or platform
    WRITE_FAILED = 16  # a file could not be written (disk full, permissions)
    POLICY = 17  # a policy refuses the action or the policy file is invalid
    LEAK_BLOCKED = 18  # the leak guard stopped an export
    BUNDLE_INVALID = 19  # a bundle or referral failed verification
    DATABASE = 20  # the central team's database is unreachable, refused, or its schema does not fit
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    TERMINATED = 143  # SIGTERM or SIGHUP (128 + SIGTERM)


#: One line per exit code: shown in ``tracekit --help`` and docs/exit-codes.md.
EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.INTERNAL: "internal error (a bug; please report it)",
    ExitCode.USAGE: "usage error (unknown option, missing argument)",
    ExitCode.STORE_NOT_FOUND: "no store at the given path",
    ExitCode.NOT_A_STORE: "the file is not a tracekit store",
    ExitCode.WRONG_PASSPHRASE: "wrong passphrase or damaged store",
    ExitCode.STORE_TOO_NEW: "the store was made by a newer tracekit",
    ExitCode.STORE_EXISTS: "the destination already exists (tracekit never overwrites)",
    ExitCode.PASSPHRASE: "no usable passphrase (no source, unsafe file, mismatch, too short)",
    ExitCode.STORE_BUSY: "the store is busy (another process is writing)",
    ExitCode.INTEGRITY: "damage or tampering found (store check, audit chain)",
    ExitCode.VALIDATION: "input failed validation",
    ExitCode.NOT_FOUND: "no record with that reference",
    ExitCode.CONFLICT: "the change conflicts with what is stored",
    ExitCode.KEYRING: "the kernel keyring is unavailable",
    ExitCode.ENVIRONMENT: "unsupported library or platform",
    ExitCode.WRITE_FAILED: "a file could not be written (disk full, permissions)",
    ExitCode.POLICY: "refused by policy, or the policy is invalid",
    ExitCode.LEAK_BLOCKED: "the leak guard stopped an export",
    ExitCode.BUNDLE_INVALID: "a bundle or referral failed verification (altered, malformed, or signed by a key you do not accept)",
    ExitCode.DATABASE: "the central database is unreachable, refused the operation, or needs migrating",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
    ExitCode.TERMINATED: "stopped by SIGTERM or SIGHUP (cleaned up as for Ctrl-C)",
}


class TracekitError(Exception):
    """Base class of every expected failure. ``str(error)`` is the user-facing message."""

    exit_code: ExitCode = ExitCode.INTERNAL
    #: A short, stable, machine-readable name shown in ``--json`` error output.
    code: str = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class StoreNotFound(TracekitError):
    exit_code = ExitCode.STORE_NOT_FOUND
    code = "store-not-found"


class NotAStore(TracekitError):
    exit_code = ExitCode.NOT_A_STORE
    code = "not-a-store"


class WrongPassphrase(TracekitError):
    exit_code = ExitCode.WRONG_PASSPHRASE
    code = "wrong-passphrase"

    def __init__(self, message: str = "wrong passphrase or damaged store", **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]


class StoreTooNew(TracekitError):
    exit_code = ExitCode.STORE_TOO_NEW
    code = "store-too-new"


class StoreExists(TracekitError):
    exit_code = ExitCode.STORE_EXISTS
    code = "store-exists"


class PassphraseError(TracekitError):
    exit_code = ExitCode.PASSPHRASE
    code = "passphrase"


class StoreBusy(TracekitError):
    exit_code = ExitCode.STORE_BUSY
    code = "store-busy"


class IntegrityError(TracekitError):
    exit_code = ExitCode.INTEGRITY
    code = "integrity"


class ValidationError(TracekitError):
    """A value failed validation.

    ``field`` names the field, ``expected`` says what form was expected; ``row`` and
    ``column`` are filled in by importers. The message never needs to contain the value
    itself: callers decide whether echoing it is safe (it is not for sensitive people).
    """

    exit_code = ExitCode.VALIDATION
    code = "validation"

    def __init__(
        self,
        field: str,
        problem: str,
        *,
        expected: str | None = None,
        row: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.field = field
        self.problem = problem
        self.expected = expected
        self.row = row
        self.column = column
        super().__init__(self._compose(), hint=hint)

    def _compose(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"line {self.row}")
        if self.column is not None and self.column != self.field:
            where.append(f"column {self.column!r}")
        prefix = f"{', '.join(where)}: " if where else ""
        text = f"{prefix}{self.field}: {self.problem}"
        if self.expected:
            text += f" (expected {self.expected})"
        return text

    def at(self, *, row: int | None = None, column: str | None = None) -> ValidationError:
        """A copy of this error located at an input row and column."""
        return ValidationError(
            self.field,
            self.problem,
            expected=self.expected,
            row=row if row is not None else self.row,
            column=column if column is not None else self.column,
            hint=self.hint,
        )


class ValidationProblems(ValidationError):
    """Several values of one command failed validation: all of them, one a line.

    ``problems`` holds each :class:`ValidationError`; ``field`` names the first one's field.
    """

    def __init__(self, problems: list[ValidationError]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        self.field = first.field
        self.problem = first.problem
        self.expected = first.expected
        self.row = None
        self.column = None
        lines = [f"{len(self.problems)} values failed validation:"]
        for problem in self.problems:
            lines.append(f"  {problem.message}" + (f"; {problem.hint}" if problem.hint else ""))
        TracekitError.__init__(self, "\n".join(lines))


class UsageProblem(TracekitError):
    """The command line itself is wrong: an unknown option, a bad option value, a missing
    argument (Click's usage errors, reported through tracekit's error boundary), or
    options that do not go together."""

    exit_code = ExitCode.USAGE
    code = "usage"


class NotFound(TracekitError):
    exit_code = ExitCode.NOT_FOUND
    code = "not-found"


class Conflict(TracekitError):
    exit_code = ExitCode.CONFLICT
    code = "conflict"


class KeyringUnavailable(TracekitError):
    exit_code = ExitCode.KEYRING
    code = "keyring-unavailable"


class EnvironmentProblem(TracekitError):
    exit_code = ExitCode.ENVIRONMENT
    code = "environment"


class WriteFailed(TracekitError):
    exit_code = ExitCode.WRITE_FAILED
    code = "write-failed"


class PolicyError(TracekitError):
    exit_code = ExitCode.POLICY
    code = "policy"


class LeakBlocked(TracekitError):
    exit_code = ExitCode.LEAK_BLOCKED
    code = "leak-blocked"


class BundleInvalid(TracekitError):
    exit_code = ExitCode.BUNDLE_INVALID
    code = "bundle-invalid"


class UnknownSigner(BundleInvalid):
    """A bundle verified, but its signer is not a tracer the central team registered."""

    code = "unknown-signer"


class DatabaseError(TracekitError):
    """The central team's PostgreSQL database: unreachable, refused, or on another schema.

    Messages name the database without its password (``tracekit.central.database``)."""

    exit_code = ExitCode.DATABASE
    code = "database"


class Interrupted(TracekitError):
    exit_code = ExitCode.INTERRUPTED
    code = "interrupted"


class Terminated(Interrupted):
    """Stopped by SIGTERM or SIGHUP (see ``tracekit.cli.signals``)."""

    exit_code = ExitCode.TERMINATED
    code = "terminated"
