"""NHS numbers, email addresses, postcodes, dates and names (phones: test_domain_phone.py).

All data is made up: NHS numbers from 999 000 0000 upwards are never issued, email
domains are the reserved example.* names.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracekit.domain.identifiers import (
    NAME_MAX_LENGTH,
    format_nhs_number,
    is_valid_nhs_number,
    name_key,
    normalise_name,
    normalise_nhs_number,
    normalise_postcode,
    parse_date,
    validate_email,
)
from tracekit.errors import ExitCode, ValidationError

# Check digits worked by hand: 9,9,9,0,0,0,0,0,1 x 10..2 = 245; 245 mod 11 = 3; 11-3 = 8.
VALID_NHS = ["9990000018", "9990000026", "9990000069", "9990000107"]
# 9,9,9,0,0,0,0,0,5 x 10..2 = 253, remainder 0: 11 - 0 = 11, which means check digit 0.
NHS_CHECK_ELEVEN = "9990000050"
# 9,9,9,0,0,0,0,0,0 x 10..2 = 243, remainder 1: 11 - 1 = 10, so no check digit works.
NHS_PREFIX_CHECK_TEN = "999000000"


# ------------------------------------------------------------------------- NHS number


@pytest.mark.parametrize("number", [*VALID_NHS, NHS_CHECK_ELEVEN])
def test_valid_nhs_numbers_are_returned_as_ten_digits(number: str) -> None:
    assert normalise_nhs_number(number) == number
    assert is_valid_nhs_number(number)


@pytest.mark.parametrize(
    "text",
    ["999 000 0018", "999-000-0018", " 9990000018 ", "999 - 000 - 0018", "99900-00018"],
)
def test_nhs_number_ignores_spaces_and_dashes(text: str) -> None:
    assert normalise_nhs_number(text) == "9990000018"


def test_check_digit_eleven_means_zero() -> None:
    assert normalise_nhs_number(NHS_CHECK_ELEVEN[:9] + "0") == NHS_CHECK_ELEVEN
    assert not is_valid_nhs_number(NHS_CHECK_ELEVEN[:9] + "1")


@pytest.mark.parametrize("last", "0123456789")
def test_check_digit_ten_means_no_valid_number(last: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalise_nhs_number(NHS_PREFIX_CHECK_TEN + last)
    assert "no check digit is possible" in caught.value.problem


def test_wrong_check_digit_is_refused_without_echoing_the_number() -> None:
    with pytest.raises(ValidationError) as caught:
        normalise_nhs_number("999 000 0019")
    error = caught.value
    assert error.field == "nhs_number"
    assert error.expected == "10 digits with a valid check digit"
    assert "check digit does not match" in error.problem
    assert error.exit_code == ExitCode.VALIDATION
    assert "0019" not in str(error) and "999" not in str(error)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "999000001",  # 9 digits
        "99900000188",  # 11 digits
        "999.000.0018",  # dots are not accepted separators
        "999/000/0018",
        "999 000 001B",
        "\u0669\u0669\u0669\u0660\u0660\u0660\u0660\u0660\u0661\u0668",  # Arabic-Indic digits
        "９９９００００018",  # full-width digits
        "+999 000 0018",
    ],
)
def test_malformed_nhs_numbers_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalise_nhs_number(text)
    assert caught.value.field == "nhs_number"
    assert "10 digits" in caught.value.problem
    assert not is_valid_nhs_number(text)


@given(
    nine=st.integers(min_value=0, max_value=999_999),
    position=st.integers(0, 9),
    delta=st.integers(1, 9),
)
def test_every_single_digit_error_is_caught(nine: int, position: int, delta: int) -> None:
    """Modulus 11 with distinct weights detects any one mistyped digit."""
    prefix = f"999{nine:06d}"
    valid = next((prefix + last for last in "0123456789" if is_valid_nhs_number(prefix + last)), None)
    if valid is None:  # this prefix has no valid number (check digit 10)
        return
    wrong = valid[:position] + str((int(valid[position]) + delta) % 10) + valid[position + 1 :]
    assert not is_valid_nhs_number(wrong)


@given(nine=st.integers(min_value=0, max_value=999_999), position=st.integers(0, 8))
def test_every_swap_of_adjacent_different_digits_is_caught(nine: int, position: int) -> None:
    prefix = f"999{nine:06d}"
    valid = next((prefix + last for last in "0123456789" if is_valid_nhs_number(prefix + last)), None)
    if valid is None or valid[position] == valid[position + 1]:
        return
    swapped = valid[:position] + valid[position + 1] + valid[position] + valid[position + 2 :]
    assert not is_valid_nhs_number(swapped)


def test_exactly_one_check_digit_or_none_fits_each_prefix() -> None:
    counts = {sum(is_valid_nhs_number(f"999{n:06d}{last}") for last in "0123456789") for n in range(2000)}
    assert counts == {0, 1}


@pytest.mark.parametrize("text", ["9990000018", "999-000-0018", "999 000 0018"])
def test_format_nhs_number_groups_three_three_four(text: str) -> None:
    assert format_nhs_number(text) == "999 000 0018"


def test_format_nhs_number_refuses_an_invalid_number() -> None:
    with pytest.raises(ValidationError):
        format_nhs_number("9990000019")


# ------------------------------------------------------------------------------ email


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("jo.bloggs@example.com", "jo.bloggs@example.com"),
        ("Jo.Bloggs@EXAMPLE.COM", "Jo.Bloggs@example.com"),
        ("  jo@example.org\n", "jo@example.org"),
        ("jo+tracing@mail.example.co.uk", "jo+tracing@mail.example.co.uk"),
        ("o'neill@example.net", "o'neill@example.net"),
        ("a_b-c!#$%&*/=?^`{|}~@example.com", "a_b-c!#$%&*/=?^`{|}~@example.com"),
        ("jo@sub-domain.Example.COM", "jo@sub-domain.example.com"),
        ("jo@example.xn--p1ai", "jo@example.xn--p1ai"),
        ("1@2.example", "1@2.example"),
    ],
)
def test_valid_emails_keep_the_local_part_and_lower_the_domain(text: str, expected: str) -> None:
    assert validate_email(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "jo",
        "jo@",
        "@example.com",
        "jo@example",  # a single label
        "jo..bloggs@example.com",
        ".jo@example.com",
        "jo.@example.com",
        "jo@-example.com",
        "jo@example-.com",
        "jo@example..com",
        "jo@example.c",
        "jo@example.123",
        "jo bloggs@example.com",
        "jo@exam ple.com",
        '"jo"@example.com',
        "jo@[192.0.2.1]",
        "jö@example.com",
        "jo@exämple.com",
        "jo@@example.com",
        "jo@example.com@example.com",
        "jo@example.com\nBcc: x@example.com",
        "j" * 65 + "@example.com",
        "jo@" + "a" * 64 + ".example.com",
        "jo@" + ".".join(["a" * 60] * 5) + ".com",  # over 254 characters
    ],
)
def test_invalid_emails_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_email(text)
    assert caught.value.field == "email"
    assert caught.value.expected and "example.com" in caught.value.expected


def test_email_limits_are_inclusive() -> None:
    local = "j" * 64
    assert validate_email(f"{local}@example.com") == f"{local}@example.com"
    label = "a" * 63
    assert validate_email(f"jo@{label}.example.com") == f"jo@{label}.example.com"
    domain = "a" * 63 + "." + "b" * 63 + "." + "c" * 57 + ".com"
    longest = f"{local}@{domain}"
    assert len(longest) == 254
    assert validate_email(longest) == longest
    with pytest.raises(ValidationError):
        validate_email(f"{local}@{domain.replace('c', 'cc', 1)}")  # 255 characters


def test_email_error_does_not_echo_the_address() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_email("sam.smith@example")
    assert "smith" not in str(caught.value)


# --------------------------------------------------------------------------- postcode


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SW1A 1AA", "SW1A 1AA"),
        ("sw1a1aa", "SW1A 1AA"),
        ("  sw1a   1aa ", "SW1A 1AA"),
        ("S W 1 A 1 A A", "SW1A 1AA"),
        ("M1 1AE", "M1 1AE"),  # A9
        ("B33 8TH", "B33 8TH"),  # A99
        ("CR2 6XH", "CR2 6XH"),  # AA9
        ("DN55 1PT", "DN55 1PT"),  # AA99
        ("W1A 0AX", "W1A 0AX"),  # A9A
        ("EC1A 1BB", "EC1A 1BB"),  # AA9A
        ("E1W 1AA", "E1W 1AA"),
        ("NW1W 8JN", "NW1W 8JN"),
        ("GIR 0AA", "GIR 0AA"),
        ("gir0aa", "GIR 0AA"),
        ("ec1a\t1bb", "EC1A 1BB"),
    ],
)
def test_postcodes_are_upper_case_with_one_space(text: str, expected: str) -> None:
    assert normalise_postcode(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SW1A",
        "1AA",
        "SW1A 1AAA",
        "SW1A-1AA",
        "QA1 1AA",  # Q, V and X never start a postcode
        "VA1 1AA",
        "XA1 1AA",
        "AI1 1AA",  # I, J and Z are never second
        "AJ1 1AA",
        "AZ1 1AA",
        "A1I 1AA",  # the letter of A9A is one of ABCDEFGHJKPSTUW
        "A1Q 1AA",
        "AA1C 1AA",  # the letter of AA9A is one of ABEHMNPRVWXY
        "AA1I 1AA",
        "SW1A 1CA",  # inward letters never C, I, K, M, O or V
        "SW1A 1AI",
        "SW1A 1KA",
        "SW1A 1MA",
        "SW1A 1OA",
        "SW1A 1VA",
        "SW1A AAA",
        "1W1A 1AA",
        "SWA1 1AA",
        "SW123 1AA",
        "GIR 0AB",
        "SW1A 1A",
        "ＳＷ1Ａ 1ＡＡ",  # full-width letters
    ],
)
def test_malformed_postcodes_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalise_postcode(text)
    assert caught.value.field == "postcode"
    assert caught.value.expected == "a UK postcode such as SW1A 1AA"


# ------------------------------------------------------------------------------- date


@pytest.mark.parametrize(
    "text",
    [
        "2020-04-03",
        "03/04/2020",
        "3/4/2020",
        "03-04-2020",
        "3-4-2020",
        "03.04.2020",
        "3.4.2020",
        "3 April 2020",
        "3 Apr 2020",
        "03 april 2020",
        "3 APRIL 2020",
        "3  Apr  2020",
        " 3 Apr 2020 ",
    ],
)
def test_accepted_date_forms(text: str) -> None:
    assert parse_date(text, "date_of_birth") == date(2020, 4, 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13/04/2020", date(2020, 4, 13)),  # day over 12 is unambiguous day-first
        ("31.12.2020", date(2020, 12, 31)),
        ("29/02/2020", date(2020, 2, 29)),
        ("1 Sept 2020", date(2020, 9, 1)),
        ("1 Sep 2020", date(2020, 9, 1)),
        ("28 May 2020", date(2020, 5, 28)),
        ("14 December 2020", date(2020, 12, 14)),
        ("12/11/2020", date(2020, 11, 12)),  # read day first, never month first
    ],
)
def test_dates_are_read_day_first(text: str, expected: date) -> None:
    assert parse_date(text, "onset") == expected


def test_month_first_date_is_an_error_that_says_so() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_date("04/13/2020", "onset")
    error = caught.value
    assert error.field == "onset"
    assert "month-first" in error.problem
    assert error.expected is not None
    for form in ("YYYY-MM-DD", "DD/MM/YYYY", "DD-MM-YYYY", "DD.MM.YYYY", "3 April 2020"):
        assert form in error.expected
    assert "04/13/2020" not in str(error)


@pytest.mark.parametrize("text", ["03/04/20", "3/4/20", "03-04-20", "03.04.20"])
def test_two_digit_years_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_date(text, "test_date")
    assert "two-digit year" in caught.value.problem
    assert caught.value.field == "test_date"


@pytest.mark.parametrize("text", ["03042020", "20200403"])
def test_compact_eight_digit_dates_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_date(text, "test_date")
    assert "8 digits" in caught.value.problem


@pytest.mark.parametrize(
    "text",
    [
        "31/02/2020",
        "29/02/2021",
        "00/01/2020",
        "32/01/2020",
        "13/13/2020",
        "2020-02-30",
        "31 Apr 2020",
    ],
)
def test_impossible_dates_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_date(text, "onset")
    assert caught.value.problem == "is not a real date"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2020-4-3",  # ISO needs two-digit month and day
        "2020/04/03",
        "3/4-2020",  # mixed separators
        "3 Foo 2020",
        "April 3 2020",
        "April 3, 2020",
        "3rd April 2020",
        "2020-04-03T10:00",
        "\u0663/\u0664/\u0662\u0660\u0662\u0660",  # Arabic-Indic digits
        "3/4/20201",
    ],
)
def test_other_forms_are_refused_naming_the_field_and_forms(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_date(text, "exposure_date")
    error = caught.value
    assert error.field == "exposure_date"
    assert error.expected is not None and "DD/MM/YYYY" in error.expected
    assert str(error).startswith("exposure_date: ")


def test_future_dates_can_be_refused() -> None:
    today = date(2020, 10, 1)
    assert parse_date("01/10/2020", "date_of_birth", allow_future=False, today=today) == today
    with pytest.raises(ValidationError) as caught:
        parse_date("02/10/2020", "date_of_birth", allow_future=False, today=today)
    assert caught.value.field == "date_of_birth"
    assert caught.value.problem == "is in the future"
    assert caught.value.expected == "a date on or before 2020-10-01"


def test_future_dates_are_allowed_by_default() -> None:
    assert parse_date("02/10/2020", "follow_up", today=date(2020, 10, 1)) == date(2020, 10, 2)


def test_future_check_defaults_to_the_real_today() -> None:
    with pytest.raises(ValidationError):
        parse_date("01/01/9999", "onset", allow_future=False)
    assert parse_date("01/01/2000", "onset", allow_future=False) == date(2000, 1, 1)


# ------------------------------------------------------------------------------ names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Jo Bloggs", "Jo Bloggs"),
        ("  Jo   Bloggs  ", "Jo Bloggs"),
        ("Jo\tBloggs\r\n", "Jo Bloggs"),
        ("Jo\u00a0Bloggs", "Jo Bloggs"),  # no-break space
        ("Zoe\u0308 O'Neill", "Zo\u00eb O'Neill"),  # decomposed diaeresis is composed (NFC)
        ("Jo\u200dBloggs", "Jo\u200dBloggs"),  # joiners are part of some scripts' spelling
    ],
)
def test_names_are_tidied(text: str, expected: str) -> None:
    assert normalise_name(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Jo\x00Bloggs",
        "Jo\x1b[31mBloggs",
        "Jo\x7f",
        "Jo\x85Bloggs",
        "Jo\x1fBloggs",
        "Jo\x0bBloggs",
        "Jo\u202eBloggs",
        "Jo\u2066Bloggs",
        "Jo\ud800",
    ],
)
def test_names_with_control_characters_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalise_name(text)
    assert caught.value.problem == "contains a control character"
    assert "Bloggs" not in str(caught.value)


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_empty_names_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalise_name(text)
    assert caught.value.problem == "is empty"
    assert caught.value.field == "name"


def test_name_length_limit_applies_after_tidying() -> None:
    assert NAME_MAX_LENGTH == 200
    assert normalise_name("a" * 200) == "a" * 200
    assert normalise_name("a" + " " * 500 + "b") == "a b"
    with pytest.raises(ValidationError) as caught:
        normalise_name("a" * 201)
    assert "200" in caught.value.problem


def test_name_errors_use_the_given_field() -> None:
    with pytest.raises(ValidationError) as caught:
        normalise_name("", field="family_name")
    assert caught.value.field == "family_name"


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Zoë Bloggs", "ZOE  BLOGGS"),
        ("Zoe\u0308", "zoe"),
        ("José Álvarez", "jose alvarez"),
        ("O’Neill", "o'neill"),
        ("O\u02bcNeill", "O'Neill"),
        ("Straße", "STRASSE"),
        ("ﬁona", "Fiona"),
        ("İpek", "ipek"),
        ("Jo\u200bBloggs", "JoBloggs"),
        ("Jo \u00a8 Bloggs", "Jo Bloggs"),  # a spacing diaeresis leaves no extra space
    ],
)
def test_name_keys_match_spellings_of_the_same_name(a: str, b: str) -> None:
    assert name_key(a) == name_key(b)


@pytest.mark.parametrize(("a", "b"), [("Jo Bloggs", "Jo Blogs"), ("Søren", "Soren"), ("Anne-Marie", "Anne Marie")])
def test_name_keys_keep_different_names_apart(a: str, b: str) -> None:
    assert name_key(a) != name_key(b)


def test_name_key_value() -> None:
    assert name_key("  Zoë   O’Neill ") == "zoe o'neill"


def test_name_key_validates_like_normalise_name() -> None:
    with pytest.raises(ValidationError):
        name_key("\x00")
