"""Every written form of a person's identifying details: the one definition.

A person's name, phone number, email address, NHS number, date of birth, address and
postcode can be written many ways ("+44 (0)7700 900555", "0044 7700 900555", "07700-900-555";
"4th March 1980", "04.03.1980"; "Zoe Anstrom Price" for "Zoë Ånström-Price"; "12 Hidden Ln"
for "12 Hidden Lane"). This module says, once, which written forms count, and everything
that looks for a person's details in text uses it:

* the note scrubber (:meth:`IdentityMatcher.scrub`, the case book and the rejects file),
* the reason check (:func:`check_reason`),
* the leak guard (:mod:`tracekit.redaction.guard`, which translates the same forms to RE2),
* the search index (:func:`search_terms`);

and it gives each identifier one normalised *key* per kind (:func:`identifier_keys`: E.164
phone, NHS digits, casefolded email, postcode + address line, name key, name key + date of
birth), which association by shared identifier, duplicate matching and the referral
tombstones compare (:mod:`tracekit.records.association`).

Text is compared *folded* (:func:`fold`): compatibility-decomposed, combining marks and
invisible format characters removed, case-folded, a few letters that do not decompose
mapped to their base letter ("ø", "ł", "ı"), typographic apostrophes made "'". A form is a
regular expression over folded text written in a small :class:`Dialect`, so that Python's
``re`` and RE2 read the same definition (the guard spells out Python's character classes).

What is deliberately not a form, to keep ordinary work possible: a name part shorter than
three letters on its own ("Jo" in "Jo Wu" is matched only as part of the full name); and,
in a bundle (where records legitimately carry other people's details), a postcode or a date
of birth on its own: households share postcodes, many people share a birthday.

A leaf: imports only the standard library and :mod:`tracekit.domain`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from tracekit.domain import identifiers as ids
from tracekit.errors import ValidationError
from tracekit.store import search_index

#: The kinds of identifying detail, and how each is named in messages (never the value).
KIND_LABELS: dict[str, str] = {
    "name": "name",
    "phone": "phone number",
    "email": "email",
    "nhs_number": "NHS number",
    "date_of_birth": "date of birth",
    "address": "address",
    "postcode": "postcode",
}

# -- folding ----------------------------------------------------------------------------

#: Letters without a decomposition that people write as their base letter.
_BASE_LETTERS = {
    "ø": "o",
    "ł": "l",
    "ı": "i",
    "đ": "d",
    "ħ": "h",
    "ŧ": "t",
    "ŀ": "l",
    "ƒ": "f",
    "æ": "ae",
    "œ": "oe",
    "þ": "th",
    "ð": "d",
    "\u2018": "'",
    "\u2019": "'",
    "\u02bc": "'",
    "\u2032": "'",
}


@functools.lru_cache(maxsize=4096)
def _after_decomposition(ch: str) -> str:
    """A decomposed, case-folded character: nothing for a combining mark or an invisible
    format character, the base letter for the letters in _BASE_LETTERS, else itself."""
    if unicodedata.combining(ch) or unicodedata.category(ch) == "Cf":
        return ""
    return _BASE_LETTERS.get(ch, ch)


def fold(text: str) -> str:
    """``text`` as the forms read it (see the module docstring). Folding a text is folding
    each of its characters (:func:`fold_char`), done with C-speed string operations on
    the few distinct characters a long text holds."""
    if text.isascii():
        return text.lower()
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    for ch in {c for c in set(folded) if not c.isascii()}:
        replacement = _after_decomposition(ch)
        if replacement != ch:
            folded = folded.replace(ch, replacement)
    return folded


@functools.lru_cache(maxsize=8192)
def fold_char(ch: str) -> str:
    """The folded form of one character (possibly empty, possibly two letters)."""
    return fold(ch)


def fold_with_origins(text: str) -> tuple[str, list[int]]:
    """The folded text and, for each of its characters, the index in ``text`` it came from."""
    out: list[str] = []
    origins: list[int] = []
    for index, ch in enumerate(text):
        folded = fold_char(ch)
        out.append(folded)
        origins.extend([index] * len(folded))
    return "".join(out), origins


# -- the dialect forms are written in ----------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """The character classes (contents of ``[...]``) and escaping of a regex engine."""

    word: str
    space: str
    digit: str
    escape: Callable[[str], str]


PYTHON = Dialect(word=r"\w", space=r"\s", digit=r"\d", escape=re.escape)


@dataclass(frozen=True)
class Form:
    """One written form of one detail: ``body`` is a regex over folded text in a dialect.
    ``edge`` names what may not touch it on either side ("word": a word character, so
    "Lee" is not found in "Sleep"; "digit": a digit, so a number is not found inside a
    longer one). ``alone``: whether it identifies the person on its own in a bundle record
    (a postcode or a date of birth does only together; see the module docstring).
    ``clauses``: what every match contains, so that a text is tried against only the forms
    it may hold (:class:`IdentityMatcher`): one literal (folded) of each clause, once number
    separators are taken out of both (:func:`without_separators`). None: tried on every text."""

    kind: str
    body: str
    edge: str
    alone: bool = True
    clauses: tuple[tuple[str, ...], ...] = ()


def python_pattern(form: Form) -> str:
    """The Python ``re`` pattern of a form written in :data:`PYTHON`, edges as lookarounds."""
    edge = PYTHON.word if form.edge == "word" else PYTHON.digit
    return f"(?<![{edge}])(?:{form.body})(?![{edge}])"


# -- the forms of each kind ---------------------------------------------------------------

_NAME_PART_MIN = 3  # shorter parts ("Jo", "Wu") count only within the full name
_WORD_SPLIT = re.compile(r"[\-']+")


def name_forms(name: str | None, d: Dialect = PYTHON) -> list[Form]:
    """The full name with any spacing, hyphens or apostrophes ("Anstrom Price",
    "AnstromPrice", "Anstrom-Price"); "Surname, Forenames"; and, for free text only, each
    part of at least three letters as a word of its own."""
    words = [[d.escape(t) for t in _WORD_SPLIT.split(w) if t] for w in fold(name or "").split()]
    words = [w for w in words if w]
    if not words:
        return []
    inside, between = f"[{d.space}\\-']*", f"[{d.space},\\-']+"
    joined = [inside.join(w) for w in words]
    pieces = tuple((t,) for w in fold(name or "").split() for t in _WORD_SPLIT.split(w) if t)
    forms = [Form("name", between.join(joined), "word", clauses=pieces)]
    if len(joined) > 1:
        forms.append(
            Form("name", joined[-1] + f"[{d.space}]*,[{d.space}]*" + between.join(joined[:-1]), "word", clauses=pieces)
        )
    parts = {t for (t,) in pieces if len(t) >= _NAME_PART_MIN}
    forms.extend(Form("name", d.escape(p), "word", alone=False, clauses=((p,),)) for p in sorted(parts))
    return forms


def phone_numbers(e164: str | None) -> list[str]:
    """The digits of every way a phone number is written: ``+447700900555`` also as
    07700900555, 7700900555, 00447700900555 and 4407700900555 (+44 (0)7700 900555)."""
    if not e164:
        return []
    digits = e164.lstrip("+")
    numbers = {digits, "00" + digits}
    if digits.startswith("44"):
        national = digits[2:]
        numbers |= {"0" + national, national, "440" + national, "00440" + national}
    return sorted(numbers)


def national_phone(e164: str) -> str | None:
    """The UK national form of a +44 number ("07700900555"), else None."""
    return "0" + e164[3:] if e164.startswith("+44") else None


#: What people put between the digits of a number (inside [...]). Folding has already made
#: every Unicode space a plain one; plain characters keep the guard's automaton small.
_NUMBER_SEPARATORS = " \\-()."


def _digits(digits: str, d: Dialect) -> str:
    # (ASCII digits need no escaping in any dialect: thousands of people, tens of thousands of calls saved)
    plain = digits.isascii() and digits.isdigit()
    return f"[{_NUMBER_SEPARATORS}]*".join(digits if plain else map(d.escape, digits))


def number_forms(kind: str, numbers: Iterable[str], d: Dialect = PYTHON) -> list[Form]:
    """One form for all the ways a number is written: its digits with any spaces, dashes,
    dots or brackets between them, not inside a longer number (a phone number's "+" is
    part of it, so that scrubbing removes it too). Written as the differing prefixes
    before the digits all forms end with, which keeps the guard's automaton small."""
    numbers = sorted({n for n in numbers if n})
    if not numbers:
        return []
    common = numbers[0]
    for n in numbers[1:]:
        while not n.endswith(common):
            common = common[1:]
    prefixes = sorted({n[: len(n) - len(common)] for n in numbers})
    joint = f"[{_NUMBER_SEPARATORS}]*"
    written = [_digits(p, d) + joint for p in prefixes if p]
    body = ("(?:" + "|".join(written) + ")" + ("?" if "" in prefixes else "")) if written else ""
    plus = "(?:\\+ *)?" if kind == "phone" else ""
    return [Form(kind, plus + body + _digits(common, d), "digit", clauses=((common,) if common else tuple(numbers),))]


