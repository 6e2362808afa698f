"""Redaction as a pure function of (record, policy): no I/O, no store, no clock (the one
random part, a stub's id, comes from the bundle's :class:`StubIds`).

Input records are plain dicts built by :mod:`tracekit.bundle.source` with every field
plus the sensitivity facts (``self_role``, ``self_referral``, ``self_associated``,
``shared_identity``, ``shared_fields``, ``received``, and for contacts ``case_role``,
``case_referral``, ``released``). A record of people received in a referral (the vetted
team's store) is in no standard handover at all. The output holds only the fields the
policy allows. A record of a person in a sensitive role, or associated with one, becomes
a *stub*: the fields needed for the epidemiological picture (dates, status) are kept,
every other allowed field is an explicit marker ``{"withheld": reason, "referral": ref}``,
never a blank. A record that only shares an identifier with a protected person (a
household member's landline, a shared address) keeps its other fields: the shared ones
are markers. Dropped-by-policy fields are absent; the policy (named and hashed in the
manifest) says which those are.

A stub never carries the record's own reference (or its case's, or anything else an
earlier bundle may have shown next to the person's details in clear, such as the time
the record last changed): its ``ref`` is a stub id drawn at random for this bundle
(:class:`StubIds`), so a person handed over in clear and marked later cannot be joined
from the later stub back to the earlier record (docs/threat-model.md, "Deltas never link").
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

from tracekit.redaction.policy import Policy

SENSITIVE_ROLE = "sensitive-role"
SENSITIVE_ASSOCIATION = "sensitive-by-association"

#: Fields a stub keeps as they are: what the epidemiological picture needs, nothing that
#: identifies. ``ref`` and ``case`` are replaced by stub ids; ``updated_at`` (to the second,
#: unchanged by marking) would be a join key to the record's earlier clear version.
STUB_FIELDS = frozenset(
    {
        "test_date",
        "symptom_onset",
        "asymptomatic",
        "status",
        "infectious_start",
        "infectious_end",
        "isolation_end",
        "last_exposure",
        "trace_status",
        "close_contact",
    }
)
STUB_ID_PREFIX = "W-"
_STUB_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, as references
_STUB_ID_LENGTH = 16  # 80 random bits: no two stubs of one bundle share one


class StubIds:
    """Stub ids for one bundle: a fresh random id per record reference, the same one for
    the same reference within the bundle (so a contact stub can name its case's stub),
    unrelated to the reference and to the ids of any other bundle."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}

    def __call__(self, ref: str) -> str:
        stub_id = self._ids.get(ref)
        if stub_id is None:
            stub_id = STUB_ID_PREFIX + "".join(secrets.choice(_STUB_ID_ALPHABET) for _ in range(_STUB_ID_LENGTH))
            self._ids[ref] = stub_id
        return stub_id


Pseudonymiser = Callable[[dict[str, Any]], str | None]


def marker(reason: str, referral: str | None) -> dict[str, Any]:
    return {"withheld": reason, "referral": referral}


def classify(record_type: str, record: dict[str, Any]) -> tuple[str | None, str | None]:
    """(withheld reason, referral ref) for a record; (None, None) for an ordinary one."""
    if record.get("self_role") or record.get("self_referral"):
        return SENSITIVE_ROLE, record.get("self_referral")
    if (
        record_type == "contact"
        and (record.get("case_role") or record.get("case_referral"))
        and not record.get("released")
    ):
        return SENSITIVE_ASSOCIATION, record.get("case_referral")
    if record.get("self_associated") or record.get("shared_identity"):
        return SENSITIVE_ASSOCIATION, None  # a withheld contact promoted, or a second record of the person
    return None, None


def is_sensitive(record_type: str, record: dict[str, Any]) -> bool:
    reason, _ = classify(record_type, record)
    if reason:
        return True
    return record_type == "contact" and bool(record.get("case_role") or record.get("case_referral"))


def redact(
    record_type: str,
    record: dict[str, Any],
    policy: Policy,
    pseudonymise: Pseudonymiser | None = None,
    stub_ids: StubIds | None = None,
) -> dict[str, Any] | None:
    """The record as ``policy`` lets it leave; None when it is not in the policy's scope.

    ``stub_ids``: the bundle's stub ids (one :class:`StubIds` per bundle; a fresh one if
    not given)."""
    fields = policy.fields.get(record_type)
    if fields is None:
        return None
    if record.get("received") and policy.scope != "sensitive":
        return None  # received from a tracer in a referral: never back to central, not even a stub
    reason, referral = classify(record_type, record)
    if policy.scope == "sensitive":
        if not is_sensitive(record_type, record):
            return None
        out = {name: record.get(name) for name in fields if name != "pseudonym"}
        out["withheld"] = False
        out["sensitive"] = reason or SENSITIVE_ASSOCIATION
        out["referral"] = referral or record.get("case_referral")
        out["role"] = record.get("self_role") or record.get("case_role")
        return out
    if reason is None:
        out = {}
        shared = record.get("shared_fields") or ()
        for name in fields:
            if name in shared:
                out[name] = marker(SENSITIVE_ASSOCIATION, None)
            elif name == "pseudonym":
                out[name] = pseudonymise(record) if pseudonymise else None
            else:
                out[name] = record.get(name)
        if record_type == "contact" and (record.get("case_role") or record.get("case_referral")) and "case" in out:
            out["case"] = marker(SENSITIVE_ROLE, record.get("case_referral"))  # released contact
        out["withheld"] = False
        return out
    withheld = marker(reason, referral)
    stub_id = stub_ids if stub_ids is not None else StubIds()
    out = {name: (record.get(name) if name in STUB_FIELDS else withheld) for name in fields}
    out["ref"] = stub_id(str(record["ref"]))
    if "case" in out:
        # The case's own stub in this bundle when the case is withheld too (its contacts
        # stay grouped); an ordinary case is not named: the pair (case, exposure date)
        # would single out the contact's earlier clear record.
        sensitive_case = record.get("case_role") or record.get("case_referral")
        out["case"] = stub_id(str(record["case"])) if sensitive_case else withheld
    out["withheld"] = reason
    out["referral"] = referral
    if policy.role_category:
        out["role"] = record.get("self_role") or record.get("case_role")
    return out


# -- CSV ----------------------------------------------------------------------------------
#
# The CSV members are for analysts (Excel, pandas): a marker is an empty cell, and the record's
# withheld status is in its own columns (docs/bundle-format.md#csv-members).

#: What a spreadsheet may take for the start of a formula (OWASP, "CSV Injection"): ``= + - @``,
#: their full-width forms, tab and line breaks; a leading space (dropped by some spreadsheets
#: when they read a cell) is looked past.
_FORMULA_STARTS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20 ")
#: A cell that is only a number is read as that number, never as a formula: a phone number in
#: E.164 (``+447700900123``) goes out as it is, not as ``'+447700900123``.
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
#: The CSV columns that stand for the JSON ``withheld`` field.
WITHHELD_COLUMNS = ("withheld", "withheld_reason", "withheld_fields")


def _text_cell(text: str) -> str:
    """Text as a cell: prefixed with ``'`` only when a spreadsheet could run it as a formula."""
    first = text[:1]
    if first not in _FORMULA_STARTS or _PLAIN_NUMBER.fullmatch(text):
        return text
    if first == " " and text.lstrip(" ")[:1] not in _FORMULA_STARTS:
        return text
    return "'" + text


def csv_cell(value: Any) -> str:
    """One CSV cell. A marker is an empty cell (the row's withheld columns say why); a
    whole-number float is written as an integer (a duration of ``190``, not ``190.0``);
    text that a spreadsheet could run as a formula is prefixed with ``'``."""
    cell = _cell(value)
    return "" if cell is _HELD else cell


class _Held:
    """Stands for a marker's cell until the row knows which fields are withheld."""


_HELD: Any = _Held()


def _cell(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        return _text_cell(value)
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return str(int(value)) if value.is_integer() else repr(value)
    if kind is dict and "withheld" in value:
        return _HELD
    return _text_cell(str(value))


#: Types the csv module writes exactly as :func:`csv_cell` would turn them into text
#: (None as an empty cell, int with str()), so they can go to it as they are.
_AS_THEY_ARE = frozenset({type(None), int})


class CsvLayout:
    """The CSV form of records with the given (JSON) columns: where ``withheld`` is, the
    CSV has ``withheld`` (``true``/``false``: the record is a stub), ``withheld_reason``
    (the stub's reason, empty otherwise) and ``withheld_fields`` (the fields whose cells
    are empty because they are withheld, space-separated: every marker of a stub, or the
    one or two a shared detail withholds in an ordinary record)."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = list(columns)
        self._withheld_at = self.columns.index("withheld") if "withheld" in self.columns else None
        self.header = [
            name for column in self.columns for name in (WITHHELD_COLUMNS if column == "withheld" else (column,))
        ]

    def row(self, record: dict[str, Any]) -> list[Any]:
        """The cells of one record: what :func:`csv_cell` writes cell by cell, with the common
        cases (plain text, whole numbers, empty) decided inline rather than by a call per cell.
        Hot path of every export (once per record). Every string still has its first
        character checked."""
        starts = _FORMULA_STARTS
        plain = _AS_THEY_ARE
        cell = _cell
        markers: list[Any] = []
        found = markers.append
        values: Iterator[Any] = map(record.get, self.columns)
        cells = [
            value
            if ((kind := type(value)) is str and value[:1] not in starts) or kind in plain
            else ("true" if value else "false")
            if kind is bool
            else cell(value)
            if kind is not dict
            else found(value) or cell(value)
            for value in values
        ]
        held = ""
        if markers:  # a stub, or an ordinary record with a shared detail held back
            held = " ".join(name for name, value in zip(self.columns, cells) if value is _HELD)
            cells = ["" if value is _HELD else value for value in cells]
        at = self._withheld_at
        if at is not None:
            reason = record.get("withheld")
            cells[at : at + 1] = ["true" if reason else "false", reason or "", held]
        return cells
