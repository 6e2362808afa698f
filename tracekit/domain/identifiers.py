"""Validation and normalisation of the identifiers a tracer records.

Every function here is pure (no I/O) and either returns the value in its one stored
form or raises :class:`tracekit.errors.ValidationError` naming the field and the form
that was expected. Messages never contain the value itself: it is personal data, and
for a person in a sensitive role even echoing it to a terminal can be a disclosure.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import date

from tracekit.errors import EnvironmentProblem, ValidationError

__all__ = [
    "DRAMA_PHONE_RANGES",
    "NAME_MAX_LENGTH",
    "format_nhs_number",
    "format_phone",
    "is_valid_nhs_number",
    "name_key",
    "normalise_name",
    "normalise_nhs_number",
    "normalise_phone",
    "normalise_postcode",
    "parse_date",
    "validate_email",
]

# --------------------------------------------------------------------------- NHS number

_NHS_EXPECTED = "10 digits with a valid check digit"
_NHS_SEPARATORS = str.maketrans("", "", " -")
_TEN_ASCII_DIGITS = re.compile(r"[0-9]{10}")


def _nhs_check_digit(first_nine: str) -> int | None:
    """The modulus-11 check digit of the first nine digits of an NHS number.

    NHS Data Dictionary: multiply digits 1 to 9 by the weights 10 down to 2, sum, take
    the remainder modulo 11 and subtract it from 11; a result of 11 means 0 and a result
    of 10 means no number with these nine digits is valid (``None`` here).
    """
    total = sum(int(digit) * weight for digit, weight in zip(first_nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def normalise_nhs_number(text: str) -> str:
    """Return the NHS number in ``text`` as 10 digits, checking its check digit.

    Spaces and dashes are ignored, so ``"999 000 0018"``, ``"999-000-0018"`` and
    ``"9990000018"`` all give ``"9990000018"``. Only ASCII digits count as digits.
    """
    digits = text.strip().translate(_NHS_SEPARATORS)
    if not _TEN_ASCII_DIGITS.fullmatch(digits):
        raise ValidationError("nhs_number", "is not an NHS number: it must be 10 digits", expected=_NHS_EXPECTED)
    check = _nhs_check_digit(digits[:9])
    if check is None:
        raise ValidationError(
            "nhs_number",
            "is not a valid NHS number: no check digit is possible for its first nine digits",
            expected=_NHS_EXPECTED,
        )
    if check != int(digits[9]):
        raise ValidationError(
            "nhs_number",
            "is not a valid NHS number: the check digit does not match (a digit may be mistyped or two digits swapped)",
            expected=_NHS_EXPECTED,
        )
    return digits


def is_valid_nhs_number(text: str) -> bool:
    """True when :func:`normalise_nhs_number` would accept ``text``."""
    try:
        normalise_nhs_number(text)
    except ValidationError:
        return False
    return True


def format_nhs_number(digits: str) -> str:
    """Write a valid NHS number in the usual 3-3-4 grouping: ``"999 000 0018"``.

    ``digits`` may be in any form :func:`normalise_nhs_number` accepts.
    """
    number = normalise_nhs_number(digits)
    return f"{number[:3]} {number[3:6]} {number[6:]}"


# ------------------------------------------------------------------------- phone number

_PHONE_EXPECTED = "a UK phone number such as 07700 900123 or an international number starting with +"

#: Ofcom's ranges reserved for TV and radio drama, as E.164 prefixes each followed by
#: exactly three more digits (07700 900000-900999, 0113 496 0000-0999,
#: 020 7946 0000-0999, 01632 960000-960999). No real line has these numbers, which is
#: why tracekit's tests, fixtures and examples use them. libphonenumber reports 07700
#: 900xxx and 01632 960xxx as invalid (they are not allocated), so they are accepted
#: explicitly; they are harmless to store, since no call to them can reach anyone.
DRAMA_PHONE_RANGES: tuple[str, ...] = ("+447700900", "+441134960", "+442079460", "+441632960")


def _gb_number_desc(name: str) -> tuple[frozenset[int], re.Pattern[str]]:
    """libphonenumber's GB number description ``name`` as (possible lengths, pattern)."""
    import phonenumbers

    metadata = phonenumbers.PhoneMetadata.metadata_for_region("GB")
    desc = getattr(metadata, name, None)
    if desc is None or desc.national_number_pattern is None:
        raise EnvironmentProblem(f"the installed phonenumbers library has no GB {name} metadata")
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)


