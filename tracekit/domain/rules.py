"""England's 2020 contact-tracing rules as dated, named rule sets, and what follows from them.

The rule sets live in ``rulesets.toml`` beside this module. Each is in force from its
``valid_from`` date until the next one's, and a result always says which rule set (and
which close-contact clause) produced it, so a decision can be explained and checked
later against the guidance of its day.

Day counting follows the UK Chief Medical Officers' statement of 11 December 2020, by
which a period of self-isolation starts on the day after the exposure, the test or the
onset of symptoms. Day 1 is that day after; an isolation of N days ends at the end of
day N.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from tracekit.errors import NotFound, ValidationError

__all__ = [
    "CLAUSE_PRIORITY",
    "SETTINGS",
    "Clause",
    "Closeness",
    "RuleSet",
    "Source",
    "all_rulesets",
    "case_isolation_end",
    "classify_exposure",
    "contact_isolation_end",
    "get_ruleset",
    "infectious_period",
    "parse_rulesets",
    "ruleset_for",
]

#: Where an exposure happened. "travel" means in the same vehicle or plane.
SETTINGS: tuple[str, ...] = (
    "household",
    "workplace",
    "education",
    "healthcare",
    "social",
    "travel",
    "other",
)


@dataclass(frozen=True)
class _Exposure:
    """The facts of one exposure that the close-contact clauses look at."""

    setting: str
    proximity_m: float | None
    duration_min: float | None
    face_to_face: bool
    direct_contact: bool


def _household(exposure: _Exposure) -> bool:
    """Lives in the same household as the case."""
    return exposure.setting == "household"


def _direct_contact(exposure: _Exposure) -> bool:
    """Skin-to-skin physical contact, for any length of time."""
    return exposure.direct_contact


def _face_to_face_1m(exposure: _Exposure) -> bool:
    """Face to face at a recorded distance of 1 metre or less, for any length of time."""
    return exposure.face_to_face and exposure.proximity_m is not None and exposure.proximity_m <= 1


def _within_1m_for_1min(exposure: _Exposure) -> bool:
    """Within 1 metre (1 m counts) for 1 minute or longer (1 minute counts).

    The guidance adds "without face-to-face contact" only to set this apart from
    face-to-face-1m, which is tried first.
    """
    return (
        exposure.proximity_m is not None
        and exposure.proximity_m <= 1
        and exposure.duration_min is not None
        and exposure.duration_min >= 1
    )


def _within_2m_over_15min(exposure: _Exposure) -> bool:
    """Within 2 metres (2 m counts) for more than 15 minutes (exactly 15 does not)."""
    return (
        exposure.proximity_m is not None
        and exposure.proximity_m <= 2
        and exposure.duration_min is not None
        and exposure.duration_min > 15
    )


def _shared_vehicle(exposure: _Exposure) -> bool:
    """Travelled in the same vehicle or plane (the "travel" setting)."""
    return exposure.setting == "travel"


#: The meaning of each clause id, in the fixed order in which clauses are tried: when an
#: exposure meets several clauses, the first one here is the one reported.
_CLAUSE_TESTS: dict[str, Callable[[_Exposure], bool]] = {
    "household": _household,
    "direct-contact": _direct_contact,
    "face-to-face-1m": _face_to_face_1m,
    "1m-1min": _within_1m_for_1min,
    "2m-15min": _within_2m_over_15min,
    "shared-vehicle": _shared_vehicle,
}
#: Every clause id a rule set may use, in priority order.
CLAUSE_PRIORITY: tuple[str, ...] = tuple(_CLAUSE_TESTS)


@dataclass(frozen=True)
class Source:
    """A document a rule set is based on."""

    id: str
    title: str
    publisher: str
    date: date | None
    url: str | None


@dataclass(frozen=True)
class Clause:
    """One way of being a close contact: a stable id (see :data:`CLAUSE_PRIORITY`) and
    its wording in the guidance of the rule set's time."""

    id: str
    text: str


