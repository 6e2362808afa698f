"""Phone numbers: E.164 output, the UK fast path, and its agreement with libphonenumber.

Test numbers are Ofcom's drama ranges (07700 900xxx, 0113 496 0xxx, 020 7946 0xxx,
01632 960xxx) or random digits that are only compared with libphonenumber's answer.
"""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekit.domain import identifiers
from tracekit.domain.identifiers import DRAMA_PHONE_RANGES, normalise_phone
from tracekit.errors import ValidationError

EXPECTED = "a UK phone number such as 07700 900123 or an international number starting with +"


def reference(text: str, region: str = "GB") -> str | None:
    """libphonenumber's answer with no fast path: E.164, or None when refused."""
    try:
        return identifiers._library_normalise_phone(text, region)
    except ValidationError:
        return None


def outcome(text: str, region: str = "GB") -> str | None:
    try:
        return normalise_phone(text, region)
    except ValidationError:
        return None


@pytest.fixture
def no_library_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any use of libphonenumber's parser fail the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("libphonenumber was called")

    monkeypatch.setattr(phonenumbers, "parse", refuse)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("07700 900123", "+447700900123"),
        ("07700900123", "+447700900123"),
        ("07700-900-123", "+447700900123"),
        ("(07700) 900123", "+447700900123"),
        ("07700 900 123", "+447700900123"),
        ("07700.900.123", "+447700900123"),
        ("+44 7700 900123", "+447700900123"),
        ("+447700900123", "+447700900123"),
        ("+44 (0)7700 900123", "+447700900123"),
        ("(+44) 7700 900123", "+447700900123"),
        ("0044 7700 900123", "+447700900123"),
        ("0044 (0)7700 900123", "+447700900123"),
        ("  07700 900000 ", "+447700900000"),
        ("07700 900999", "+447700900999"),
        ("0113 496 0000", "+441134960000"),
        ("0113 496 0999", "+441134960999"),
        ("020 7946 0000", "+442079460000"),
        ("020 7946 0999", "+442079460999"),
        ("0207 946 0500", "+442079460500"),
        ("+44 20 7946 0123", "+442079460123"),
        ("01632 960123", "+441632960123"),
        ("03069 990000", "+443069990000"),
    ],
)
def test_common_uk_forms_take_the_fast_path(text: str, expected: str, no_library_parse: None) -> None:
    assert normalise_phone(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+1 202 555 0123", "+12025550123"),  # US fictional 555-01xx
        ("+33 1 23 45 67 89", "+33123456789"),
        ("0808 157 0000", "+448081570000"),  # Ofcom drama freephone, not a fast-path form
        ("447700900123", "+447700900123"),  # country code without the +
        ("\uff10\uff17\uff17\uff10\uff10 900123", "+447700900123"),  # full-width digits
    ],
)
def test_other_valid_numbers_go_through_libphonenumber(text: str, expected: str) -> None:
    assert identifiers._fast_path_phone(text, "GB") is None
    assert normalise_phone(text) == expected


def test_crown_dependency_numbers_are_left_to_libphonenumber() -> None:
    example = phonenumbers.example_number_for_type("GG", phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None
    guernsey = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    assert identifiers._fast_path_phone(guernsey, "GB") is None
    assert normalise_phone(guernsey) == reference(guernsey)
    assert normalise_phone(guernsey).startswith("+447")


def test_national_numbers_depend_on_the_region() -> None:
    assert normalise_phone("+44 7700 900123", region="FR") == "+447700900123"
    assert normalise_phone("01 23 45 67 89", region="FR") == "+33123456789"
    with pytest.raises(ValidationError):  # 00 is not the international prefix in the US
        normalise_phone("0044 7700 900123", region="US")


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        normalise_phone("07700 900123", region="XX")
    assert caught.value.field == "region"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("07700 9OO123", "contains letters"),  # would be read as keypad 6s
        ("0800 FLOWERS", "contains letters"),
        ("07700 900123 ext 4", "contains letters"),
        ("07700 900123#4", "contains characters that are not part of a phone number"),
        ("07700_900123", "contains characters that are not part of a phone number"),
        ("", "is not a phone number"),
        ("+", "is not a phone number"),
        ("07700 90012", "is not a valid phone number"),
        ("07700 9001234", "is not a valid phone number"),
        ("07700 901123", "is not a valid phone number"),  # beside the drama range, unallocated
        ("01632 961000", "is not a valid phone number"),
        ("12345", "is not a valid phone number"),
        ("+44 7700 90012", "is not a valid phone number"),
        ("+999 1234 5678", "is not a phone number"),
    ],
)
def test_invalid_numbers_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalise_phone(text)
    error = caught.value
    assert error.field == "phone"
    assert error.problem == problem
    assert error.expected == EXPECTED
    assert str(error) == f"phone: {problem} (expected {EXPECTED})"  # the number is not echoed


def test_drama_ranges_are_accepted_even_where_libphonenumber_calls_them_invalid() -> None:
    assert not phonenumbers.is_valid_number(phonenumbers.parse("07700 900123", "GB"))
    assert DRAMA_PHONE_RANGES == ("+447700900", "+441134960", "+442079460", "+441632960")


@pytest.mark.parametrize("prefix", DRAMA_PHONE_RANGES)
def test_every_drama_number_takes_the_fast_path_and_matches_the_library(prefix: str) -> None:
    national = "0" + prefix[3:]
    for last in range(1000):
        text = f"{national}{last:03d}"
        fast = identifiers._fast_path_phone(text, "GB")
        assert fast == prefix + f"{last:03d}"
        assert reference(text) == fast


