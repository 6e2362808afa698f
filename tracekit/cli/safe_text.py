"""Text from outside made safe to show on a terminal: the one place that does it.

Anything tracekit did not write itself (a name, a note, an address, a file name, a CSV
header, a mapping, an audit reason, a recipient's name, an error message quoting any of
these) goes through :func:`safe_markup` before it is put into Rich markup, or through
:func:`visible` before it is printed without markup. Both:

- replace control characters with a visible escape (``ESC`` becomes the four characters
  ``\\x1b``): the C0 controls (newline and tab are kept where ``multiline`` allows
  them), DEL and the C1 range 0x80-0x9f. A terminal obeys these: ``\\x1b[2J`` clears the
  screen, ``\\x1b]0;...\\x07`` sets the window title, ``\\x9b`` is a one-byte CSI, and a
  carriage return lets a value overwrite the line to fake output;
- replace the Unicode bidirectional controls (U+202A-U+202E, U+2066-U+2069 and the marks
  U+200E, U+200F, U+061C), which reorder what is shown so that text reads as something
  else, and the line and paragraph separators U+2028 and U+2029;
- replace lone surrogates (a file name that is not UTF-8 arrives with them), which
  cannot be written to the terminal at all.

:func:`safe_markup` then escapes Rich markup so that the text is shown exactly as it
is: ``[/bogus]`` is not read as a tag (Rich would raise MarkupError), and backslashes are
kept (Rich's own :func:`rich.markup.escape` leaves a backslash before a ``[`` that starts
no tag, which Rich then drops, and mishandles a value ending in a backslash).

:func:`terminal_json` writes JSON for standard output or error with the same characters
as ``\\uXXXX`` escapes: the same JSON value, nothing a terminal obeys.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tracekit.domain.text import UNSAFE_MULTILINE as _UNSAFE_MULTILINE
from tracekit.domain.text import UNSAFE_ON_ONE_LINE as _UNSAFE

#: A run of backslashes and the ``[`` after it.
_BRACKET = re.compile(r"(\\*)\[")
#: What Rich reads as a tag after a ``[`` (rich.markup.RE_TAGS).
_TAG_AFTER_BRACKET = re.compile(r"[a-z#/@][^\[]*?\]")
#: A tag that styles nothing, written after trailing backslashes (see _escape_markup).
_EMPTY_TAG = "[b][/b]"


def visible(text: object, *, multiline: bool = False) -> str:
    """``text`` with every control character a terminal would act on replaced by a
    visible escape (``\\x1b``, ``\\r``, ``\\x9b``, ``\\u202e``). ``multiline`` keeps newlines and
    tabs. For output printed without markup; in markup use :func:`safe_markup`."""
    text = str(text)
    if text.isprintable():  # the common case: nothing to replace
        return text
    return (_UNSAFE_MULTILINE if multiline else _UNSAFE).sub(_escape_char, text)


def safe_markup(text: object, *, multiline: bool = False) -> str:
    """``text`` made safe for the terminal (:func:`visible`) and escaped for Rich markup,
    to be put into markup (``f"[bold]{safe_markup(name)}[/bold]"``): it is shown
    exactly as it is, whatever markup comes before or after it."""
    return _escape_markup(visible(text, multiline=multiline))


#: The controls people know by a shorter name.
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def terminal_json(data: Any) -> str:
    """``data`` as one line of JSON (non-ASCII text kept readable) in which every
    character :func:`visible` would replace is a ``\\uXXXX`` escape: the same JSON
    value, safe to reach a terminal."""
    text = json.dumps(data, ensure_ascii=False, default=str)
    if text.isprintable():
        return text
    # json.dumps has escaped C0 already; what is left sits inside a string literal
    return _UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escape_markup(text: str) -> str:
    """Rich markup that renders as ``text``.

    Rich reads ``[`` followed by a tag (``[a-z#/@]`` up to the next ``]``) as a tag: n
    backslashes before it are n/2 backslashes, and an odd one out makes the tag literal;
    so n backslashes and a literal ``[`` are written as 2n+1 and the ``[``. Before any
    other ``[`` Rich drops one backslash: they are written as n+1 (both give ``\\[`` for
    n=0). A value ending in n backslashes gets 2n and a tag that styles nothing, so that
    they stay n whether markup, text or nothing follows."""
    if "[" not in text and not text.endswith("\\"):
        return text

    def bracket(match: re.Match[str]) -> str:
        count = len(match.group(1))
        if _TAG_AFTER_BRACKET.match(text, match.end()):
            return "\\" * (2 * count + 1) + "["
        return "\\" * (count + 1) + "["

    escaped = _BRACKET.sub(bracket, text)
    trailing = len(escaped) - len(escaped.rstrip("\\"))
    if trailing:
        escaped += "\\" * trailing + _EMPTY_TAG
    return escaped
