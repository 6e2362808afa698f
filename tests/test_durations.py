"""Tests of tracekit.durations.parse_duration."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracekit.durations import MAX_DURATION_SECONDS, parse_duration
from tracekit.errors import ExitCode, ValidationError

EXPECTED = "a duration such as 15m, 1h or 1h30m, at most 24h"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15m", 900),
        ("1h", 3600),
        ("90s", 90),
        ("1h30m", 5400),
        ("2h", 7200),
        ("1s", 1),
        ("24h", 86400),
        ("1440m", 86400),
        ("86400s", 86400),
        ("1h0m30s", 3630),
        ("1h30s", 3630),
        ("2m5s", 125),
        ("1h90m", 9000),
        ("015m", 900),
        (" 15m\n", 900),
        ("1H30M", 5400),
        # issue 14 item 8: units in words, with spaces, as tracers type them
        ("20 mins", 1200),
        ("20 minutes", 1200),
        ("1 min", 60),
        ("1 hour", 3600),
        ("2 hours", 7200),
        ("1 hr 30 mins", 5400),
        ("1h 30m", 5400),
        ("1 hour 30 minutes", 5400),
        ("45 secs", 45),
        ("10 seconds", 10),
    ],
)
def test_accepts_hours_minutes_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "15",  # a bare number is ambiguous (seconds? minutes?) and refused
        "0",
        "15x",
        "1d",
        "20 mins ago",
        "1 hours minutes",
        "minutes",
        "h",
        "m30s",
        "1.5h",
        "-1h",
        "+1h",
        "30m1h",  # units largest first
        "1h1h",
        "1e3s",
        "1234567s",  # more than six digits
        "１５m",  # fullwidth digits
        "٣m",  # Arabic-Indic digit
    ],
)
def test_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_duration(text)
    assert caught.value.field == "duration"
    assert caught.value.problem == "not a valid duration"
    assert caught.value.expected == EXPECTED


@pytest.mark.parametrize("text", ["0s", "0m", "0h", "0h0m0s", "000m"])
def test_refuses_zero(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_duration(text)
    assert caught.value.problem == "must be longer than zero"
    assert caught.value.expected == EXPECTED


@pytest.mark.parametrize("text", ["24h1s", "25h", "1441m", "86401s", "23h60m1s", "999999h"])
def test_refuses_more_than_24_hours(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_duration(text)
    assert caught.value.problem == "is longer than 24h"
    assert caught.value.expected == EXPECTED


def test_error_is_a_validation_error_that_does_not_echo_the_input() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_duration("1441m")
    error = caught.value
    assert error.exit_code == ExitCode.VALIDATION
    assert str(error) == f"duration: is longer than 24h (expected {EXPECTED})"
    assert "1441" not in str(error)


@given(
    hours=st.integers(min_value=0, max_value=24),
    minutes=st.integers(min_value=0, max_value=1440),
    seconds=st.integers(min_value=0, max_value=86400),
)
def test_any_combination_adds_up_or_is_refused(hours: int, minutes: int, seconds: int) -> None:
    total = hours * 3600 + minutes * 60 + seconds
    text = f"{hours}h{minutes}m{seconds}s"
    if 0 < total <= MAX_DURATION_SECONDS:
        assert parse_duration(text) == total
    else:
        with pytest.raises(ValidationError):
            parse_duration(text)
