"""Raw input (from flags, prompts or import rows) turned into validated column values.

Each field is checked by its domain validator; a failure is a ValidationError naming the
field and the expected form. :func:`validate_fields` collects every problem of a record
(importers report them all); the ``*_values`` helpers raise the first one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from tracekit.domain import identifiers as ids
from tracekit.domain.rules import SETTINGS
from tracekit.durations import duration_seconds
from tracekit.errors import ValidationError
from tracekit.records.models import CaseStatus, TestResult, TestType, TraceStatus

NOTES_MAX_LENGTH = 10_000
ADDRESS_MAX_LENGTH = 500
OCCUPATION_MAX_LENGTH = 200


def _text(field: str, max_length: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        text = " ".join(str(value).split()) if field != "notes" else str(value).strip()
        if any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
            raise ValidationError(field, "contains control characters", expected="plain text")
        if len(text) > max_length:
            raise ValidationError(field, f"is {len(text)} characters long", expected=f"at most {max_length}")
        return text

    return check


def _choice(field: str, allowed: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        text = str(value).strip().lower().replace("_", "-").replace(" ", "-")
        if text not in allowed:
            raise ValidationError(field, "is not one of the allowed values", expected="one of " + ", ".join(allowed))
        return text

    return check


def _number(field: str, unit: str, maximum: float) -> Callable[[str], float]:
    def check(value: str) -> float:
        text = str(value).strip().lower().removesuffix(unit).strip()
        try:
            number = float(text)
        except ValueError:
            raise ValidationError(field, "is not a number", expected=f"a number of {unit}, e.g. 1.5") from None
        if not 0 <= number <= maximum or number != number:
            raise ValidationError(field, "is out of range", expected=f"0 to {maximum:g} {unit}")
        return number

    return check


def _minutes(field: str, maximum: float) -> Callable[[str], float]:
    """A number of minutes, e.g. 20 or 1.5, or a duration with units: 20 mins, 1 hour, 1h30m."""
    expected = f"minutes, e.g. 20, 20 mins, 1 hour or 1h30m; at most {maximum:g}"
    as_number = _number(field, "min", maximum)

    def check(value: str | float) -> float:
        if isinstance(value, (int, float)):
            return as_number(str(value))
        seconds = duration_seconds(str(value))
        if seconds is None:
            try:
                return as_number(value)
            except ValidationError as problem:
                raise ValidationError(field, problem.problem, expected=expected) from None
        if seconds / 60 > maximum:
            raise ValidationError(field, "is out of range", expected=expected)
        return seconds / 60

    return check


def _flag(field: str) -> Callable[[str], bool]:
    def check(value: str | bool) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("y", "yes", "true", "1"):
            return True
        if text in ("n", "no", "false", "0"):
            return False
        raise ValidationError(field, "is not yes or no", expected="yes/no, true/false or 1/0")

    return check


def _date(field: str, allow_future: bool) -> Callable[[str | date], date]:
    def check(value: str | date, today: date | None = None) -> date:
        if isinstance(value, date):
            parsed = value
            if not allow_future and today is not None and parsed > today:
                raise ValidationError(field, "is in the future", expected="a date on or before today")
            return parsed
        return ids.parse_date(str(value), field, allow_future=allow_future, today=today)

    return check


PERSON_VALIDATORS: dict[str, Callable[..., Any]] = {
    "name": lambda v: ids.normalise_name(str(v)),
    "date_of_birth": _date("date_of_birth", allow_future=False),
    "nhs_number": lambda v: ids.normalise_nhs_number(str(v)),
    "phone": lambda v: ids.normalise_phone(str(v)),
    "email": lambda v: ids.validate_email(str(v)),
    "address": _text("address", ADDRESS_MAX_LENGTH),
    "postcode": lambda v: ids.normalise_postcode(str(v)),
    "occupation": _text("occupation", OCCUPATION_MAX_LENGTH),
}

CASE_VALIDATORS: dict[str, Callable[..., Any]] = {
    "test_date": _date("test_date", allow_future=False),
    "test_type": _choice("test_type", tuple(t.value for t in TestType)),
    "test_result": _choice("test_result", tuple(t.value for t in TestResult)),
    "symptom_onset": _date("symptom_onset", allow_future=False),
    "status": _choice("status", tuple(s.value for s in CaseStatus)),
    "notes": _text("notes", NOTES_MAX_LENGTH),
}

EXPOSURE_VALIDATORS: dict[str, Callable[..., Any]] = {
    "last_exposure": _date("last_exposure", allow_future=False),
    "setting": _choice("setting", SETTINGS),
    "proximity_m": _number("proximity_m", "m", 1000),
    "duration_min": _minutes("duration_min", 60 * 24 * 14),
    "face_to_face": _flag("face_to_face"),
    "direct_contact": _flag("direct_contact"),
    "trace_status": _choice("trace_status", tuple(s.value for s in TraceStatus)),
    "notes": _text("notes", NOTES_MAX_LENGTH),
}

_TAKES_TODAY = {"date_of_birth", "test_date", "symptom_onset", "last_exposure"}


def validate_fields(
    raw: dict[str, Any], validators: dict[str, Callable[..., Any]], today: date
) -> tuple[dict[str, Any], list[ValidationError]]:
    """Validate every given (non-empty) field; return the values and all problems."""
    values: dict[str, Any] = {}
    problems: list[ValidationError] = []
    for name, value in raw.items():
        if name not in validators:
            raise KeyError(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            if name in _TAKES_TODAY:
                values[name] = validators[name](value, today)
            else:
                values[name] = validators[name](value)
        except ValidationError as problem:
            problems.append(problem)
    return values, problems


def validated(raw: dict[str, Any], validators: dict[str, Callable[..., Any]], today: date) -> dict[str, Any]:
    """Like :func:`validate_fields` but raise the first problem."""
    values, problems = validate_fields(raw, validators, today)
    if problems:
        raise problems[0]
    return values


@dataclass
class PersonInput:
    """Identity and contact details as typed or imported; all optional until validated."""

    name: str | None = None
    date_of_birth: str | date | None = None
    nhs_number: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    postcode: str | None = None
    occupation: str | None = None

    def raw(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def is_empty(self) -> bool:
        return all(v in (None, "") for v in self.raw().values())