@dataclass(frozen=True)
class RuleSet:
    """The public-health rules in force from ``valid_from`` until the next rule set.

    Lengths are whole days. The infectious period runs from ``infectious_days_before``
    days before symptom onset (or the test date) to ``infectious_days_after`` days
    after it. Isolation lengths count from the day after onset, test or exposure.
    """

    id: str
    title: str
    valid_from: date
    description: str
    sources: tuple[Source, ...]
    infectious_days_before: int
    infectious_days_after: int
    case_isolation_days: int
    contact_isolation_days: int
    clauses: tuple[Clause, ...]


@dataclass(frozen=True)
class Closeness:
    """Whether an exposure makes someone a close contact, and why.

    ``clause`` is the id of the clause that made it close (``None`` when not close).
    ``missing`` names the inputs that were not recorded (``"proximity_m"``,
    ``"duration_min"``) and could have made it close under this rule set: a "not close"
    with something missing is an answer on incomplete information.
    """

    is_close: bool
    clause: str | None
    explanation: str
    ruleset_id: str
    missing: tuple[str, ...] = ()


# ---------------------------------------------------------------------------- loading


def _rule_file_error(where: str, problem: str) -> ValidationError:
    return ValidationError(where, problem, expected="a rule-set file in the form of rulesets.toml")


def _get(table: dict[str, Any], key: str, where: str, kind: type, *, optional: bool = False) -> Any:
    """``table[key]``, checked to be of ``kind`` (a TOML date is a :class:`date` only)."""
    if key not in table:
        if optional:
            return None
        raise _rule_file_error(f"{where}.{key}", "is missing")
    value = table[key]
    wrong = not isinstance(value, kind)
    if kind is int:
        wrong = wrong or isinstance(value, bool)
    if kind is date:
        wrong = wrong or isinstance(value, datetime)
    if kind is str and not wrong:
        wrong = not value.strip()
    if wrong:
        words = {str: "non-empty text", int: "a whole number", date: "a date", list: "a list"}
        raise _rule_file_error(f"{where}.{key}", f"must be {words[kind]}")
    return value


