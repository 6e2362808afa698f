"""Sensitive triage: which imported rows are about a person in a sensitive role.

A row is sensitive when its ``role`` column names a sensitive role (one of
:data:`tracekit.records.sensitive.ROLES`, or a synonym below), or when its occupation
matches :data:`OCCUPATION_PATTERNS` (then the role is ``other`` with the reason
"import triage: occupation"). Such a person is stored already marked, in the same
transaction as the row, and is never shown unmasked. The lists are documented in
docs/import-guide.md; erring towards marking is deliberate: a tracer can unmark a
person with a reason, but cannot take back a disclosure.
"""

from __future__ import annotations

import re

from tracekit.errors import ValidationError
from tracekit.importers.columns import normal_header
from tracekit.records.sensitive import ROLES

ROLE_REASON = "import triage: role column"
OCCUPATION_REASON = "import triage: occupation"

#: Synonyms of each sensitive role, in the normal form of :func:`normal_header`.
ROLE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "undercover-officer": (
        "undercover",
        "undercover officer",
        "undercover police officer",
        "undercover police",
        "covert officer",
        "uc officer",
    ),
    "counter-terrorism": (
        "counter terrorism",
        "counter terrorism officer",
        "counterterrorism",
        "counterterrorism officer",
        "ct officer",
    ),
    "protected-witness": ("witness", "protected witness", "witness protection", "protected person"),
    "victim": (
        "victim",
        "victim of crime",
        "refuge",
        "in a refuge",
        "living in a refuge",
        "refuge resident",
        "domestic abuse victim",
    ),
    "other": ("other", "other sensitive role", "sensitive", "yes", "y", "true"),
}
#: Role cells that mean "not in a sensitive role".
NOT_SENSITIVE = frozenset({"", "none", "no", "n", "false", "n a", "na", "not sensitive", "ordinary", "0"})

_ROLE_LOOKUP: dict[str, str] = {}
for _role in ROLES:
    _ROLE_LOOKUP[normal_header(_role)] = _role
    _ROLE_LOOKUP[normal_header(ROLES[_role])] = _role
for _role, _words in ROLE_SYNONYMS.items():
    for _word in _words:
        _ROLE_LOOKUP.setdefault(normal_header(_word), _role)

#: Occupations that mark a person (role "other"): policing, counter-terrorism and the
#: security services, prisons and probation, and words that reveal a protected status.
OCCUPATION_PATTERNS: tuple[str, ...] = (
    r"police",
    r"constable",
    r"pcso",
    r"detective",
    r"counter[\s-]*terror\w*",
    r"undercover",
    r"covert",
    r"security service",
    r"intelligence (?:officer|agent|service)",
    r"mi5",
    r"mi6",
    r"gchq",
    r"special branch",
    r"national crime agency",
    r"border force",
    r"prison",
    r"probation",
    r"witness protection",
    r"protected witness",
    r"refuge",
)
_OCCUPATION = re.compile(r"\b(?:" + "|".join(OCCUPATION_PATTERNS) + r")\b", re.IGNORECASE)

ROLE_EXPECTED = "one of " + ", ".join(ROLES) + " (or a synonym such as undercover, witness, refuge), or empty"


def role_from_cell(text: str) -> str | None:
    """The sensitive role a ``role`` cell names; None for "not sensitive".

    Raises ValidationError for anything else (the row is then still treated as
    sensitive by the importer: an unreadable role is not a reason to show someone).
    """
    key = normal_header(text)
    if key in NOT_SENSITIVE:
        return None
    role = _ROLE_LOOKUP.get(key)
    if role is None:
        raise ValidationError("role", "is not a sensitive role", expected=ROLE_EXPECTED)
    return role


def occupation_is_sensitive(text: str) -> bool:
    return _OCCUPATION.search(text) is not None