def email_forms(email: str | None, d: Dialect = PYTHON) -> list[Form]:
    return [Form("email", d.escape(fold(email)), "word", clauses=((fold(email),),))] if email else []


_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]


def date_forms(when: date | None, d: Dialect = PYTHON) -> list[Form]:
    """ISO (1980-03-04); day/month/year with / - or . and one- or two-digit day and month
    (4/3/1980, 04.03.1980); day month-name year (4 March 1980, 4th Mar 1980, 04-Mar-1980);
    month-name day, year (March 4, 1980)."""
    if when is None:
        return []
    year = f"{when.year:04d}"
    day = f"0?{when.day}" if when.day < 10 else f"{when.day}"
    month = f"0?{when.month}" if when.month < 10 else f"{when.month}"
    name = _MONTHS[when.month - 1]
    month_name = f"(?:{name}|sept|sep)" if name == "september" else f"(?:{name}|{name[:3]})"
    ordinal = "(?:st|nd|rd|th)?"
    sep = f"[{d.space},\\-/.]+"
    numeric = "|".join(f"{day}{d.escape(s)}{month}{d.escape(s)}{year}" for s in "/-.")
    bodies = [
        f"{year}-{when.month:02d}-{when.day:02d}",
        numeric,
        f"{day}{ordinal}{sep}(?:of{sep})?{month_name}{sep}{year}",
        f"{month_name}{sep}{day}{ordinal}{sep}{year}",
    ]
    return [Form("date_of_birth", "|".join(bodies), "word", alone=False, clauses=((year,),))]