@functools.cache
def _fast_path_descs() -> tuple[
    tuple[frozenset[int], re.Pattern[str]], tuple[tuple[frozenset[int], re.Pattern[str]], ...]
]:
    """(the GB general description, the types the fast path may accept), loaded once.

    The fast path may accept mobile (07), geographic (01, 02) and UK-wide (03) national
    numbers: libphonenumber counts a national number as valid when it fits the general
    description and any one type description. Loaded on first use, not at import:
    importing phonenumbers and compiling its GB patterns costs about 25 ms, which every
    command that shows records but parses no phone number would otherwise pay.
    """
    general = _gb_number_desc("general_desc")
    return general, tuple(_gb_number_desc(name) for name in ("mobile", "fixed_line", "uan"))


_FAST_PATH_SEPARATORS = str.maketrans("", "", " -().")
#: Longer text goes to libphonenumber, which has its own length limit.
_FAST_PATH_MAX_LENGTH = 40
#: A UK number in one of the common forms, after separators are removed; group "nsn" is
#: the national significant number. The international forms may keep the national
#: trunk "0" too, as in "+44 (0)7700 900123".
_FAST_PATH_INTERNATIONAL = re.compile(r"\+440?(?P<nsn>[1237][0-9]{8,9})")
_FAST_PATH_GB_ONLY = re.compile(r"(?:00440?|0)(?P<nsn>[1237][0-9]{8,9})")
_PHONE_SYMBOLS = frozenset("+-()./")


