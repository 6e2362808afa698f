"""People, cases, contacts and the worklist: the case book's library API."""

from tracekit.records.casebook import Casebook, DuplicatePerson
from tracekit.records.inputs import PersonInput
from tracekit.records.models import (
    CallOutcome,
    Case,
    CaseStatus,
    DuplicateMatch,
    Exposure,
    Page,
    Person,
    RecomputeSummary,
    TraceStatus,
    TreeNode,
    Worklist,
)

__all__ = [
    "CallOutcome",
    "Case",
    "CaseStatus",
    "Casebook",
    "DuplicateMatch",
    "DuplicatePerson",
    "Exposure",
    "Page",
    "Person",
    "PersonInput",
    "RecomputeSummary",
    "TraceStatus",
    "TreeNode",
    "Worklist",
]