def postcode_forms(postcode: str | None, d: Dialect = PYTHON) -> list[Form]:
    """With or without the space (any spacing)."""
    if not postcode:
        return []
    compact = fold(postcode).replace(" ", "")
    if len(compact) < 5:
        return [Form("postcode", d.escape(compact), "word", alone=False, clauses=((compact,),))]
    outward, inward = compact[:-3], compact[-3:]
    return [
        Form(
            "postcode",
            f"{d.escape(outward)}[{d.space}]*{d.escape(inward)}",
            "word",
            alone=False,
            clauses=((outward,), (inward,)),
        )
    ]


#: Street words and their usual abbreviations (folded).
STREET_WORDS: dict[str, tuple[str, ...]] = {
    "road": ("rd",),
    "street": ("st",),
    "lane": ("ln",),
    "avenue": ("ave", "av"),
    "drive": ("dr",),
    "close": ("cl",),
    "court": ("ct",),
    "place": ("pl",),
    "crescent": ("cres",),
    "terrace": ("terr", "ter"),
    "gardens": ("gdns",),
    "square": ("sq",),
    "grove": ("gr",),
    "park": ("pk",),
    "mews": (),
    "way": (),
}
_ABBREVIATION_OF = {abbr: word for word, abbrs in STREET_WORDS.items() for abbr in abbrs}
_ADDRESS_TOKEN = re.compile(r"[^\W_]+")
_STREET_LINE = re.compile(r"(?<![^\W_])(\d+[a-z]?)(?![^\W_])[\s,]*([^\W\d_][^,\n]*)")


def _spellings(token: str) -> tuple[str, ...]:
    """How an address word may be written: a street word and its abbreviations, else itself."""
    word = _ABBREVIATION_OF.get(token, token)
    return (word, *STREET_WORDS.get(word, ()))