def _matches(desc: tuple[frozenset[int], re.Pattern[str]], nsn: str) -> bool:
    """libphonenumber's test of a national number against one of its descriptions.

    An empty set of possible lengths means "as the general description", which is
    checked separately.
    """
    lengths, pattern = desc
    return (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None


def _is_drama_number(e164: str) -> bool:
    return len(e164) == 13 and e164.startswith(DRAMA_PHONE_RANGES)


def _fast_path_phone(text: str, region: str) -> str | None:
    """The E.164 form of a common UK number without parsing it with libphonenumber.

    Handles 07/01/02/03 national numbers (when ``region`` is GB), ``+44`` and ``0044``
    (GB only) with spaces, dashes, dots and parentheses. Returns ``None`` whenever the
    answer is not certain, and the caller then asks libphonenumber. Certainty comes from
    testing against libphonenumber's own metadata patterns for GB, so the two cannot
    drift apart when the library is updated. Numbers of Guernsey, Jersey and the Isle of
    Man, which share +44 but have their own metadata, are left to libphonenumber.
    """
    if len(text) > _FAST_PATH_MAX_LENGTH:
        return None
    compact = text.strip().translate(_FAST_PATH_SEPARATORS)
    match = _FAST_PATH_INTERNATIONAL.fullmatch(compact)
    if match is None and region == "GB":
        match = _FAST_PATH_GB_ONLY.fullmatch(compact)
    if match is None:
        return None
    nsn = match["nsn"]
    e164 = "+44" + nsn
    if _is_drama_number(e164):
        return e164
    general, types = _fast_path_descs()
    if _matches(general, nsn) and any(_matches(desc, nsn) for desc in types):
        return e164
    return None


def _library_normalise_phone(text: str, region: str) -> str:
    """Parse, validate and format with libphonenumber (the reference behaviour)."""
    import phonenumbers

    if any(char.isalpha() for char in text):
        # libphonenumber reads letters as keypad digits ("0800 FLOWERS"); a mistyped
        # letter O would silently become a 6 and give a different, real number.
        raise ValidationError("phone", "contains letters", expected=_PHONE_EXPECTED)
    if any(not (char.isdecimal() or char.isspace() or char in _PHONE_SYMBOLS) for char in text):
        raise ValidationError(
            "phone",
            "contains characters that are not part of a phone number",
            expected=_PHONE_EXPECTED,
        )
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValidationError("phone", "is not a phone number", expected=_PHONE_EXPECTED) from None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not (phonenumbers.is_valid_number(number) or _is_drama_number(e164)):
        raise ValidationError("phone", "is not a valid phone number", expected=_PHONE_EXPECTED)
    return e164


def _is_supported_region(region: str) -> bool:
    import phonenumbers

    return region in phonenumbers.SUPPORTED_REGIONS


def normalise_phone(text: str, region: str = "GB") -> str:
    """Return the phone number in ``text`` in E.164 form, e.g. ``"+447700900123"``.

    A number without a ``+`` or international prefix is read as a national number of
    ``region`` (an ISO 3166 two-letter code known to libphonenumber). A number is valid
    when libphonenumber says so, or when it is in one of Ofcom's drama ranges
    (:data:`DRAMA_PHONE_RANGES`). Letters are refused rather than read as keypad digits.

    The common UK forms take a fast path that gives the same answer as libphonenumber
    more than ten times faster (bulk imports normalise every row); everything else,
    including every error, goes through libphonenumber.
    """
    if region != "GB" and not _is_supported_region(region):
        raise ValidationError("region", "is not a known region code", expected="a two-letter region code such as GB")
    fast = _fast_path_phone(text, region)
    if fast is not None:
        return fast
    return _library_normalise_phone(text, region)


#: libphonenumber's national number formats for GB (and so for every +44 number,
#: Crown dependencies included), in its order, as (leading digits, pattern, format), with
#: its national prefix rule ("0" before the first group) applied. A copy, so that showing
#: a number does not import phonenumbers (about 20 ms a command): the tests check that
#: it equals the installed library's metadata and that :func:`format_phone` agrees with
#: ``phonenumbers.format_number`` (tests/domain/test_domain_phone.py).
_GB_NATIONAL_FORMATS: tuple[tuple[str, str, str], ...] = (
    ("8001111", r"(\d{3})(\d{4})", r"0\1 \2"),
    ("845464", r"(\d{3})(\d{2})(\d{2})", r"0\1 \2 \3"),
    ("800", r"(\d{3})(\d{6})", r"0\1 \2"),
    ("1(?:3873|5(?:242|39[4-6])|(?:697|768)[347]|9467)", r"(\d{5})(\d{4,5})", r"0\1 \2"),
    ("1(?:[2-69][02-9]|[78])", r"(\d{4})(\d{5,6})", r"0\1 \2"),
    ("[25]|7(?:0|6(?:[03-9]|2[356]))", r"(\d{2})(\d{4})(\d{4})", r"0\1 \2 \3"),
    ("7", r"(\d{4})(\d{6})", r"0\1 \2"),
    ("[1389]", r"(\d{3})(\d{3})(\d{4})", r"0\1 \2 \3"),
)
_GB_E164 = re.compile(r"\+44([1-9][0-9]{6,9})")


@functools.cache
def _gb_national_formats() -> tuple[tuple[re.Pattern[str], re.Pattern[str], str], ...]:
    return tuple((re.compile(lead), re.compile(pattern), rule) for lead, pattern, rule in _GB_NATIONAL_FORMATS)


def _format_gb_national(e164: str) -> str | None:
    """libphonenumber's NATIONAL format of a +44 number, or None if not a +44 number."""
    match = _GB_E164.fullmatch(e164)
    if match is None:
        return None
    nsn = match[1]
    # libphonenumber's choice: the first format whose leading digits match the start of
    # the number and whose pattern matches all of it; none matching leaves it as is.
    for lead, pattern, rule in _gb_national_formats():
        if lead.match(nsn) and pattern.fullmatch(nsn):
            return pattern.sub(rule, nsn)
    return nsn


def format_phone(e164: str) -> str:
    """A stored E.164 number in the form a tracer dials: national for +44 numbers
    (``07700 900123``), international for the rest (``+33 1 23 45 67 89``).

    The same text as ``phonenumbers.format_number`` gives. Raises ``ValueError`` for text
    that is not a phone number.
    """
    national = _format_gb_national(e164)
    if national is not None:
        return national
    import phonenumbers

    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException as error:
        raise ValueError(str(error)) from None
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if parsed.country_code == 44
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, style)


# -------------------------------------------------------------------------------- email

_EMAIL_EXPECTED = "an email address such as jo.bloggs@example.com"
# RFC 5322 dot-atom local part (no quoted strings or comments) and an RFC 1035 host name
# of at least two labels whose last label is alphabetic or an IDNA "xn--" label.
_EMAIL = re.compile(
    r"""
    (?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)
    @
    (?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+
               (?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59}))
    """,
    re.VERBOSE | re.ASCII,
)
_EMAIL_MAX_LENGTH = 254  # RFC 5321 path limit less the angle brackets
_EMAIL_LOCAL_MAX_LENGTH = 64  # RFC 5321


