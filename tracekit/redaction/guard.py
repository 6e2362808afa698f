"""The leak guard: the last check before anything leaves the machine.

Before a bundle is finalised every byte of its content passes through :meth:`LeakGuard.scan`.
It looks for the details of every person in a sensitive role whose record is still in
the store: full names (any case and spacing, also "Surname, Forename"), phone numbers in
their common written forms, NHS numbers with and without spaces, email addresses, and a
postcode together with a date of birth on the same line (one record: a JSON Lines or CSV
line). One hit stops the export; the error names the record reference and the person's
reference, never the value.

How it scans. The rules are Python regular expressions (kept below as the reference, and
used to name the person once something is found), but Python's engine tries every
alternative at every position: with 100 protected people it needed minutes for one
20,000-record chunk. So the same rules are translated, character for character, into one
RE2 automaton (google-re2), which reads each chunk once whatever the number of people:
``\\b``, ``\\s``, ``\\d`` and case-insensitivity are spelt out as explicit character sets
computed from Python's own definitions, so both engines accept exactly the same texts
(tests/bundle/test_guard_equivalence.py checks that against the reference). Dates of birth
are found the same way; only the lines holding one are then checked for the postcode.

Referred people are not covered: their details were sealed and purged, so no export can
draw them from the store. Records that share an identifier with a marked or referred
person have that field withheld before the guard sees them (tracekit.records.association),
so in normal use the guard finds nothing. See docs/security.md.
"""

from __future__ import annotations

import array
import functools
import re
import sys
from dataclasses import dataclass
from typing import Any

import re2

from tracekit.errors import LeakBlocked

_DIGIT_RUN = re.compile(r"\+?\d[\d \-().]{6,}\d")
_RUN_SEPARATORS = " \\-()."  # inside a character class
_MIN_RUN = 8  # the shortest text _DIGIT_RUN matches
_RE2_MAX_MEM = 64 << 20


@dataclass(frozen=True)
class Hit:
    person_ref: str
    kind: str


@dataclass(frozen=True)
class _Guarded:
    ref: str
    postcode: str | None
    dob_forms: tuple[str, ...]

    def postcode_in(self, line: str) -> bool:
        if not self.postcode:
            return False
        folded = line.casefold()
        return self.postcode.casefold() in folded or self.postcode.replace(" ", "").casefold() in folded


# -- Python's character classes, spelt out for RE2 --------------------------------------


@dataclass(frozen=True)
class _Classes:
    word: str  # ranges of \w, for inside [...]
    space: str  # ranges of \s
    digit: str  # ranges of \d
    cased: str  # every character that may take part in a case-insensitive match


def _ranges(code_points: list[int]) -> str:
    out: list[str] = []
    start = prev = None
    for cp in code_points:
        if prev is not None and cp == prev + 1:
            prev = cp
            continue
        if start is not None:
            out.append(_span(start, prev))  # type: ignore[arg-type]
        start = prev = cp
    if start is not None:
        out.append(_span(start, prev))  # type: ignore[arg-type]
    return "".join(out)


def _span(start: int, end: int) -> str:
    return f"\\x{{{start:x}}}" if start == end else f"\\x{{{start:x}}}-\\x{{{end:x}}}"


@functools.cache
def _classes() -> _Classes:
    """Python's ``\\w``, ``\\s``, ``\\d`` (str patterns) as RE2 ranges, asked of Python's own
    engine over every code point (surrogates cannot occur in UTF-8 text)."""
    code_points = array.array("I", range(0xD800))
    code_points.extend(range(0xE000, sys.maxunicode + 1))
    every = code_points.tobytes().decode("utf-32-le" if sys.byteorder == "little" else "utf-32-be")
    del code_points

    def members(pattern: str) -> list[int]:
        return sorted(ord(ch) for m in re.finditer(pattern, every) for ch in m.group())

    cased = "".join(ch for ch in every if ch.upper() != ch or ch.lower() != ch)
    return _Classes(_ranges(members(r"\w+")), _ranges(members(r"\s+")), _ranges(members(r"\d+")), cased)


@functools.cache
def _any_case(ch: str) -> str:
    """RE2 for one character as Python's re.IGNORECASE matches it."""
    literal = re.compile(re.escape(ch), re.IGNORECASE)
    matching = {ord(ch)} | {ord(c) for c in _classes().cased if literal.fullmatch(c)}
    if len(matching) == 1:
        return re2.escape(ch)
    return "[" + _ranges(sorted(matching)) + "]"


