"""Durations typed on the command line, such as how long an unlocked key stays cached.

A duration is one or more whole numbers, each followed by its unit, largest unit first:
hours (``h``, ``hr``, ``hrs``, ``hour``, ``hours``), minutes (``m``, ``min``, ``mins``,
``minute``, ``minutes``), seconds (``s``, ``sec``, ``secs``, ``second``, ``seconds``).
Examples: ``90s``, ``15m``, ``20 mins``, ``1 hour``, ``1h30m``, ``1 hour 30 minutes``.
Units are case-insensitive and spaces between the parts are ignored. A bare number such
as ``15`` is refused by :func:`parse_duration`: some tools read it as seconds, others as
minutes, and guessing wrong would keep a key unlocked far longer than intended (where the
unit is obvious, as for a contact's minutes, the caller reads a bare number itself).

Durations are more than zero and at most 24 hours.
"""

from __future__ import annotations

import re

from tracekit.errors import ValidationError

#: The longest duration accepted (24 hours), in seconds.
MAX_DURATION_SECONDS = 24 * 60 * 60

_EXPECTED = "a duration such as 15m, 1h or 1h30m, at most 24h"
# ASCII digits only (\d would also match other scripts' digits); at most 6 per unit, which
# is more than 24h needs and keeps int() on short strings.
_DURATION = re.compile(
    r"(?:([0-9]{1,6}) *(?:hours?|hrs?|h))? *(?:([0-9]{1,6}) *(?:minutes?|mins?|m))? *(?:([0-9]{1,6}) *(?:seconds?|secs?|s))?"
)


def duration_seconds(text: str) -> int | None:
    """The number of seconds ``text`` spells (see the module docstring), or None if it is
    not a duration with units. No limits are applied."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_duration(text: str) -> int:
    """The number of seconds in ``text`` (see the module docstring for the syntax).

    Raises :class:`ValidationError` (field ``duration``) for anything else, for zero and
    for more than 24 hours. The message does not repeat the input.
    """
    total = duration_seconds(text)
    if total is None:
        raise ValidationError("duration", "not a valid duration", expected=_EXPECTED)
    if total == 0:
        raise ValidationError("duration", "must be longer than zero", expected=_EXPECTED)
    if total > MAX_DURATION_SECONDS:
        raise ValidationError("duration", "is longer than 24h", expected=_EXPECTED)
    return total