def validate_email(text: str) -> str:
    """Check the syntax of an email address and return it with its domain in lower case.

    The local part keeps its case (RFC 5321 leaves its meaning to the receiving host).
    Accepted: an RFC 5322 dot-atom local part of up to 64 characters and a domain name
    of two or more labels, 254 characters in all. Not accepted: quoted local parts,
    comments, IP-address literals and non-ASCII addresses. No DNS look-up is made.
    """
    address = text.strip()
    match = _EMAIL.fullmatch(address) if len(address) <= _EMAIL_MAX_LENGTH else None
    if match is None or len(match["local"]) > _EMAIL_LOCAL_MAX_LENGTH:
        raise ValidationError("email", "is not a valid email address", expected=_EMAIL_EXPECTED)
    return f"{match['local']}@{match['domain'].lower()}"


# ----------------------------------------------------------------------------- postcode

_POSTCODE_EXPECTED = "a UK postcode such as SW1A 1AA"
# The UK Government Data Standards Catalogue postcode pattern (BS 7666): an outward code
# of the forms A9, A99, AA9, AA99, A9A or AA9A with the letters each position allows,
# and an inward code 9AA whose letters exclude C, I, K, M, O and V; plus GIR 0AA.
_OUTWARD = (
    r"[A-PR-UWYZ][0-9][0-9]?"
    r"|[A-PR-UWYZ][A-HK-Y][0-9][0-9]?"
    r"|[A-PR-UWYZ][0-9][A-HJKPSTUW]"
    r"|[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY]"
)
_POSTCODE = re.compile(rf"(?:{_OUTWARD})[0-9][ABD-HJLNP-UW-Z]{{2}}|GIR0AA", re.ASCII)


def normalise_postcode(text: str) -> str:
    """Return a UK postcode in upper case with one space before the inward code.

    ``"sw1a1aa"`` and ``" SW1A  1AA "`` both give ``"SW1A 1AA"``. The inward code is
    always the last three characters, so spaces anywhere in the input are ignored.
    The shape is checked against the official format (see ``_POSTCODE``); whether the
    postcode exists is not checked.
    """
    compact = "".join(text.split()).upper()
    if not _POSTCODE.fullmatch(compact):
        raise ValidationError("postcode", "is not a valid UK postcode", expected=_POSTCODE_EXPECTED)
    return f"{compact[:-3]} {compact[-3:]}"


# --------------------------------------------------------------------------------- date

_DATE_EXPECTED = (
    "a date as YYYY-MM-DD, DD/MM/YYYY, DD-MM-YYYY, DD.MM.YYYY, "
    "or with the month in words such as 3 April 2020 or 3 Apr 2020"
)
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_ISO_DATE = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})")
_DAY_FIRST_DATE = re.compile(r"(?P<day>[0-9]{1,2})(?P<sep>[/.-])(?P<month>[0-9]{1,2})(?P=sep)(?P<year>[0-9]{4})")
_TWO_DIGIT_YEAR = re.compile(r"[0-9]{1,2}([/.-])[0-9]{1,2}\1[0-9]{2}")
_COMPACT_DATE = re.compile(r"[0-9]{8}")
_WORDS_DATE = re.compile(r"(?P<day>[0-9]{1,2}) +(?P<month>[A-Za-z]+) +(?P<year>[0-9]{4})")


