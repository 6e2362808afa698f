"""How every help page looks, decided once for the whole command tree.

Typer's defaults are not what people expect from a well-kept CLI: every option shows a
type label (``<str>``, ``<int range> [1<=x<=1000]``), usage shows ``{ref}``, docstrings keep
their source line breaks (so sentences break mid-line), and the global options would be
repeated on every page. :func:`present` is called once on the built command tree (by the
root group in ``tracekit.cli.app``) and gives every page the same conventions:

* a metavar instead of a type label: the one declared (``REF``, ``DATE``, ``FILE``...), else
  one from the value's type (``TEXT``, ``N``, ``FILE``); flags have none; ranges are said in
  words in the option's help;
* usage as ``tracekit case show [OPTIONS] REF``;
* help written as paragraphs, wrapped by the renderer to the terminal's width;
* an "Examples" section from :mod:`tracekit.cli.examples`, then one line pointing to the
  global options, which are listed once, on ``tracekit --help``.

Only Typer is imported here: the tree is built for ``tracekit --version`` too.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from typer.core import TyperArgument, TyperOption

#: Metavars for values whose type says enough.
_METAVAR_BY_TYPE: dict[Any, str] = {str: "TEXT", int: "N", float: "NUMBER", Path: "FILE"}


class HelpOption(TyperOption):
    """An option shown by its metavar (``--date DATE``); a flag shows none."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return self.metavar

    def _get_number_range_help_str(self) -> str | None:
        return None  # said in words in the help ("1 to 1000"), not as "[1<=x<=1000]"


class HelpArgument(TyperArgument):
    """An argument shown by its metavar alone, in usage as Click does: ``REF``, ``[ID]``."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the name column already shows the metavar

    def _get_number_range_help_str(self) -> str | None:
        return None

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.metavar or (self.name or "").upper()
        if self.nargs != 1:
            name += "..."
        return [name if self.required else f"[{name}]"]


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group under ``command`` (itself first), with its path of names."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, (*path, name))


def present(root: Any) -> None:
    """Give every page of the command tree under ``root`` the conventions above."""
    from tracekit.cli.context import is_global_param
    from tracekit.cli.examples import EXAMPLES, examples_epilog

    help_option_names = (root.context_settings or {}).get("help_option_names", ["--help"])
    pointer = global_options_pointer(root)
    for path, command in walk(root):
        command.help = reflow(command.help)
        if command.help and not command.short_help:
            # The first paragraph, whole: Click would cut it at 45 characters in docs/cli.md.
            command.short_help = command.help.split("\n\n")[0]
        # Click makes the help option on first use; make it now, so that it is shown alike.
        help_option = command.get_help_option(command.context_class(command, help_option_names=help_option_names))
        for param in [*command.params, *([help_option] if help_option else [])]:
            present_param(param)
        if not path:
            continue  # the root page lists the global options and ends with the exit codes
        sections = []
        if " ".join(path) in EXAMPLES:
            sections.append(examples_epilog(EXAMPLES[" ".join(path)]))
        if any(is_global_param(param) for param in command.params):
            sections.append(pointer)
        if sections:
            command.epilog = "\n\n".join(sections)


def global_options_pointer(root: Any) -> str:
    """The line that a command's page shows instead of repeating the global options,
    which the root page lists in their own panel."""
    from tracekit.cli.context import GLOBAL_PANEL

    names = [
        next(name for name in param.opts if name.startswith("--"))
        for param in root.params
        if getattr(param, "rich_help_panel", None) == GLOBAL_PANEL
    ]
    return f"Global options ({', '.join(names)}) work here too: see tracekit --help."


def present_param(param: Any) -> None:
    """Show one parameter by its metavar (see the module's docstring); once is enough."""
    if isinstance(param, (HelpOption, HelpArgument)):
        return
    if getattr(param, "help", None):
        param.help = reflow(param.help)
    if isinstance(param, TyperOption):
        param.__class__ = HelpOption
        if param.metavar is None and not param.is_flag:
            param.metavar = _type_metavar(param)
        if param.help:
            param.help += _range_in_words(param.min, param.max)
    elif isinstance(param, TyperArgument):
        param.__class__ = HelpArgument
        if param.metavar is None:
            param.metavar = (param.name or "").upper()


def _range_in_words(low: float | None, high: float | None) -> str:
    """The allowed range as the help says it; a count's lower bound of 0 goes without saying."""
    if low is not None and high is not None:
        return f" From {low} to {high}."
    if low:
        return f" At least {low}."
    if high is not None:
        return f" At most {high}."
    return ""


def _type_metavar(param: Any) -> str:
    annotation = param.type_descriptor.annotation
    for kind, metavar in _METAVAR_BY_TYPE.items():
        if annotation is kind or (isinstance(annotation, type) and issubclass(annotation, kind)):
            return metavar
    return "VALUE"


def reflow(text: str | None) -> str | None:
    """Help text as paragraphs: the line breaks of a docstring's source are dropped, so
    the renderer wraps each paragraph to the terminal's width."""
    if not text:
        return text
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in inspect.cleandoc(text).split("\n\n"))
