"""The leak guard: the last check before anything leaves the machine.

Before a bundle is finalised every byte of its content passes through :meth:`LeakGuard.scan`.
It looks for the details of every person in a sensitive role whose record is still in
the store: full names (any case and spacing, also "Surname, Forename"), phone numbers in
their common written forms, NHS numbers with and without spaces, email addresses, and a
postcode or date of birth appearing together with the name or each other. One hit stops
the export; the error names the record reference and the person's reference, never the
value.

Referred people are not covered, by design: their details were sealed and purged, so no
export can draw them from the store, and keeping any form of them here (even hashed)
would let someone with the passphrase test guesses. See docs/security.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tracekit.errors import LeakBlocked

_DIGIT_RUN = re.compile(r"\+?\d[\d \-().]{6,}\d")


@dataclass(frozen=True)
class Hit:
    person_ref: str
    kind: str


@dataclass(frozen=True)
class _Guarded:
    ref: str
    postcode: str | None
    dob_forms: tuple[str, ...]


class LeakGuard:
    def __init__(self, people: list[Any]) -> None:
        """``people``: full (unmasked) Person records of everyone marked and not referred."""
        self._numbers: dict[str, tuple[str, str]] = {}
        name_patterns: dict[str, str] = {}
        email_patterns: dict[str, str] = {}
        self._guarded: list[_Guarded] = []
        for person in people:
            if person.name:
                parts = [re.escape(p) for p in person.name.split()]
                if parts:
                    name_patterns[r"[\s,]+".join(parts)] = person.ref
                    if len(parts) > 1:
                        name_patterns[parts[-1] + r"\s*,\s*" + r"\s+".join(parts[:-1])] = person.ref
            if person.email:
                email_patterns[re.escape(person.email)] = person.ref
            if person.phone:
                digits = person.phone.lstrip("+")
                forms = {digits}
                if digits.startswith("44"):
                    forms |= {"0" + digits[2:], digits[2:]}
                for form in forms:
                    self._numbers[form] = (person.ref, "phone number")
            if person.nhs_number:
                self._numbers[person.nhs_number] = (person.ref, "NHS number")
            dob = person.date_of_birth
            dob_forms = (
                (dob.isoformat(), dob.strftime("%d/%m/%Y"), f"{dob.day}/{dob.month}/{dob.year}") if dob else ()
            )
            self._guarded.append(_Guarded(person.ref, person.postcode, dob_forms))
        self._name_refs = list(name_patterns.values())
        self._names = (
            re.compile("|".join(f"(?P<n{i}>\\b{p}\\b)" for i, p in enumerate(name_patterns)), re.IGNORECASE)
            if name_patterns else None
        )
        self._email_refs = list(email_patterns.values())
        self._emails = (
            re.compile("|".join(f"(?P<e{i}>{p})" for i, p in enumerate(email_patterns)), re.IGNORECASE)
            if email_patterns else None
        )

    @property
    def empty(self) -> bool:
        return not self._guarded

    def find(self, text: str) -> Hit | None:
        if self.empty:
            return None
        if self._names is not None:
            match = self._names.search(text)
            if match:
                return Hit(self._name_refs[int(match.lastgroup[1:])], "name")  # type: ignore[index]
        if self._emails is not None:
            match = self._emails.search(text)
            if match:
                return Hit(self._email_refs[int(match.lastgroup[1:])], "email")  # type: ignore[index]
        if self._numbers:
            for run in _DIGIT_RUN.findall(text):
                digits = re.sub(r"\D", "", run)
                hit = self._numbers.get(digits)
                if hit is not None:
                    return Hit(*hit)
        folded = None
        for person in self._guarded:
            if not person.postcode and not person.dob_forms:
                continue
            if folded is None:
                folded = text.casefold()
            postcode = person.postcode and (
                person.postcode.casefold() in folded or person.postcode.replace(" ", "").casefold() in folded
            )
            dob = any(form in text for form in person.dob_forms)
            if postcode and dob:
                return Hit(person.ref, "postcode with date of birth")
        return None

    def check(self, text: str, record_ref: str) -> None:
        """Raise :class:`LeakBlocked` if ``text`` holds a protected person's details."""
        hit = self.find(text)
        if hit is not None:
            raise LeakBlocked(
                f"leak guard: {record_ref} would carry details of {hit.person_ref}, a person in a "
                f"sensitive role ({hit.kind}); the export was stopped and no bundle was written"
            )
