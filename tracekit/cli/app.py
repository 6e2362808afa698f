"""The Typer application: the root command, its global options and the error boundary.

Command groups live in their own modules and are joined here with ``add_typer``. Heavy
imports (SQLCipher, Argon2, the domain) happen inside commands, so ``tracekit --version``
and ``--help`` stay cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from tracekit import __version__
from tracekit.cli.context import (
    JsonOption,
    NoColorOption,
    PassphraseFdOption,
    PassphraseFileOption,
    QuietOption,
    Settings,
    StoreOption,
    set_global_settings,
    settings,
)
from tracekit.cli.signals import TerminationRequested, terminated
from tracekit.errors import ExitCode, Interrupted, TracekitError


def _exit_code_epilog() -> str:
    rows = ", ".join(f"{int(code)} {code.name.lower().replace('_', '-')}" for code in ExitCode)
    return f"Exit codes: {rows}. What each means: docs/exit-codes.md."


class TracekitGroup(TyperGroup):
    """Root group: every command runs inside this error boundary, and every help page
    follows one style (see ``tracekit.cli.help``)."""

    def __init__(self, **kwargs: Any) -> None:
        from tracekit.cli.help import present

        super().__init__(**kwargs)
        present(self)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        from tracekit.cli.help import present_param

        # Typer adds --install-completion and --show-completion after building the group.
        for param in self.params:
            present_param(param)
        super().format_help(ctx, formatter)

    def make_context(self, info_name: Any, args: Any, parent: Any = None, **extra: Any) -> Any:
        # A usage error in the global options is raised here, one in a command's own
        # options or arguments inside invoke. Whether --json was asked for is read from
        # the words given: the callback that would set it may not have run.
        wants_json = _asks_for_json(args)
        try:
            ctx = super().make_context(info_name, args, parent=parent, **extra)
        except Exception as exc:
            if not (wants_json and _is_usage_error(exc)):
                raise
            raise typer.Exit(_report_usage_error(exc)) from None
        ctx.meta[_WANTS_JSON] = wants_json
        return ctx

    def invoke(self, ctx: Any) -> Any:
        from tracekit import files
        from tracekit.cli.errors import report_error, report_unexpected

        files.set_leftover_reporter(_report_leftovers)
        try:
            return super().invoke(ctx)
        except TracekitError as exc:
            ctx.exit(report_error(exc, as_json=settings().json))
        except BrokenPipeError:
            # The reader went away (`tracekit ... | head`): not an error of ours. Point stdout
            # at /dev/null so the interpreter's final flush does not fail again.
            import os
            import sys

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(0)
        except (KeyboardInterrupt, EOFError):
            ctx.exit(
                report_error(
                    Interrupted("interrupted; nothing was changed by the unfinished step"), as_json=settings().json
                )
            )
        except TerminationRequested as stop:
            ctx.exit(report_error(terminated(stop), as_json=settings().json))
        except typer.Exit:
            raise
        except OSError as exc:
            from tracekit.cli.errors import write_failure

            # A full disk, a quota, a file size limit or a read-only file system met where
            # no tracekit code expected it, most often standard output (`... > file`).
            failure = write_failure(exc)
            as_json = settings().json
            ctx.exit(
                report_unexpected(exc, as_json=as_json) if failure is None else report_error(failure, as_json=as_json)
            )
        except Exception as exc:  # a bug: report without details, see cli/errors.py
            if _is_usage_error(exc) and (ctx.meta.get(_WANTS_JSON) or settings().json):
                ctx.exit(_report_usage_error(exc))
            if _is_click_exception(exc):
                raise  # Typer shows usage errors, without --json, as usual
            ctx.exit(report_unexpected(exc, as_json=settings().json))
        finally:
            files.set_leftover_reporter(None)


_WANTS_JSON = "tracekit.wants_json"


def _asks_for_json(args: Any) -> bool:
    """Whether the command line asks for --json (anywhere before a ``--``)."""
    words = list(args or ())
    if "--" in words:
        words = words[: words.index("--")]
    return "--json" in words


def _is_usage_error(exc: Exception) -> bool:
    """Click's UsageError (an unknown option or command, a bad value, a missing argument)."""
    return _is_click_exception(exc) and any(cls.__name__ == "UsageError" for cls in type(exc).__mro__)


def _report_usage_error(exc: Any) -> int:
    """A usage error under --json: one JSON object on stderr, like every other error."""
    from tracekit.cli.errors import report_error
    from tracekit.errors import UsageProblem

    context = getattr(exc, "ctx", None)
    help_command = f"{context.command_path} --help" if context is not None else "tracekit --help"
    return report_error(UsageProblem(exc.format_message(), hint=f"see '{help_command}'"), as_json=True)


def _is_click_exception(exc: Exception) -> bool:
    # Typer vendors Click; its own exceptions (usage errors, Abort, Exit) pass through.
    return type(exc).__module__.split(".")[0] in ("click", "typer") or "click" in type(exc).__module__


app = typer.Typer(
    cls=TracekitGroup,
    name="tracekit",
    help=(
        "tracekit: an encrypted local case book for contact tracers. Records cases and "
        "contacts in one SQLCipher file, protects people in sensitive roles, and exports "
        "redacted handovers."
    ),
    epilog=_exit_code_epilog(),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"tracekit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    store: StoreOption = None,
    json: JsonOption = False,
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
    passphrase_file: PassphraseFileOption = None,
    passphrase_fd: PassphraseFdOption = None,
    version: Annotated[
        bool | None,
        typer.Option("--version", "-V", callback=_version_callback, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    """tracekit: an encrypted local case book for contact tracers."""
    set_global_settings(
        Settings(
            store=store,
            json=json,
            quiet=quiet,
            no_color=no_color,
            passphrase_file=passphrase_file,
            passphrase_fd=passphrase_fd,
        )
    )


def _report_leftovers(directory: Path, names: list[str]) -> None:
    from rich.markup import escape

    from tracekit.cli.context import note

    note(
        f"removed what an interrupted tracekit run left in {escape(str(directory))}: {escape(', '.join(names))}",
        one_line=True,
    )


def _register() -> None:
    from tracekit.cli import (
        audit_cmds,
        bundle_cmds,
        case_cmds,
        central_cmds,
        contact_cmds,
        demo,
        import_cmds,
        person_cmds,
        roles_cmds,
        rules_cmds,
        store_cmds,
        today_cmd,
    )

    store_cmds.register(app)
    today_cmd.register(app)
    case_cmds.register(app)
    contact_cmds.register(app)
    person_cmds.register(app)
    rules_cmds.register(app)
    roles_cmds.register(app)
    audit_cmds.register(app)
    bundle_cmds.register(app)
    central_cmds.register(app)
    import_cmds.register(app)
    demo.register(app)


_register()