@functools.lru_cache(maxsize=4096)  # street words and house numbers recur from person to person
def _address_token(token: str, d: Dialect) -> str:
    spellings = _spellings(token)
    if len(spellings) == 1:
        return d.escape(spellings[0])
    return "(?:" + "|".join([d.escape(spellings[0])] + [d.escape(s) + "\\.?" for s in spellings[1:]]) + ")"


def _address_form(tokens: list[str], d: Dialect) -> Form:
    return Form(
        "address",
        f"[{d.space},.\\-'/]*".join(_address_token(t, d) for t in tokens),
        "word",
        clauses=tuple(_spellings(t) for t in tokens),
    )


def address_forms(address: str | None, d: Dialect = PYTHON) -> list[Form]:
    """The house number with the street ("12 Hidden Lane", "12, hidden ln."), and the
    whole address line; case, punctuation and the usual street abbreviations do not matter."""
    folded = fold(address or "")
    forms: list[Form] = []
    street = _STREET_LINE.search(folded)
    tokens: list[str] = []
    if street:
        tokens = [street.group(1)] + _ADDRESS_TOKEN.findall(street.group(2))
        if len(tokens) > 1:
            forms.append(_address_form(tokens, d))
    line = _ADDRESS_TOKEN.findall(folded)
    if len(line) > 1 and not (street and len(line) == len(tokens)):
        forms.append(_address_form(line, d))
    return forms


def written_forms(person: Any, d: Dialect = PYTHON) -> list[Form]:
    """Every written form of a Person-like object's details (attributes ``name``,
    ``phone`` (E.164), ``email``, ``nhs_number``, ``date_of_birth``, ``address``, ``postcode``)."""
    return [
        *name_forms(person.name, d),
        *email_forms(person.email, d),
        *number_forms("phone", phone_numbers(person.phone), d),
        *number_forms("nhs_number", [person.nhs_number] if person.nhs_number else [], d),
        *address_forms(getattr(person, "address", None), d),
        *postcode_forms(person.postcode, d),
        *date_forms(person.date_of_birth, d),
    ]


# -- one matcher for free text ------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    person_ref: str
    kind: str
    start: int  # in the original text
    end: int


#: Taken out of a text and of the forms' clauses before comparing them: what people put
#: between the digits of a number (so that a number's digits are one literal).
_SEPARATORS_OUT = str.maketrans("", "", _NUMBER_SEPARATORS.replace("\\", ""))
#: Literals are looked up by at most this many of their first characters.
_INDEXED_PREFIX = 16
#: How many patterns of candidate forms a matcher keeps compiled.
_COMPILED_KEPT = 256


def without_separators(text: str) -> str:
    return text.translate(_SEPARATORS_OUT)