def _literal(text: str, ignore_case: bool) -> str:
    return "".join(_any_case(ch) if ignore_case else re2.escape(ch) for ch in text)


def _is_word(ch: str) -> bool:
    return ch == "_" or ch.isalnum()


def _bounded(forms: list[tuple[str, str, str]]) -> list[str]:
    """``\\b(?:form|...)\\b`` in RE2, for (pattern, first character, last character) forms.
    The characters either side are consumed instead of asserted, which is the same for
    finding whether a text holds a match; forms are grouped by whether they start and end
    with a word character, so each group shares one pair of (large) boundary classes."""
    if not forms:
        return []
    word = _classes().word
    groups: dict[tuple[bool, bool], list[str]] = {}
    for pieces, first, last in forms:
        groups.setdefault((_is_word(first), _is_word(last)), []).append(pieces)
    out = []
    for (word_first, word_last), members in groups.items():
        before = f"(?:^|[^{word}])" if word_first else f"[{word}]"
        after = f"(?:$|[^{word}])" if word_last else f"[{word}]"
        out.append(before + "(?:" + "|".join(members) + ")" + after)
    return out


def _name_forms(name: str) -> list[tuple[str, tuple[str, str, str]]]:
    """(Python pattern, (RE2 pattern without the boundaries, first and last character))
    for each written form of a full name."""
    parts = name.split()
    if not parts:
        return []
    c = _classes()
    separators, space = f"[{c.space},]+", f"[{c.space}]"
    forms = [(
        r"[\s,]+".join(re.escape(p) for p in parts),
        separators.join(_literal(p, True) for p in parts),
        parts[0][0], parts[-1][-1],
    )]
    if len(parts) > 1:
        forms.append((
            re.escape(parts[-1]) + r"\s*,\s*" + r"\s+".join(re.escape(p) for p in parts[:-1]),
            _literal(parts[-1], True) + f"{space}*,{space}*" + f"{space}+".join(_literal(p, True) for p in parts[:-1]),
            parts[-1][0], parts[-2][-1],
        ))
    return [(python, (pieces, first, last)) for python, pieces, first, last in forms]


def _number_forms(numbers: list[str]) -> list[str]:
    """RE2 for a run of digits and separators (as _DIGIT_RUN finds them) that holds
    exactly one of ``numbers``: the run is bounded by anything that cannot continue it."""
    if not numbers:
        return []
    run = _classes().digit + _RUN_SEPARATORS
    separators = f"[{_RUN_SEPARATORS}]*"
    forms = "|".join(separators.join(digits) for digits in numbers)
    return [f"(?:^|[^{run}]){separators}(?:{forms}){separators}(?:$|[^{run}])"]


def _ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _compile(patterns: list[str]) -> Any:
    if not patterns:
        return None
    options = re2.Options()
    options.max_mem = _RE2_MAX_MEM
    options.never_capture = True
    options.log_errors = False
    return re2.compile("|".join(f"(?:{p})" for p in patterns), options)