def test_overlong_input_is_left_to_the_library() -> None:
    text = "0" + " " * 300 + "7700 900123"
    assert identifiers._fast_path_phone(text, "GB") is None
    assert outcome(text) == reference(text)


# ------------------------------------------------------------------ property: agreement

_SEPARATORS = st.sampled_from(["", "", "", " ", " ", "-", ".", "(", ")", " - ", ") "])
_PREFIXES = st.sampled_from(
    ["0", "0", "+44", "+44 ", "+44 (0)", "+440", "0044 ", "00440", "(+44) ", "+(44)", "44", "+4"]
)


def _digits(count: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=count, max_size=count)


_NATIONAL_SIGNIFICANT = st.one_of(
    _digits(3).map(lambda d: "7700900" + d),  # drama mobile
    _digits(3).map(lambda d: "1134960" + d),  # drama Leeds
    _digits(3).map(lambda d: "2079460" + d),  # drama London
    _digits(3).map(lambda d: "1632960" + d),  # drama, no area
    _digits(9).map(lambda d: "7" + d),  # any mobile-like number
    _digits(8).map(lambda d: "1" + d),  # geographic, 9-digit national number
    _digits(9).map(lambda d: "1" + d),
    _digits(9).map(lambda d: "2" + d),
    _digits(9).map(lambda d: "3" + d),
    st.text("0123456789", min_size=7, max_size=12),  # anything, including wrong lengths
)


@st.composite
def uk_phone_texts(draw: st.DrawFn) -> str:
    """A UK-style number written with a random prefix and random separators."""
    digits = draw(_PREFIXES) + draw(_NATIONAL_SIGNIFICANT)
    pieces = [draw(_SEPARATORS)]
    for digit in digits:
        pieces.append(digit)
        pieces.append(draw(_SEPARATORS))
    return "".join(pieces)


@settings(max_examples=600, deadline=None)
@given(text=uk_phone_texts())
def test_fast_path_agrees_with_libphonenumber(text: str) -> None:
    assert outcome(text) == reference(text)
    fast = identifiers._fast_path_phone(text, "GB")
    if fast is not None:
        assert fast == reference(text)


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet="0123456789 +-().7", max_size=20),
    region=st.sampled_from(["GB", "US", "FR"]),
)
def test_fast_path_agrees_on_arbitrary_short_text(text: str, region: str) -> None:
    assert outcome(text, region) == reference(text, region)


@settings(max_examples=200, deadline=None)
@given(
    national=st.sampled_from(["07700 900", "0113 496 0", "020 7946 0"]),
    last=_digits(3),
    separator=st.sampled_from([" ", "-", "", "."]),
)
def test_drama_numbers_in_any_layout_take_the_fast_path(national: str, last: str, separator: str) -> None:
    text = national.replace(" ", separator) + separator + last
    fast = identifiers._fast_path_phone(text, "GB")
    assert fast is not None
    assert fast == reference(text)


# -- showing a stored number -------------------------------------------------------------
def library_display(e164: str) -> str:
    """libphonenumber's display form, as tracekit showed numbers before format_phone."""
    parsed = phonenumbers.parse(e164, None)
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if parsed.country_code == 44
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, style)


def test_gb_format_table_is_the_installed_librarys() -> None:
    """The copied table must follow phonenumbers when it is updated (pip-upgraded)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("GB")
    expected = tuple(
        (
            f.leading_digits_pattern[-1],
            f.pattern,
            f.format.replace("\\1", f.national_prefix_formatting_rule or "\\1", 1),
        )
        for f in metadata.number_format
    )
    assert expected == identifiers._GB_NATIONAL_FORMATS


@pytest.mark.parametrize(
    ("e164", "shown"),
    [
        ("+447700900123", "07700 900123"),
        ("+442079460123", "020 7946 0123"),
        ("+441134960123", "0113 496 0123"),
        ("+441632960123", "01632 960123"),
        ("+448001111", "0800 1111"),
        ("+441534123456", "01534 123456"),  # Jersey: +44, formatted as GB numbers are
        ("+33123456789", "+33 1 23 45 67 89"),
        ("+12025550143", "+1 202-555-0143"),
    ],
)
def test_format_phone_examples(e164: str, shown: str) -> None:
    assert identifiers.format_phone(e164) == shown == library_display(e164)


def test_format_phone_refuses_text_that_is_not_a_number() -> None:
    with pytest.raises(ValueError):
        identifiers.format_phone("not a number")


@settings(max_examples=1500, deadline=None)
@given(nsn=st.from_regex(r"[1-9][0-9]{6,9}", fullmatch=True))
def test_format_phone_agrees_with_libphonenumber_for_every_uk_shape(nsn: str) -> None:
    e164 = "+44" + nsn
    assert identifiers._format_gb_national(e164) == library_display(e164)


def _library_examples() -> list[str]:
    """libphonenumber's example number of every type it has for the +44 regions."""
    examples = []
    for region in ("GB", "GG", "JE", "IM"):
        for kind in phonenumbers.PhoneNumberType.values():
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                examples.append(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164))
    return sorted(set(examples))


LIBRARY_EXAMPLES = _library_examples()


def test_there_are_library_examples_for_every_plus_44_region() -> None:
    assert len(LIBRARY_EXAMPLES) >= 15  # 19 in phonenumbers 9.0


@pytest.mark.parametrize("e164", LIBRARY_EXAMPLES)
def test_format_phone_agrees_on_the_librarys_examples(e164: str) -> None:
    assert identifiers.format_phone(e164) == library_display(e164)