def _build_date(field: str, year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise ValidationError(field, "is not a real date", expected=_DATE_EXPECTED) from None


def _parse_date_form(text: str, field: str) -> date:
    """Read one of the accepted forms, refusing every form that would need a guess."""
    if match := _ISO_DATE.fullmatch(text):
        return _build_date(field, int(match["year"]), int(match["month"]), int(match["day"]))
    if match := _DAY_FIRST_DATE.fullmatch(text):
        day, month = int(match["day"]), int(match["month"])
        if month > 12 and 1 <= day <= 12:
            raise ValidationError(
                field,
                "looks like a month-first (US) date; dates are read day first",
                expected=_DATE_EXPECTED,
            )
        return _build_date(field, int(match["year"]), month, day)
    if match := _WORDS_DATE.fullmatch(text):
        month_number = _MONTHS.get(match["month"].lower())
        if month_number is None:
            raise ValidationError(field, "has a month name that is not recognised", expected=_DATE_EXPECTED)
        return _build_date(field, int(match["year"]), month_number, int(match["day"]))
    if _TWO_DIGIT_YEAR.fullmatch(text):
        raise ValidationError(
            field,
            "has a two-digit year, which is ambiguous; write the year in full",
            expected=_DATE_EXPECTED,
        )
    if _COMPACT_DATE.fullmatch(text):
        raise ValidationError(
            field,
            "is 8 digits without separators, which could be read more than one way",
            expected=_DATE_EXPECTED,
        )
    raise ValidationError(field, "is not a date in an accepted form", expected=_DATE_EXPECTED)


def parse_date(text: str, field: str, *, allow_future: bool = True, today: date | None = None) -> date:
    """Read a date written the ISO way or day first, the way people in England write it.

    Accepted: ``2020-04-03``; ``03/04/2020``, ``3/4/2020``, ``03-04-2020``,
    ``03.04.2020`` (day, month, year, the same separator twice); ``3 April 2020`` and
    ``3 Apr 2020`` (any case; ``Sept`` too). Anything that would need a guess is an
    error, not a guess: a two-digit year, eight digits with no separators, and a
    day-first form whose month is over 12 while its day could be a month (such as
    ``04/13/2020``, which only makes sense month first).

    With ``allow_future=False`` a date after ``today`` (default: the local date now) is
    an error; use it for a date of birth or the onset of symptoms. Errors name ``field``.
    """
    result = _parse_date_form(text.strip(), field)
    if not allow_future:
        reference = today if today is not None else date.today()
        if result > reference:
            raise ValidationError(field, "is in the future", expected=f"a date on or before {reference.isoformat()}")
    return result


# -------------------------------------------------------------------------------- names

NAME_MAX_LENGTH = 200
_NAME_EXPECTED = f"a name of 1 to {NAME_MAX_LENGTH} characters without control characters"
#: Line breaks and tabs are collapsed like spaces; every other control character
#: (category Cc), and any lone surrogate, is refused.
_WHITESPACE_CONTROLS = frozenset("\t\n\r")
#: Bidirectional embedding, override and isolate controls can make a name display in a
#: different order from the one stored, so a list could show one person as another.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_APOSTROPHES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'"})


def normalise_name(text: str, *, field: str = "name") -> str:
    """Return a person's name tidied for storage.

    Leading and trailing whitespace is removed, runs of whitespace (including tabs and
    line breaks) become one space, and the text is put in Unicode NFC form so the same
    name typed two ways is stored one way. Refused: an empty name, control characters
    other than tab and line breaks, bidirectional override characters, and a name
    longer than 200 characters after tidying. Errors name ``field``.
    """
    for char in text:
        category = unicodedata.category(char)
        if (category == "Cc" and char not in _WHITESPACE_CONTROLS) or category == "Cs" or char in _BIDI_CONTROLS:
            raise ValidationError(field, "contains a control character", expected=_NAME_EXPECTED)
    name = unicodedata.normalize("NFC", " ".join(text.split()))
    if not name:
        raise ValidationError(field, "is empty", expected=_NAME_EXPECTED)
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(field, f"is longer than {NAME_MAX_LENGTH} characters", expected=_NAME_EXPECTED)
    return name


def name_key(text: str) -> str:
    """The form of a name used to match duplicates and to search.

    The name is tidied and checked as by :func:`normalise_name`, case-folded, reduced by
    Unicode compatibility decomposition with its combining marks and invisible format
    characters (such as zero-width spaces and joiners) removed, so "Zoë", "ZOE" and
    "zoe" share a key and "ﬁ" becomes "fi"; typographic apostrophes become "'" (so
    "O’Neill" matches "O'Neill"). Letters that are not a base letter plus accents, such
    as "ø" or "ł", are kept as they are.
    """
    folded = unicodedata.normalize("NFKD", normalise_name(text).casefold())
    stripped = "".join(
        char for char in folded if not unicodedata.combining(char) and unicodedata.category(char) != "Cf"
    )
    # Decomposition can leave spaces behind (a spacing diaeresis becomes space + mark).
    return " ".join(unicodedata.normalize("NFC", stripped).translate(_APOSTROPHES).split())