class LeakGuard:
    def __init__(self, people: list[Any]) -> None:
        """``people``: full (unmasked) Person records of everyone marked and not referred."""
        self._numbers: dict[str, tuple[str, str]] = {}
        name_patterns: dict[str, str] = {}
        name_re2: dict[str, tuple[str, str, str]] = {}
        email_patterns: dict[str, str] = {}
        self._guarded: list[_Guarded] = []
        for person in people:
            if person.name:
                for python, fast in _name_forms(person.name):
                    name_patterns[python] = person.ref
                    name_re2[python] = fast
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
        # The reference rules (Python's re): used to say who and what once a hit is found.
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
        # The same rules as one automaton each, for the scan.
        names = _bounded(list(name_re2.values()))
        emails = [_literal(e, True) for e in {p.email for p in people if p.email}]
        # Numbers shorter than a run (none in practice: phone numbers are E.164, NHS numbers
        # 10 digits) could only match with separators in between: scanned the reference way.
        self._short_numbers = any(len(n) < _MIN_RUN for n in self._numbers)
        numbers = _number_forms([n for n in self._numbers if len(n) >= _MIN_RUN and _ascii_digits(n)])
        # One automaton per rule: together in one they would need far more memory (RE2 then
        # falls back to a slow engine), and the reference order comes for free.
        self._fast_names, self._fast_emails, self._fast_numbers = _compile(names), _compile(emails), _compile(numbers)
        if not all(_ascii_digits(n) for n in self._numbers):
            self._short_numbers = True  # not plain digits (should not happen): the reference way
        # date of birth -> postcode -> the people with both, in order
        dob_people: dict[str, dict[str, list[tuple[int, _Guarded]]]] = {}
        for order, person in enumerate(self._guarded):
            if person.postcode:
                for form in person.dob_forms:
                    dob_people.setdefault(form, {}).setdefault(person.postcode, []).append((order, person))
        self._dob_people = list(dob_people.values())
        self._fast_dobs = _compile([re2.escape(form) for form in dob_people])
        self._dob_set = None
        if dob_people:  # which dates of birth a line holds, overlapping ones too (4/3/1981 in 14/3/1981)
            options = re2.Options()
            options.max_mem = _RE2_MAX_MEM
            self._dob_set = re2.Set.SearchSet(options)
            for expected, form in enumerate(dob_people):
                if self._dob_set.Add(re2.escape(form)) != expected:
                    raise RuntimeError("RE2 numbered the dates of birth out of order")
            self._dob_set.Compile()

    @property
    def empty(self) -> bool:
        return not self._guarded

    def find(self, text: str | bytes) -> Hit | None:
        """The first protected detail in ``text`` (str, or UTF-8 as it will be written), in
        the reference order: a name, else an email address, else a number, else a postcode
        with a date of birth."""
        if self.empty:
            return None
        data = text.encode("utf-8") if isinstance(text, str) else text
        if self._fast_names is not None:
            match = self._fast_names.search(data)
            if match:
                return self._name_hit(data, match.start(), match.end())
        if self._fast_emails is not None:
            match = self._fast_emails.search(data)
            if match:
                found = self._emails.search(data[match.start():match.end()].decode("utf-8")) if self._emails else None
                return Hit(self._email_refs[int(found.lastgroup[1:])] if found else "a protected person", "email")  # type: ignore[index]
        if self._fast_numbers is not None:
            match = self._fast_numbers.search(data)
            if match:
                found = self._number_hit(data[match.start():match.end()].decode("utf-8"))
                return found or Hit("a protected person", "number")
        if self._short_numbers:
            hit = self._number_hit(data.decode("utf-8"))
            if hit is not None:
                return hit
        if self._fast_dobs is not None:
            return self._postcode_with_dob(data)
        return None

    def _name_hit(self, data: bytes, start: int, end: int) -> Hit:
        found = self._names.search(data[start:end].decode("utf-8")) if self._names else None
        ref = self._name_refs[int(found.lastgroup[1:])] if found else "a protected person"  # type: ignore[index]
        return Hit(ref, "name")

    def _number_hit(self, text: str) -> Hit | None:
        for run in _DIGIT_RUN.findall(text):
            hit = self._numbers.get(re.sub(r"\D", "", run))
            if hit is not None:
                return Hit(*hit)
        return None

    def _postcode_with_dob(self, data: bytes) -> Hit | None:
        """A protected person's postcode and date of birth on the same line. The automaton
        finds the lines holding one of their dates of birth (one search per such line);
        only those are checked for the postcode, exactly as before."""
        position = 0
        while True:
            match = self._fast_dobs.search(data, position)
            if match is None:
                return None
            start = data.rfind(b"\n", 0, match.start()) + 1
            end = data.find(b"\n", match.end())
            position = len(data) if end < 0 else end
            line = data[start:position]
            indexes = self._dob_set.Match(line)
            if indexes:
                text = line.decode("utf-8")
                found = [
                    people[0] for index in indexes for people in self._dob_people[index].values()
                    if people[0][1].postcode_in(text)
                ]
                if found:
                    return Hit(min(found, key=lambda c: c[0])[1].ref, "postcode with date of birth")
            if end < 0:
                return None

    def check(self, text: str | bytes, record_ref: str) -> None:
        """Raise :class:`LeakBlocked` if ``text`` holds a protected person's details."""
        hit = self.find(text)
        if hit is not None:
            raise LeakBlocked(
                f"leak guard: {record_ref} would carry details of {hit.person_ref}, a person in a "
                f"sensitive role ({hit.kind}); the export was stopped and no bundle was written"
            )
