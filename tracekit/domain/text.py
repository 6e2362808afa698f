"""Characters that steer a terminal or disguise text: the one definition.

C0 controls, DEL and C1 controls are obeyed by terminals (``\\x1b[2J`` clears the screen, a
carriage return overwrites the line); the Unicode bidirectional controls and marks
reorder what is shown; the line and paragraph separators break lines where no newline
is seen; lone surrogates cannot be written at all. :mod:`tracekit.cli.safe_text` makes
such characters visible on output; validators use :func:`has_control_characters` to
refuse them where tracekit itself never writes them (bundle manifests, policy names).
"""

from __future__ import annotations

import re

#: Bidirectional controls and marks, and the Unicode line and paragraph separators.
INVISIBLE_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
#: Every such character, on one line: C0 (tab and newline too), DEL, C1, the above, lone surrogates.
UNSAFE_ON_ONE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{INVISIBLE_CONTROLS}\ud800-\udfff]")
#: The same, keeping newlines and tabs (multi-line text such as notes).
UNSAFE_MULTILINE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{INVISIBLE_CONTROLS}\ud800-\udfff]")


def has_control_characters(text: str, *, multiline: bool = False) -> bool:
    """Whether ``text`` holds a character that could steer a terminal or disguise text."""
    return (UNSAFE_MULTILINE if multiline else UNSAFE_ON_ONE_LINE).search(text) is not None
