"""The one place that turns errors into messages and exit codes.

Expected failures (:class:`TracekitError`) become one line on stderr (plus a hint line
when there is one) and their documented exit code. With ``--json`` the same goes to
stderr as a JSON object. Anything else is a bug: it is reported by type and location
only, never with the exception's text or local variables (either could hold a
passphrase or a protected person's details); ``TRACEKIT_DEBUG=1`` shows the plain
traceback, still without locals.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import traceback

from tracekit.errors import ExitCode, TracekitError, WriteFailed

DEBUG_ENV = "TRACEKIT_DEBUG"


def report_error(exc: TracekitError, *, as_json: bool) -> int:
    code = int(exc.exit_code)
    if as_json:
        payload = {"error": {"code": exc.code, "exit_code": code, "message": exc.message}}
        if exc.hint:
            payload["error"]["hint"] = exc.hint
        from tracekit.cli.safe_text import terminal_json

        sys.stderr.write(terminal_json(payload) + "\n")
    else:
        from tracekit.cli.context import err
        from tracekit.cli.safe_text import safe_markup

        console = err()
        # A message can quote a file name, a header cell or a value: shown as it is, never
        # read as markup or obeyed as a terminal control. It may run to several lines (an
        # import's problems, one a line).
        message = safe_markup(exc.message, multiline=True)
        console.print(f"[bold red]error:[/bold red] {message}", markup=True, highlight=False)
        if exc.hint:
            console.print(f"[dim]hint:[/dim] {safe_markup(exc.hint)}", markup=True, highlight=False)
    return code


#: OSError numbers that only writing can cause: met anywhere, they are a write failure.
WRITE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG", "EROFS") if hasattr(errno, name)
)


def write_failure(exc: OSError) -> WriteFailed | None:
    """The :class:`WriteFailed` an OSError means (exit code 16), or None if it is not a write failure."""
    if exc.errno not in WRITE_ERRNOS:
        return None
    from tracekit.files import describe_os_error

    what = exc.filename if exc.filename is not None else "the output"
    return WriteFailed(f"cannot write {what}: {describe_os_error(exc)}")


def report_unexpected(exc: BaseException, *, as_json: bool) -> int:
    """A bug. Say where, not what: the message could contain sensitive values."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" at {os.path.basename(last.filename)}:{last.lineno} in {last.name}"
    message = (
        f"internal error (a bug in tracekit): {type(exc).__name__}{where}. "
        "Nothing more is shown because details could include protected values; "
        f"set {DEBUG_ENV}=1 to see the traceback."
    )
    if os.environ.get(DEBUG_ENV) == "1":
        traceback.print_exception(exc, file=sys.stderr)  # plain: no locals, ever
    if as_json:
        payload = {"error": {"code": "internal", "exit_code": int(ExitCode.INTERNAL), "message": message}}
        sys.stderr.write(json.dumps(payload) + "\n")
    else:
        sys.stderr.write(f"error: {message}\n")
    return int(ExitCode.INTERNAL)
