"""The leak guard: the last check before anything leaves the machine.

Before a bundle is finalised every byte of its content passes through the guard. It looks
for the details of every person in a sensitive role whose record is still in the store, in
every written form :mod:`tracekit.records.identity` defines: full names (any case, accents
or none, any spacing and hyphenation, also "Surname, Forename"), phone numbers (national,
+44, 0044, +44 (0), any separators), NHS numbers with any separators, email addresses, the
house number with the street or the whole address line, and a postcode together with a date
of birth on the same line (one record: a JSON Lines or CSV line). A postcode or a date of
birth alone is not a hit: households share postcodes, many people share a birthday.

The guard does not stop at the first hit: :meth:`LeakGuard.scan` notes every hit of the
export (the first :data:`MAX_LISTED`, and how many in all), and :meth:`LeakGuard.raise_if_blocked`
then stops it with one error that lists them, by record reference, person reference and
kind of detail, never the value, and says what to do (docs/handover-guide.md).

How it scans. The rules are the identity module's forms, compiled for Python's ``re``
(used to name the person once something is found), but Python's engine tries every
alternative at every position: with 100 protected people it needed minutes for one
20,000-record chunk. So the same forms are written a second time in RE2's dialect and
compiled into one automaton per kind (google-re2), which reads each chunk once whatever
the number of people: ``\\w``, ``\\s`` and ``\\d`` are spelt out as explicit character sets
computed from Python's own definitions, and the text is folded (case, accents) once before
both engines read it, so both accept exactly the same texts
(tests/bundle/test_guard_equivalence.py checks that against a plain Python reference).
Dates of birth are found the same way; only the lines holding one are then checked for
the postcode.

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
from tracekit.records.identity import (
    KIND_LABELS,
    Dialect,
    Form,
    IdentityMatcher,
    date_forms,
    fold,
    postcode_forms,
    python_pattern,
    written_forms,
)

_RE2_MAX_MEM = 64 << 20
#: How many hits one failed export lists (all are counted).
MAX_LISTED = 1000
#: The kinds of detail found on their own, one automaton each (numbers: phone and NHS).
_GROUPS = {"name": "name", "email": "email", "phone": "number", "nhs_number": "number", "address": "address"}
PAIRED = "postcode with date of birth"
HANDOVER_GUIDE_SECTION = 'docs/handover-guide.md, "When the leak guard stops an export"'


@dataclass(frozen=True, order=True)
class Hit:
    person_ref: str
    kind: str  # as shown: "name", "phone number", ..., "postcode with date of birth"


# -- Python's character classes, spelt out for RE2 --------------------------------------


@dataclass(frozen=True)
class _Classes:
    word: str  # ranges of \w, for inside [...]
    space: str  # ranges of \s
    digit: str  # ranges of \d


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

    return _Classes(_ranges(members(r"\w+")), _ranges(members(r"\s+")), _ranges(members(r"\d+")))


@functools.cache
def re2_dialect() -> Dialect:
    """The identity forms' dialect for RE2: Python's classes spelt out."""
    c = _classes()
    return Dialect(word=c.word, space=c.space, digit=c.digit, escape=re2.escape)


def _bounded(forms: list[Form]) -> list[str]:
    """RE2 for forms written in :func:`re2_dialect`, with their edges. The characters
    either side are consumed instead of asserted (RE2 has no lookaround), which is the same
    for finding whether a text holds a match; forms are grouped by edge, so each group
    shares one pair of (large) boundary classes."""
    c = _classes()
    groups: dict[str, list[str]] = {}
    for form in forms:
        groups.setdefault(form.edge, []).append(form.body)
    out = []
    for edge, bodies in sorted(groups.items()):
        outside = c.word if edge == "word" else c.digit
        out.append(f"(?:^|[^{outside}])(?:" + "|".join(sorted(set(bodies))) + f")(?:$|[^{outside}])")
    return out


def _compile(patterns: list[str]) -> Any:
    if not patterns:
        return None
    options = re2.Options()
    options.max_mem = _RE2_MAX_MEM
    options.never_capture = True
    options.log_errors = False
    return re2.compile("|".join(f"(?:{p})" for p in patterns), options)


def _folded_bytes(text: str | bytes) -> bytes:
    if isinstance(text, bytes):
        if text.isascii():
            return text.lower()
        text = text.decode("utf-8")
    return fold(text).encode("utf-8")


class LeakGuard:
    def __init__(self, people: list[Any]) -> None:
        """``people``: full (unmasked) Person records of everyone marked and not referred."""
        self._people = list(people)
        dialect = re2_dialect()
        by_group: dict[str, list[Form]] = {}
        # date of birth -> postcode (Python pattern) -> the people with both
        dob_people: dict[str, dict[str, list[str]]] = {}
        for person in self._people:
            for form in written_forms(person, dialect):
                if form.alone:
                    by_group.setdefault(_GROUPS[form.kind], []).append(form)
            if person.postcode and person.date_of_birth:
                dates = _bounded(date_forms(person.date_of_birth, dialect))[0]
                postcode = python_pattern(postcode_forms(person.postcode)[0])
                refs = dob_people.setdefault(dates, {}).setdefault(postcode, [])
                if person.ref not in refs:
                    refs.append(person.ref)
        # One automaton per kind: together in one they would need far more memory (RE2
        # then falls back to a slow engine).
        self._fast = {group: _compile(_bounded(forms)) for group, forms in sorted(by_group.items())}
        self._dob_people = [
            [(re.compile(postcode), refs) for postcode, refs in by_postcode.items()]
            for by_postcode in dob_people.values()
        ]
        self._fast_dobs = _compile(list(dob_people))
        self._dob_set = None
        if dob_people:  # which dates of birth a line holds
            options = re2.Options()
            options.max_mem = _RE2_MAX_MEM
            self._dob_set = re2.Set.SearchSet(options)
            for expected, dates in enumerate(dob_people):
                if self._dob_set.Add(dates) != expected:
                    raise RuntimeError("RE2 numbered the dates of birth out of order")
            self._dob_set.Compile()
        #: (record reference, hit) for the first MAX_LISTED hits; ``hit_count`` counts all.
        self.listed: list[tuple[str, Hit]] = []
        self.hit_count = 0

    @functools.cached_property
    def _matcher(self) -> IdentityMatcher:
        """The Python rules, built only once the automata found something."""
        return IdentityMatcher(self._people, alone_only=True)

    @property
    def empty(self) -> bool:
        return not self._people

    @property
    def blocked(self) -> bool:
        return self.hit_count > 0

    def flagged(self, text: str | bytes) -> set[str]:
        """The kinds (name, email, number, address, paired) the automata find in ``text``."""
        if self.empty:
            return set()
        data = _folded_bytes(text)
        found = {group for group, fast in self._fast.items() if fast is not None and fast.search(data)}
        if self._paired(data):
            found.add("paired")
        return found

    def hits(self, text: str | bytes) -> list[Hit]:
        """Every (person, kind of detail) found in ``text`` (str, or UTF-8 as it will be written)."""
        if self.empty:
            return []
        data = _folded_bytes(text)
        found: set[Hit] = set()
        if any(fast is not None and fast.search(data) for fast in self._fast.values()):
            plain = text.decode("utf-8") if isinstance(text, bytes) else text
            found.update(Hit(f.person_ref, KIND_LABELS[f.kind]) for f in self._matcher.find_all(plain))
        found.update(Hit(ref, PAIRED) for ref in self._paired(data))
        return sorted(found)

    def find(self, text: str | bytes) -> Hit | None:
        """The first of :meth:`hits`, or None."""
        found = self.hits(text)
        return found[0] if found else None

    def _paired(self, data: bytes) -> set[str]:
        """People whose postcode and date of birth are on one line of (folded) ``data``.
        The automaton finds the lines holding one of their dates of birth (one search per
        such line); only those are checked for the postcode."""
        refs: set[str] = set()
        if self._fast_dobs is None:
            return refs
        position = 0
        while True:
            match = self._fast_dobs.search(data, position)
            if match is None:
                return refs
            # (its edges may be the newlines either side: the middle is in the date)
            middle = (match.start() + match.end()) // 2
            start = data.rfind(b"\n", 0, middle) + 1
            end = data.find(b"\n", middle)
            line = data[start : len(data) if end < 0 else end]
            text = None
            for index in self._dob_set.Match(line):  # type: ignore[union-attr]
                text = text if text is not None else line.decode("utf-8")
                for postcode, people in self._dob_people[index]:
                    if postcode.search(text):
                        refs.update(people)
            if end < 0:
                return refs
            position = end + 1

    def scan(self, text: str | bytes, record_ref: str) -> bool:
        """Note every hit in ``text``, which becomes ``record_ref``; whether there was one."""
        found = self.hits(text)
        for hit in found:
            if len(self.listed) < MAX_LISTED:
                self.listed.append((record_ref, hit))
        self.hit_count += len(found)
        return bool(found)

    def raise_if_blocked(self) -> None:
        """Stop the export with one error listing every hit noted so far."""
        if not self.blocked:
            return
        records = len({ref for ref, _ in self.listed})
        lines = [f"  {ref}: {hit.person_ref} ({hit.kind})" for ref, hit in self.listed]
        more = self.hit_count - len(self.listed)
        if more:
            lines.append(f"  ... and {more} more")
        raise LeakBlocked(
            f"leak guard: {self.hit_count} detail(s) of people in sensitive roles in "
            f"{records}{'+' if more else ''} record(s); the export was stopped and no bundle was written:\n"
            + "\n".join(lines),
            hint=f"see {HANDOVER_GUIDE_SECTION}: mark the record's person, release or correct the data, then export again",
        )

    def check(self, text: str | bytes, record_ref: str) -> None:
        """Raise :class:`LeakBlocked` if ``text`` holds a protected person's details."""
        self.scan(text, record_ref)
        self.raise_if_blocked()
