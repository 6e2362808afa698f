"""Records of the case book: people, cases, exposures and call attempts.

These are plain data. ``to_json()`` gives the documented, stable JSON shape used by
``--json`` (see docs/json.md); dates are ISO 8601 strings, absent values are ``null``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    REFERRED = "referred"


class TraceStatus(StrEnum):
    NOT_YET_REACHED = "not-yet-reached"
    REACHED = "reached"
    ISOLATING = "isolating"
    DECLINED = "declined"
    UNREACHABLE = "unreachable"


class TestType(StrEnum):
    __test__ = False  # not a pytest class

    PCR = "pcr"
    LFD = "lfd"
    LAMP = "lamp"
    OTHER = "other"


class TestResult(StrEnum):
    __test__ = False

    POSITIVE = "positive"
    NEGATIVE = "negative"
    VOID = "void"


class CallOutcome(StrEnum):
    REACHED = "reached"
    ISOLATING = "isolating"
    NO_ANSWER = "no-answer"
    VOICEMAIL = "voicemail"
    WRONG_NUMBER = "wrong-number"
    DECLINED = "declined"
    UNREACHABLE = "unreachable"


#: How a call's outcome changes the contact's trace status (None: unchanged).
OUTCOME_STATUS: dict[CallOutcome, TraceStatus | None] = {
    CallOutcome.REACHED: TraceStatus.REACHED,
    CallOutcome.ISOLATING: TraceStatus.ISOLATING,
    CallOutcome.NO_ANSWER: None,
    CallOutcome.VOICEMAIL: None,
    CallOutcome.WRONG_NUMBER: TraceStatus.UNREACHABLE,
    CallOutcome.DECLINED: TraceStatus.DECLINED,
    CallOutcome.UNREACHABLE: TraceStatus.UNREACHABLE,
}


#: The explicit marker shown instead of a masked person's details (never a blank).
WITHHELD_TEXT = "[withheld: sensitive role]"
WITHHELD_REASON = "sensitive-role"
WITHHELD_ASSOCIATION = "sensitive-by-association"
WITHHELD_ASSOCIATION_TEXT = "[withheld: sensitive by association]"
#: What a possible duplicate that the tracer may not see is shown as: no reference, no
#: name, no role, not which detail matched (any of them would confirm the typed detail).
WITHHELD_MATCH_TEXT = "a record you may not see matches"


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


@dataclass
class Person:
    id: int
    ref: str
    name: str
    date_of_birth: date | None = None
    nhs_number: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    postcode: str | None = None
    occupation: str | None = None
    created_at: str = ""
    updated_at: str = ""
    #: The sensitive role the person is marked with, if any.
    role: str | None = None
    #: The referral reference once the person has been referred (their details are gone).
    referral_ref: str | None = None
    #: True when the person is protected (see ``protection``) and not revealed: every
    #: identity field is then None here, and shown as an explicit "withheld" marker, never blank.
    masked: bool = False
    #: Why the person is protected, whether or not revealed: WITHHELD_REASON (marked, or
    #: referred), WITHHELD_ASSOCIATION (a contact of a marked person's case, not released),
    #: or None. Decided by ``tracekit.records.casebook.person_protection`` only.
    protection: str | None = None
    #: Identity fields withheld because they are a protected person's (a shared phone or
    #: address: sensitive by association); None here, a withheld marker when shown.
    withheld_fields: frozenset[str] = frozenset()

    #: The identity fields, in display order (used by masking and the leak guard).
    IDENTITY_FIELDS = ("name", "date_of_birth", "nhs_number", "phone", "email", "address", "postcode")

    @property
    def display_name(self) -> str:
        """The name to show, or the withheld marker for a masked person."""
        if not self.masked:
            return self.name
        if self.referral_ref:
            return f"[withheld: sensitive role, referred {self.referral_ref}]"
        return WITHHELD_ASSOCIATION_TEXT if self.protection == WITHHELD_ASSOCIATION else WITHHELD_TEXT

    def withheld_marker(self) -> dict[str, str]:
        marker = {"withheld": self.protection or WITHHELD_REASON}
        if self.referral_ref:
            marker["referral"] = self.referral_ref
        return marker

    def to_json(self) -> dict[str, Any]:
        if self.masked:
            data: dict[str, Any] = {"ref": self.ref, "masked": True, **self.withheld_marker()}
            data.update({name: self.withheld_marker() for name in (*self.IDENTITY_FIELDS, "occupation")})
            data["sensitive"] = True
            return data
        return {
            "ref": self.ref,
            "masked": False,
            "sensitive": self.protection is not None,
            "name": self.name,
            "date_of_birth": _iso(self.date_of_birth),
            "nhs_number": self.nhs_number,
            "phone": self.phone,
            "email": self.email,
            "address": self.address,
            "postcode": self.postcode,
            "occupation": self.occupation,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            **{name: {"withheld": WITHHELD_ASSOCIATION} for name in sorted(self.withheld_fields)},
        }


@dataclass
class CallAttempt:
    at: str
    outcome: CallOutcome
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "outcome": str(self.outcome), "note": self.note}


@dataclass
class Exposure:
    id: int
    ref: str
    case_ref: str
    contact: Person
    last_exposure: date
    setting: str
    proximity_m: float | None
    duration_min: float | None
    face_to_face: bool
    direct_contact: bool
    trace_status: TraceStatus
    notes: str | None
    ruleset_id: str
    close_contact: bool
    clause: str | None
    isolation_end: date | None
    created_at: str = ""
    updated_at: str = ""
    calls: list[CallAttempt] = field(default_factory=list)
    #: True when the exposure belongs to the case of a person in a sensitive role and has
    #: not been released: the contact and the details that could identify them, the
    #: place or the activity are withheld ("sensitive by association").
    withheld: bool = False

    def to_json(self) -> dict[str, Any]:
        if self.withheld:
            marker = {"withheld": WITHHELD_ASSOCIATION}
            return {
                "ref": self.ref,
                "case": self.case_ref,
                "withheld": WITHHELD_ASSOCIATION,
                "contact": {"ref": self.contact.ref, "masked": True, **marker},
                "last_exposure": _iso(self.last_exposure),
                "setting": marker,
                "proximity_m": marker,
                "duration_min": marker,
                "face_to_face": marker,
                "direct_contact": marker,
                "trace_status": str(self.trace_status),
                "close_contact": self.close_contact,
                "clause": marker,
                "ruleset": self.ruleset_id,
                "isolation_end": _iso(self.isolation_end),
                "notes": marker,
                "calls": [{"at": c.at, "outcome": str(c.outcome), "note": marker} for c in self.calls],
                "created_at": self.created_at,
                "updated_at": self.updated_at,
            }
        return {
            "ref": self.ref,
            "case": self.case_ref,
            "withheld": False,
            "contact": self.contact.to_json(),
            "last_exposure": _iso(self.last_exposure),
            "setting": self.setting,
            "proximity_m": self.proximity_m,
            "duration_min": self.duration_min,
            "face_to_face": self.face_to_face,
            "direct_contact": self.direct_contact,
            "trace_status": str(self.trace_status),
            "close_contact": self.close_contact,
            "clause": self.clause,
            "ruleset": self.ruleset_id,
            "isolation_end": _iso(self.isolation_end),
            "notes": self.notes,
            "calls": [c.to_json() for c in self.calls],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class Case:
    id: int
    ref: str
    person: Person
    test_date: date
    test_type: TestType
    test_result: TestResult
    symptom_onset: date | None
    status: CaseStatus
    notes: str | None
    source_exposure_ref: str | None
    ruleset_id: str
    infectious_start: date
    infectious_end: date
    isolation_end: date | None
    created_at: str = ""
    updated_at: str = ""
    closed_at: str | None = None
    contact_count: int = 0

    @property
    def asymptomatic(self) -> bool:
        return self.symptom_onset is None

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "person": self.person.to_json(),
            "test_date": _iso(self.test_date),
            "test_type": str(self.test_type),
            "test_result": str(self.test_result),
            "symptom_onset": _iso(self.symptom_onset),
            "asymptomatic": self.asymptomatic,
            "status": str(self.status),
            "notes": self.notes,
            "source_exposure": self.source_exposure_ref,
            "ruleset": self.ruleset_id,
            "infectious_period": {"start": _iso(self.infectious_start), "end": _iso(self.infectious_end)},
            "isolation_end": _iso(self.isolation_end),
            "contact_count": self.contact_count,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "closed_at": self.closed_at,
        }


@dataclass
class DuplicateMatch:
    """A stored person whose details match, or (``person`` None, ``withheld``) the fact
    that one or more records the tracer may not see match: marked people and contacts
    withheld by association (see docs/sensitive-roles.md)."""

    person: Person | None
    reasons: list[str]
    withheld: bool = False

    def to_json(self) -> dict[str, Any]:
        if self.person is None:
            return {"person": None, "withheld": True, "reasons": self.reasons}
        return {"person": self.person.to_json(), "reasons": self.reasons}


@dataclass
class TreeNode:
    case: Case
    via: Exposure | None = None
    children: list[TreeNode] = field(default_factory=list)
    uncased_contacts: list[Exposure] = field(default_factory=list)


def list_json(
    items: list[Any],
    *,
    total: int | None = None,
    limit: int | None = None,
    offset: int = 0,
    next_offset: int | None = None,
) -> dict[str, Any]:
    """The one JSON shape of every list (docs/json.md, "Lists"): ``items``; ``total``, every
    match (None when it is not counted cheaply; for an unpaged list, ``len(items)``);
    ``limit``, the page size (None for a list that is not paged); ``offset``; and
    ``next_offset``, where the next page starts (None on the last page)."""
    return {
        "items": items,
        "total": len(items) if total is None and limit is None else total,
        "limit": limit,
        "offset": offset,
        "next_offset": next_offset,
    }


@dataclass
class Page:
    items: list[Any]
    #: Every match of the filters, or None when the list is not counted (see ``more``).
    total: int | None
    limit: int
    offset: int
    #: For a list that is not counted: whether more follow this page.
    more: bool = False

    @property
    def next_offset(self) -> int | None:
        end = self.offset + len(self.items)
        if self.total is None:
            return end if self.more else None
        return end if end < self.total else None

    def to_json(self) -> dict[str, Any]:
        return list_json(
            [item.to_json() for item in self.items],
            total=self.total,
            limit=self.limit,
            offset=self.offset,
            next_offset=self.next_offset,
        )


@dataclass
class Worklist:
    day: date
    to_call: list[Exposure]
    isolation_ends_today: list[Exposure]
    to_call_total: int
    #: True when the total was counted only up to a cap (``worklist(count_up_to=N)``):
    #: there are more than ``to_call_total`` contacts to call.
    to_call_total_capped: bool = False
    #: The close contacts whose isolation ends on ``day``, all of them (None: not counted,
    #: as with ``count_up_to``).
    isolation_ends_total: int | None = None
    #: The page both lists are: at most ``limit`` of each, from ``offset`` on.
    limit: int = 50
    offset: int = 0

    def to_json(self) -> dict[str, Any]:
        """The contacts to call as a list (docs/json.md, "Lists"), with the date and the
        isolation ends of the day as a list of the same page."""
        if self.to_call_total_capped:  # more than the cap: not counted, and a full page may go on
            to_call = Page(self.to_call, None, self.limit, self.offset, more=len(self.to_call) == self.limit)
        else:
            to_call = Page(self.to_call, self.to_call_total, self.limit, self.offset)
        ending = Page(
            self.isolation_ends_today,
            self.isolation_ends_total,
            self.limit,
            self.offset,
            more=len(self.isolation_ends_today) == self.limit,
        )
        return {"date": self.day.isoformat(), **to_call.to_json(), "isolation_ends_today": ending.to_json()}


@dataclass
class RecomputeSummary:
    """What ``rules pin``/``unpin`` looked at and changed: records read, and records whose
    stored rule values (rule set, infectious period, isolation end, clause) changed."""

    cases: int
    contacts: int
    cases_changed: int
    contacts_changed: int

    def to_json(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "contacts": self.contacts,
            "cases_changed": self.cases_changed,
            "contacts_changed": self.contacts_changed,
        }