def _comparable(clauses: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
    """Clauses as compared with a text without separators; a clause one of whose literals
    was only separators holds for every text, and is left out."""
    out = []
    for clause in clauses:
        literals = tuple(sorted({without_separators(literal) for literal in clause}))
        if literals and all(literals):
            out.append(literals)
    return tuple(out)


class IdentityMatcher:
    """Finds the given people's details in free text, in any written form.

    ``alone_only``: only forms that identify someone on their own in a bundle record
    (the leak guard's rules; it checks postcode with date of birth itself).

    Thousands of people have tens of thousands of forms: one pattern of them all would take
    seconds to compile and try every form at every position of every text. So each form is
    indexed by one clause of literals every match of it contains (:attr:`Form.clauses`; the
    clause fewest forms share), a text is read once for the literals it holds (hashed
    look-ups, whatever the number of people), and only the forms whose clauses all hold are
    compiled, in their usual order, into the pattern that finds them (kept for the next text
    with the same candidates). A form that is not a candidate cannot match, so what is found
    is exactly what the pattern of all forms finds."""

    def __init__(self, people: Iterable[Any], *, alone_only: bool = False) -> None:
        refs_of: dict[tuple[str, str], dict[str, None]] = {}
        clauses_of: dict[tuple[str, str], tuple[tuple[str, ...], ...]] = {}
        for person in people:
            for form in written_forms(person):
                if alone_only and not form.alone:
                    continue
                key = (form.kind, python_pattern(form))
                if key not in refs_of:
                    refs_of[key] = {}
                    clauses_of[key] = _comparable(form.clauses)
                refs_of[key][person.ref] = None
        # Longer forms first: at one position the full name wins over one of its parts.
        self._forms = sorted(
            ((key, list(refs)) for key, refs in refs_of.items()), key=lambda item: len(item[0][1]), reverse=True
        )
        self._clauses = [clauses_of[key] for key, _ in self._forms]
        self._index_forms()
        self._pattern_of = functools.lru_cache(maxsize=_COMPILED_KEPT)(self._compile)

    def _index_forms(self) -> None:
        shared = Counter(literal for clauses in self._clauses for clause in clauses for literal in clause)
        #: literal prefix -> (literal, form index) for the forms indexed by that literal
        self._by_prefix: dict[str, list[tuple[str, int]]] = {}
        #: forms without clauses: candidates for every text
        self._always: list[int] = []
        for index, clauses in enumerate(self._clauses):
            if not clauses:
                self._always.append(index)
                continue
            rarest = (
                clauses[0]
                if len(clauses) == 1
                else min(
                    clauses,
                    key=lambda clause: (
                        sum(shared[literal] for literal in clause),
                        -min(len(literal) for literal in clause),
                    ),
                )
            )
            for literal in rarest:
                self._by_prefix.setdefault(literal[:_INDEXED_PREFIX], []).append((literal, index))
        self._prefix_lengths = sorted({len(prefix) for prefix in self._by_prefix})

    def _candidates(self, folded: str) -> tuple[int, ...]:
        """The forms (indices, in order) whose clauses all hold in ``folded``."""
        plain = without_separators(folded)
        found = set(self._always)
        for start in range(len(plain)):
            for length in self._prefix_lengths:
                if start + length > len(plain):
                    break
                for literal, index in self._by_prefix.get(plain[start : start + length], ()):
                    if (
                        index not in found
                        and plain.startswith(literal, start)
                        and all(any(other in plain for other in clause) for clause in self._clauses[index])
                    ):
                        found.add(index)
        return tuple(sorted(found))

    def _compile(self, indices: tuple[int, ...]) -> re.Pattern[str]:
        return re.compile("|".join(f"(?P<f{i}>{self._forms[i][0][1]})" for i in indices))

    @property
    def empty(self) -> bool:
        return not self._forms

    def find_all(self, text: str) -> list[Found]:
        """Every (person, kind) found, where it was found; overlapping finds included."""
        if not self._forms or not text:
            return []
        folded, origins = fold_with_origins(text)
        candidates = self._candidates(folded)
        if not candidates:
            return []
        pattern = self._pattern_of(candidates)
        found: list[Found] = []
        position = 0
        while True:
            match = pattern.search(folded, position)
            if match is None:
                return found
            (kind, _), refs = self._forms[int(match.lastgroup[1:])]  # type: ignore[index]
            start, end = _original_span(text, origins, match.start(), match.end())
            found.extend(Found(ref, kind, start, end) for ref in refs)
            position = match.start() + 1

    def first(self, text: str) -> Found | None:
        found = self.find_all(text)
        return found[0] if found else None

    def scrub(self, text: str, marker: str) -> str:
        """``text`` with every found detail replaced by ``marker``."""
        spans = sorted((f.start, f.end) for f in self.find_all(text))
        if not spans:
            return text
        out, position = [], 0
        for start, end in spans:
            if start < position:  # overlaps the previous replacement: it grows
                position = max(position, end)
                continue
            out.extend([text[position:start], marker])
            position = end
        out.append(text[position:])
        return "".join(out)


def _original_span(text: str, origins: list[int], start: int, end: int) -> tuple[int, int]:
    """The span of ``text`` that folded to ``folded[start:end]``, with any marks that
    folded away right after it (a combining accent belongs to the letter before it)."""
    first = origins[start]
    last = origins[end - 1] + 1
    while last < len(text) and fold_char(text[last]) == "":
        last += 1
    return first, last


# -- search ---------------------------------------------------------------------------------


def search_terms(key: str, phone: str | None, nhs_number: str | None, postcode: str | None) -> str:
    """The text indexed for a person whose ``name_key`` is ``key``: name, phone (E.164 and
    national), NHS number, postcode with and without its space."""
    parts = [key]
    if phone:
        parts.append(phone)
        national = national_phone(phone)
        if national:
            parts.append(national)
    if nhs_number:
        parts.append(nhs_number)
    if postcode:
        parts.extend([postcode, postcode.replace(" ", "")])
    return search_index.SEPARATOR.join(parts)


# -- the note scrubber and the reason check -----------------------------------------------

REASON_MAX_LENGTH = 500
WITHHELD_IN_TEXT = "[withheld]"


def identity_matcher(people: list[Any]) -> IdentityMatcher | None:
    """What finds these people's details in free text, in every written form
    (above); ``.scrub(text, WITHHELD_IN_TEXT)`` withholds them."""
    matcher = IdentityMatcher(people)
    return None if matcher.empty else matcher


def check_reason(reason: str | None, people: list[Any], *, required: bool = True) -> str | None:
    """Validate a stated reason: present, plain, short, and free of these people's details."""
    if reason is None or not reason.strip():
        if required:
            raise ValidationError("reason", "is required", expected="a short reason, without names or numbers")
        return None
    text = " ".join(reason.split())
    if len(text) > REASON_MAX_LENGTH:
        raise ValidationError("reason", f"is {len(text)} characters long", expected=f"at most {REASON_MAX_LENGTH}")
    found = IdentityMatcher(people).first(text)
    if found is not None:
        raise ValidationError(
            "reason",
            f"contains details of {found.person_ref} (their {KIND_LABELS[found.kind]}; reasons are stored and audited)",
            expected="a reason without the person's name, numbers, address or date of birth",
        )
    return text


# -- identifier keys: one normalised key per kind --------------------------------------

_NOT_WORD = re.compile(r"[\W_]+")
_E164 = re.compile(r"\+[1-9]\d{6,14}")


def _get(person: Any, name: str) -> Any:
    return person.get(name) if isinstance(person, dict) else getattr(person, name, None)


def address_key(address: str | None, postcode: str | None) -> str | None:
    """An address line with its postcode, written the same whatever the spacing,
    punctuation or case ("12 High St." and "12, high st" are one address)."""
    if not address or not str(address).strip():
        return None
    line = " ".join(_NOT_WORD.sub(" ", str(address).casefold()).split())
    code = "".join(str(postcode or "").split()).upper()
    return f"{code}|{line}" if line else None


def _name_key(name: str) -> str:
    """The duplicate-matching name key; for a stored name the validators would now refuse
    (older data), its casefolded words, so a view never fails on it."""
    try:
        return ids.name_key(name)
    except ValidationError:
        return " ".join(name.casefold().split())


def identifier_keys(person: Any) -> set[tuple[str, str]]:
    """The normalised identifier keys of a person (a Person, or a dict of its fields):
    (kind, key) for phone (E.164), nhs (digits), email (casefolded), address (postcode +
    address line), name (name key) and name_dob (name key + ISO date of birth)."""
    keys: set[tuple[str, str]] = set()
    phone = _get(person, "phone")
    if phone and _E164.fullmatch(str(phone)):  # as stored: already normalised
        keys.add(("phone", str(phone)))
    elif phone:
        try:
            keys.add(("phone", ids.normalise_phone(str(phone))))
        except ValidationError:
            keys.add(("phone", re.sub(r"\D", "", str(phone))))
    nhs = _get(person, "nhs_number")
    if nhs:
        keys.add(("nhs", re.sub(r"\D", "", str(nhs))))
    email = _get(person, "email")
    if email and str(email).strip():
        keys.add(("email", str(email).strip().casefold()))
    address = address_key(_get(person, "address"), _get(person, "postcode"))
    if address:
        keys.add(("address", address))
    name_key = _get(person, "name_key")
    if not name_key and _get(person, "name"):
        name_key = _name_key(str(_get(person, "name")))
    if name_key:
        keys.add(("name", str(name_key)))
        dob = _get(person, "date_of_birth")
        if dob:
            keys.add(("name_dob", f"{name_key}|{dob.isoformat() if isinstance(dob, date) else dob}"))
    return keys