def _check_keys(table: object, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _rule_file_error(where, "must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise _rule_file_error(where, f"has unknown keys: {', '.join(unknown)}")
    return table


def _parse_source(source_id: str, table: object) -> Source:
    where = f"sources.{source_id}"
    table = _check_keys(table, {"title", "publisher", "date", "url"}, where)
    url = _get(table, "url", where, str, optional=True)
    if url is not None and not url.startswith("https://"):
        raise _rule_file_error(f"{where}.url", "must start with https://")
    return Source(
        id=source_id,
        title=_get(table, "title", where, str),
        publisher=_get(table, "publisher", where, str),
        date=_get(table, "date", where, date, optional=True),
        url=url,
    )


def _parse_clauses(value: list[Any], where: str) -> tuple[Clause, ...]:
    if not value:
        raise _rule_file_error(where, "must list at least one clause")
    clauses: list[Clause] = []
    for index, item in enumerate(value):
        item_where = f"{where}[{index}]"
        table = _check_keys(item, {"id", "text"}, item_where)
        clause_id = _get(table, "id", item_where, str)
        if clause_id not in _CLAUSE_TESTS:
            raise _rule_file_error(
                f"{item_where}.id",
                f"is not a known clause; known clauses: {', '.join(CLAUSE_PRIORITY)}",
            )
        if any(clause.id == clause_id for clause in clauses):
            raise _rule_file_error(f"{item_where}.id", "repeats a clause already listed")
        clauses.append(Clause(id=clause_id, text=_get(table, "text", item_where, str)))
    return tuple(clauses)


_RULESET_KEYS = {
    "id",
    "title",
    "valid_from",
    "description",
    "sources",
    "infectious_days_before",
    "infectious_days_after",
    "case_isolation_days",
    "contact_isolation_days",
    "clauses",
}


def _parse_ruleset(index: int, value: object, sources: dict[str, Source]) -> RuleSet:
    where = f"rulesets[{index}]"
    table = _check_keys(value, _RULESET_KEYS, where)
    source_ids = _get(table, "sources", where, list)
    if not source_ids or any(not isinstance(source_id, str) or source_id not in sources for source_id in source_ids):
        raise _rule_file_error(f"{where}.sources", f"must list one or more of the sources: {', '.join(sources)}")
    days: dict[str, int] = {}
    for key, minimum in (
        ("infectious_days_before", 0),
        ("infectious_days_after", 0),
        ("case_isolation_days", 1),
        ("contact_isolation_days", 1),
    ):
        days[key] = _get(table, key, where, int)
        if days[key] < minimum:
            raise _rule_file_error(f"{where}.{key}", f"must be {minimum} or more")
    return RuleSet(
        id=_get(table, "id", where, str),
        title=_get(table, "title", where, str),
        valid_from=_get(table, "valid_from", where, date),
        description=_get(table, "description", where, str).strip(),
        sources=tuple(sources[source_id] for source_id in source_ids),
        clauses=_parse_clauses(_get(table, "clauses", where, list), f"{where}.clauses"),
        **days,
    )


def parse_rulesets(text: str) -> tuple[RuleSet, ...]:
    """Read and check rule sets written in the form of ``rulesets.toml``.

    Every field is checked (types, known clause ids and sources, no unknown keys); ids
    and ``valid_from`` dates must be unique. Returns the rule sets in date order.
    Raises :class:`ValidationError` naming the faulty entry.
    """
    import tomllib  # on first use: its parser's regexes cost a few ms at import

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _rule_file_error("rulesets", f"is not valid TOML: {error}") from None
    return rulesets_from_document(document)


#: Keys whose values are TOML dates (ISO strings in the JSON form).
_DATE_KEYS = frozenset({"valid_from", "date"})


def document_to_json(document: dict[str, Any]) -> str:
    """The rule-set document as JSON, dates as ISO strings (what rulesets.json holds)."""
    return json.dumps(document, default=date.isoformat, ensure_ascii=False, indent=1) + "\n"


def document_from_json(text: str) -> dict[str, Any]:
    def dates(table: dict[str, Any]) -> dict[str, Any]:
        return {k: date.fromisoformat(v) if k in _DATE_KEYS and isinstance(v, str) else v for k, v in table.items()}

    return json.loads(text, object_hook=dates)


def rulesets_from_document(document: dict[str, Any]) -> tuple[RuleSet, ...]:
    """Check a parsed rule-set document (see :func:`parse_rulesets`)."""
    _check_keys(document, {"sources", "rulesets"}, "rule-set file")
    source_tables = document.get("sources", {})
    if not isinstance(source_tables, dict):
        raise _rule_file_error("sources", "must be a table")
    sources = {source_id: _parse_source(source_id, table) for source_id, table in source_tables.items()}
    entries = _get(document, "rulesets", "rule-set file", list)
    if not entries:
        raise _rule_file_error("rulesets", "must hold at least one rule set")
    rulesets = [_parse_ruleset(index, entry, sources) for index, entry in enumerate(entries)]
    for field, values in (
        ("id", [rs.id for rs in rulesets]),
        ("valid_from", [rs.valid_from for rs in rulesets]),
    ):
        if len(set(values)) != len(values):
            raise _rule_file_error(f"rulesets.{field}", "must be different for every rule set")
    return tuple(sorted(rulesets, key=lambda rs: rs.valid_from))


_SHIPPED_JSON = Path(__file__).with_name("rulesets.json")


@cache
def all_rulesets() -> tuple[RuleSet, ...]:
    """The rule sets shipped with tracekit, oldest first.

    rulesets.toml is the source people read and change; rulesets.json is the same
    document for the machine (Python's TOML parser costs 10-20 ms a command, JSON's well
    under one). A test checks that they agree; after changing the TOML, regenerate the
    JSON with ``python -c "from tracekit.domain.rules import write_json; write_json()"``.
    """
    # Read beside this module, not through importlib.resources (whose first use imports
    # several modules: milliseconds a command); tracekit is never run from a zip file.
    return rulesets_from_document(document_from_json(_SHIPPED_JSON.read_text(encoding="utf-8")))


def _shipped_toml_document() -> dict[str, Any]:
    import tomllib

    return tomllib.loads(_SHIPPED_JSON.with_suffix(".toml").read_text(encoding="utf-8"))


def get_ruleset(ruleset_id: str) -> RuleSet:
    """The shipped rule set called ``ruleset_id``; :class:`NotFound` lists the known ids."""
    for ruleset in all_rulesets():
        if ruleset.id == ruleset_id:
            return ruleset
    known = ", ".join(ruleset.id for ruleset in all_rulesets())
    raise NotFound(f"no rule set called {ruleset_id!r}; known rule sets: {known}")


def ruleset_for(day: date, pinned: str | None = None) -> RuleSet:
    """The rule set to apply to something that happened on ``day``.

    Use the date of the exposure for a contact and the onset (or test) date for a case.
    ``pinned`` names a rule set to use whatever the date (for example one a team lead
    chose for a whole store). Otherwise the answer is the rule set in force on ``day``:
    the latest whose ``valid_from`` is on or before it.

    A day before the first rule set gets the first rule set. tracekit has no rules for
    the time before NHS Test and Trace began (28 May 2020); treating earlier dates by
    its launch rules, rather than refusing them, lets a tracer record a back-dated
    exposure, and the result still names the rule set used.
    """
    if pinned is not None:
        return get_ruleset(pinned)
    rulesets = all_rulesets()
    in_force = [ruleset for ruleset in rulesets if ruleset.valid_from <= day]
    return in_force[-1] if in_force else rulesets[0]


# ------------------------------------------------------------------------------- dates


def infectious_period(onset: date | None, test_date: date, rs: RuleSet) -> tuple[date, date]:
    """The first and last days (both included) on which a case counts as infectious.

    From ``rs.infectious_days_before`` days before symptom onset to
    ``rs.infectious_days_after`` days after it (2 and 10 in every 2020 rule set). A case
    with no symptoms (``onset`` is ``None``) is counted from the test date instead.
    """
    reference = onset if onset is not None else test_date
    return (
        reference - timedelta(days=rs.infectious_days_before),
        reference + timedelta(days=rs.infectious_days_after),
    )


def case_isolation_end(onset: date | None, test_date: date, rs: RuleSet) -> date:
    """The last full day a case isolates: they may stop at the end of this day.

    ``rs.case_isolation_days`` days counted from the day after symptom onset, or after
    the test date when there were no symptoms (``onset`` is ``None``). For example onset
    on 1 October 2020 with 10 days: isolate until the end of 11 October.

    Only a positive (or void) test means isolation: a case whose test was negative is
    given no isolation end (see ``CASE_ISOLATION_END_SQL`` in tracekit.records.derived).
    """
    reference = onset if onset is not None else test_date
    return reference + timedelta(days=rs.case_isolation_days)


def contact_isolation_end(last_exposure: date, rs: RuleSet) -> date:
    """The last full day a contact isolates: they may stop at the end of this day.

    ``rs.contact_isolation_days`` days counted from the day after the last exposure. For
    example exposure on 1 October 2020 with 14 days: isolate until the end of 15 October.

    Only a close contact isolates. For one who is not close the date is kept only as how
    long they stay on the worklist, and never given as an isolation end (see
    ``EXPOSURE_ISOLATION_END_SQL`` in tracekit.records.derived).
    """
    return last_exposure + timedelta(days=rs.contact_isolation_days)


# ----------------------------------------------------------------------- close contact

_INPUT_WORDS = {"proximity_m": "distance", "duration_min": "duration"}


def _checked_measure(field: str, value: float | None, expected: str) -> float | None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ValidationError(field, "must be a number of 0 or more", expected=expected)
    return value


def _missing_inputs(test: Callable[[_Exposure], bool], exposure: _Exposure) -> list[str]:
    """The unrecorded measures without which the clause ``test`` cannot be decided.

    A measure is reported when the clause would hold with every unrecorded measure at
    its most favourable value (distance 0, unlimited time) but not when that one
    measure is at its least favourable (unlimited distance, no time).
    """

    def filled(proximity_m: float, duration_min: float) -> _Exposure:
        return replace(
            exposure,
            proximity_m=proximity_m if exposure.proximity_m is None else exposure.proximity_m,
            duration_min=duration_min if exposure.duration_min is None else exposure.duration_min,
        )

    if not test(filled(0.0, math.inf)):
        return []
    missing = []
    if exposure.proximity_m is None and not test(filled(math.inf, math.inf)):
        missing.append("proximity_m")
    if exposure.duration_min is None and not test(filled(0.0, 0.0)):
        missing.append("duration_min")
    return missing


def classify_exposure(
    rs: RuleSet,
    *,
    setting: str,
    proximity_m: float | None,
    duration_min: float | None,
    face_to_face: bool,
    direct_contact: bool = False,
) -> Closeness:
    """Decide whether an exposure makes someone a close contact under ``rs``.

    ``setting`` is one of :data:`SETTINGS`. ``proximity_m`` is the closest distance in
    metres and ``duration_min`` the time in minutes spent within it, added up over the
    day; either may be ``None`` when not recorded. ``face_to_face`` means they faced
    each other (a conversation, being coughed on); ``direct_contact`` means skin-to-skin
    physical contact.

    "Within N metres" includes N metres. The clauses of ``rs`` are tried in the fixed
    order of :data:`CLAUSE_PRIORITY` and the first that holds is reported. Distances and
    durations that were not recorded never make an exposure close; when recording them
    could, :attr:`Closeness.missing` names them and the explanation says so.
    """
    if setting not in SETTINGS:
        raise ValidationError("setting", "is not a known setting", expected=f"one of {', '.join(SETTINGS)}")
    exposure = _Exposure(
        setting=setting,
        proximity_m=_checked_measure("proximity_m", proximity_m, "a distance in metres, such as 1.5"),
        duration_min=_checked_measure("duration_min", duration_min, "a duration in minutes, such as 20"),
        face_to_face=face_to_face,
        direct_contact=direct_contact,
    )
    texts = {clause.id: clause.text for clause in rs.clauses}
    in_use = [clause_id for clause_id in CLAUSE_PRIORITY if clause_id in texts]
    named = f"rule set {rs.id} ({rs.title})"
    for clause_id in in_use:
        if _CLAUSE_TESTS[clause_id](exposure):
            return Closeness(
                is_close=True,
                clause=clause_id,
                explanation=f"Close contact under {named}, clause {clause_id}: {texts[clause_id]}.",
                ruleset_id=rs.id,
            )
    missing = tuple(
        dict.fromkeys(name for clause_id in in_use for name in _missing_inputs(_CLAUSE_TESTS[clause_id], exposure))
    )
    explanation = f"Not a close contact under {named}: no close-contact clause applies"
    if missing:
        words = " and ".join(_INPUT_WORDS[name] for name in missing)
        explanation += f" to what was recorded, but recording the {words} could change that"
    return Closeness(
        is_close=False,
        clause=None,
        explanation=explanation + ".",
        ruleset_id=rs.id,
        missing=missing,
    )


def write_json() -> None:
    """Rewrite rulesets.json from rulesets.toml (after changing the TOML)."""
    _SHIPPED_JSON.write_text(document_to_json(_shipped_toml_document()), encoding="utf-8")
