"""The values the rules work out and the store keeps with each case and contact.

One place for them: the case book (each change, and ``rules pin``), the importer and
the benchmark's store generator write exactly these values, and the SQL that turns a
stored value into the one to show is here too. The column names are those of
:data:`tracekit.records.tables.CASES.derived` and ``EXPOSURES.derived``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Any

from tracekit.domain import rules

#: ``risk_rank`` of a contact who is not close (sorted after every close clause).
NOT_CLOSE_RISK_RANK = 99

#: The exposure's facts the rules read, in the order :func:`exposure_values` keys them.
EXPOSURE_RULE_INPUTS = ("last_exposure", "setting", "proximity_m", "duration_min", "face_to_face", "direct_contact")

#: The end of isolation to give, as SQL: none for a case whose test was negative or a
#: contact who is not close. (The stored column cannot be empty; for those it only bounds
#: how long a contact stays on the worklist: see ``Casebook.worklist``.)
CASE_ISOLATION_END_SQL = "CASE WHEN c.test_result = 'negative' THEN NULL ELSE c.isolation_end END"
EXPOSURE_ISOLATION_END_SQL = "CASE WHEN e.close_contact THEN e.isolation_end END"

#: Distinct inputs whose values :class:`RuleValues` keeps (then forgets, so memory stays flat).
MEMO_LIMIT = 50_000


def risk_rank(closeness: rules.Closeness) -> int:
    """0 is the highest risk: the position of the clause that made the contact close."""
    if not closeness.is_close or closeness.clause is None:
        return NOT_CLOSE_RISK_RANK
    try:
        return rules.CLAUSE_PRIORITY.index(closeness.clause)
    except ValueError:
        return len(rules.CLAUSE_PRIORITY)


def case_values(test_date: date, onset: date | None, rs: rules.RuleSet) -> dict[str, str]:
    """A case's rule set, infectious period and isolation end under ``rs``."""
    start, end = rules.infectious_period(onset, test_date, rs)
    return {
        "ruleset_id": rs.id,
        "infectious_start": start.isoformat(),
        "infectious_end": end.isoformat(),
        "isolation_end": rules.case_isolation_end(onset, test_date, rs).isoformat(),
    }


def closeness_values(values: Mapping[str, Any], rs: rules.RuleSet) -> dict[str, Any]:
    """A contact's rule set, whether close and by which clause, and its risk rank (all
    but the isolation end: they do not depend on the date within a rule set)."""
    closeness = rules.classify_exposure(
        rs,
        setting=values["setting"],
        proximity_m=values.get("proximity_m"),
        duration_min=values.get("duration_min"),
        face_to_face=bool(values.get("face_to_face")),
        direct_contact=bool(values.get("direct_contact")),
    )
    return {
        "ruleset_id": rs.id,
        "close_contact": int(closeness.is_close),
        "clause": closeness.clause,
        "risk_rank": risk_rank(closeness),
    }


def exposure_values(values: Mapping[str, Any], rs: rules.RuleSet) -> dict[str, Any]:
    """A contact's derived values under ``rs`` (``values`` by :data:`EXPOSURE_RULE_INPUTS`)."""
    return {
        **closeness_values(values, rs),
        "isolation_end": rules.contact_isolation_end(values["last_exposure"], rs).isoformat(),
    }


class RuleValues:
    """The derived values for many records at once (an import, a generated store): the
    rule set in force is looked up once per day with the pinned one fixed, and values
    are worked out once per distinct inputs (up to :data:`MEMO_LIMIT` kept at a time)."""

    def __init__(self, pinned: str | None) -> None:
        self.ruleset_for = lru_cache(maxsize=4096)(lambda day: rules.ruleset_for(day, pinned))
        self._cases: dict[tuple[date, date | None], dict[str, str]] = {}
        self._closeness: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._isolation_ends: dict[tuple[date, str], str] = {}

    def case(self, test_date: date, onset: date | None) -> dict[str, str]:
        key = (test_date, onset)
        try:
            return self._cases[key]
        except KeyError:
            if len(self._cases) >= MEMO_LIMIT:
                self._cases.clear()
            value = self._cases[key] = case_values(test_date, onset, self.ruleset_for(onset or test_date))
            return value

    def exposure(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """:func:`exposure_values`, memoised in two parts: the closeness on the rule set
        and the facts, not the date; the isolation end on the date and its rule set."""
        last = values["last_exposure"]
        rs = self.ruleset_for(last)
        key = (
            rs.id,
            values["setting"],
            values.get("proximity_m"),
            values.get("duration_min"),
            bool(values.get("face_to_face")),
            bool(values.get("direct_contact")),
        )
        base = self._closeness.get(key)
        if base is None:
            if len(self._closeness) >= MEMO_LIMIT:
                self._closeness.clear()
            base = self._closeness[key] = closeness_values(values, rs)
        end = self._isolation_ends.get((last, rs.id))
        if end is None:
            if len(self._isolation_ends) >= MEMO_LIMIT:
                self._isolation_ends.clear()
            end = self._isolation_ends[(last, rs.id)] = rules.contact_isolation_end(last, rs).isoformat()
        return {**base, "isolation_end": end}
