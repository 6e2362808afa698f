"""Global options, output consoles and store opening shared by every command.

Global options (``--store``, ``--json``, ``--quiet``, ``--no-color``, ``--passphrase-file``,
``--passphrase-fd``) work before the command (``tracekit --store X case list``) and
after it (``tracekit case list --store X``): :func:`command` adds them to each command,
hidden from its help page, which points to ``tracekit --help`` instead (listed once).
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from tracekit.store import Store

GLOBAL_PANEL = "Global options"


@dataclass
class Settings:
    store: Path | None = None
    json: bool = False
    quiet: bool = False
    no_color: bool = False
    passphrase_file: Path | None = None
    passphrase_fd: int | None = None

    def merged(self, **values: Any) -> Settings:
        """These settings with any option given after the command taking precedence."""
        given = {k: v for k, v in values.items() if v not in (None, False)}
        return replace(self, **given)


StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help=(
            "The store file. Default: $TRACEKIT_STORE, else tracekit.store in the user data directory of the platform."
        ),
        rich_help_panel=GLOBAL_PANEL,
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Machine-readable JSON on stdout (see docs/json.md).", rich_help_panel=GLOBAL_PANEL),
]
QuietOption = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="Only results and errors; no progress or notes.", rich_help_panel=GLOBAL_PANEL),
]
NoColorOption = Annotated[
    bool,
    typer.Option(
        "--no-color", help="No colour (also: the NO_COLOR environment variable).", rich_help_panel=GLOBAL_PANEL
    ),
]
PassphraseFileOption = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Read the passphrase from this file (must not be readable by group or others).",
        rich_help_panel=GLOBAL_PANEL,
        show_default=False,
    ),
]
PassphraseFdOption = Annotated[
    int | None,
    typer.Option(
        "--passphrase-fd",
        help="Read the passphrase from this open file descriptor.",
        rich_help_panel=GLOBAL_PANEL,
        show_default=False,
    ),
]

_GLOBAL_PARAMS: dict[str, Any] = {
    "store": StoreOption,
    "json": JsonOption,
    "quiet": QuietOption,
    "no_color": NoColorOption,
    "passphrase_file": PassphraseFileOption,
    "passphrase_fd": PassphraseFdOption,
}
assert set(_GLOBAL_PARAMS) == {f.name for f in fields(Settings)}

#: How :func:`command` names its copies of the global options.
_GLOBAL_PARAM_PREFIX = "tk_global_"


def _hidden(annotation: Any) -> Any:
    """The same option, left out of a command's help page (listed once, on the root page)."""
    import copy

    base, info = typing.get_args(annotation)
    hidden = copy.copy(info)
    hidden.hidden = True
    return Annotated[base, hidden]


def is_global_param(param: Any) -> bool:
    """Whether a command's parameter is its copy of a global option (see :func:`command`)."""
    return (param.name or "").startswith(_GLOBAL_PARAM_PREFIX)


_settings = Settings()


def set_global_settings(settings: Settings) -> None:
    global _settings
    _settings = settings
    _Output.reset()


def settings() -> Settings:
    return _settings


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give a command function the global options too (merged over the callback's)."""
    own = list(inspect.signature(fn, eval_str=True).parameters.values())
    extra = [
        inspect.Parameter(
            f"{_GLOBAL_PARAM_PREFIX}{name}",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=_hidden(annotation),
            default=False if annotation.__origin__ is bool else None,
        )
        for name, annotation in _GLOBAL_PARAMS.items()
    ]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(f"{_GLOBAL_PARAM_PREFIX}{name}", None) for name in _GLOBAL_PARAMS}
        set_global_settings(_settings.merged(**values))
        return fn(*args, **kwargs)

    wrapper.__signature__ = inspect.Signature([*own, *extra])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {
        **typing.get_type_hints(fn, include_extras=True),
        **{p.name: p.annotation for p in extra},
    }
    return wrapper


#: The width of stdout when it is not a terminal: wider than any line tracekit prints.
PIPED_WIDTH = 1_000_000


class _Output:
    _out: Console | None = None
    _err: Console | None = None

    @classmethod
    def reset(cls) -> None:
        cls._out = None
        cls._err = None


def _color_disabled() -> bool:
    return _settings.no_color or "NO_COLOR" in os.environ


def out() -> Console:
    """The stdout console (results)."""
    if _Output._out is None:
        _Stdout = _stdout_console_class()
        # emoji=False: a ":name:" in a record (a note, an address) is shown as typed,
        # never turned into an emoji; it also saves a scan of every string printed.
        console = _Stdout(file=sys.stdout, no_color=_color_disabled(), highlight=False, emoji=False, soft_wrap=False)
        if not console.is_terminal and "COLUMNS" not in os.environ:
            # Into a pipe or a file: no width to fit (Rich would assume 80 columns), so a
            # table is written whole (no column left out, nothing wrapped, no padding) and
            # a long line is not broken. COLUMNS, if set, is still the width asked for.
            console.width = PIPED_WIDTH
        _Output._out = console
    return _Output._out


def _stdout_console_class() -> type:
    from rich.console import Console

    class Stdout(Console):
        """Never crops a line to the width: the only lines wider than the terminal are
        table rows whose values cannot fit it (render._FitTable), and a value cut off at
        the edge would be worse than a row the terminal wraps."""

        def print(self, *objects: Any, crop: bool = False, **kwargs: Any) -> None:
            super().print(*objects, crop=crop, **kwargs)

    return Stdout


def err() -> Console:
    """The stderr console (progress, warnings, errors)."""
    if _Output._err is None:
        from rich.console import Console

        _Output._err = Console(file=sys.stderr, no_color=_color_disabled(), highlight=False, emoji=False, stderr=True)
    return _Output._err


def note(message: str, *, one_line: bool = False) -> None:
    """A human note on stderr, hidden by --quiet and --json; ``one_line`` never wraps it."""
    if not (_settings.quiet or _settings.json):
        err().print(message, soft_wrap=one_line)


def warn(message: str) -> None:
    """A warning on stderr, always shown (also with --json and --quiet)."""
    err().print(f"[yellow]warning:[/yellow] {message}", markup=True)


def emit_json(data: Any) -> None:
    from tracekit.cli.safe_text import terminal_json

    sys.stdout.write(terminal_json(data) + "\n")
    sys.stdout.flush()


def store_path() -> Path:
    from tracekit.config import resolve_store_path

    return resolve_store_path(_settings.store)


def passphrase_source() -> Any:
    from tracekit.crypto.passphrase import PassphraseSource

    return PassphraseSource(file=_settings.passphrase_file, fd=_settings.passphrase_fd)


def open_current_store(*, for_check: bool = False) -> Store:
    """Open the selected store (see :func:`_open_store`). A write that finds another
    process writing says who it is and waits (:func:`wait_for_store`)."""
    store = _open_store(for_check=for_check)
    store.busy_waiter = wait_for_store
    return store


def _open_store(*, for_check: bool) -> Store:
    """Open the selected store: explicit source, else cached key, else environment, else prompt.

    The kernel-keyring key (``tracekit unlock``) is used only when no passphrase file or
    descriptor is given; the header is read first, so a missing or foreign file fails
    before any prompt.
    """
    from tracekit.crypto import keyring
    from tracekit.crypto.passphrase import ENVIRONMENT_VARIABLE, read_passphrase
    from tracekit.errors import WrongPassphrase
    from tracekit.store import open_store, read_header

    path = store_path()
    header = read_header(path)
    source = passphrase_source()
    explicit = source.file is not None or source.fd is not None or ENVIRONMENT_VARIABLE in os.environ
    if not explicit:
        cached = keyring.cached_key(header.store_id)
        if cached is not None:
            try:
                return open_store(path, key=cached, migrate=not for_check)
            except WrongPassphrase:
                keyring.forget_key(header.store_id)
            finally:
                _zero(cached)  # open_store keeps its own copy
    passphrase = read_passphrase(source, prompt=f"Passphrase for {path}")
    if source.file is None and source.fd is None:
        os.environ.pop(ENVIRONMENT_VARIABLE, None)  # read once; nothing started later inherits it
    try:
        return open_store(path, passphrase, migrate=not for_check)
    finally:
        _zero(passphrase)


def _zero(buffer: bytearray) -> None:
    for i in range(len(buffer)):
        buffer[i] = 0


def stderr_is_terminal() -> bool:
    """Whether stderr is a terminal (not a file or a log). Tests replace this."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def interactive() -> bool:
    """Whether tracekit may ask questions: stdin is a terminal. Tests replace this."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


# -- waiting for the store while another process writes to it (an import, a backup) -------
#
# At a terminal the tracer is told who is writing and tracekit keeps waiting, with a
# spinner, until the store is free or the tracer gives up with Ctrl-C. Scripts wait at most
# the bounded TRACEKIT_BUSY_TIMEOUT (10 s by default) and then fail with "store is busy"
# (exit 9), after a note on stderr saying whom they waited for.

#: How long each attempt to take the lock waits at a terminal before the next one.
POLL_SECONDS = 0.25


def wait_for_store(writer: str, try_lock: Callable[[float], bool]) -> None:
    """A :data:`tracekit.store.core.BusyWaiter` for the CLI."""
    from tracekit.cli.safe_text import safe_markup
    from tracekit.errors import Interrupted
    from tracekit.store.core import BUSY_TIMEOUT_ENV, busy_timeout_seconds, store_busy

    if not interactive():
        timeout = busy_timeout_seconds()
        note(
            f"The store is busy: {safe_markup(writer)} is writing to it; waiting up to {timeout:g} s ({BUSY_TIMEOUT_ENV})."
        )
        if not try_lock(timeout):
            raise store_busy(None, writer)
        return
    status = f"Waiting for the store: {safe_markup(writer)} is writing to it. Press Ctrl-C to give up."
    try:
        with err().status(status):
            while not try_lock(POLL_SECONDS):
                pass
    except KeyboardInterrupt:
        raise Interrupted(f"gave up waiting for the store while {writer} was writing to it") from None
    note("The store is free again; carrying on.")
