"""The shipped England 2020 rule sets, dates of isolation and close-contact decisions."""

from __future__ import annotations

import dataclasses
import math
from datetime import date
from typing import Any

import pytest

from tracekit.domain.rules import (
    CLAUSE_PRIORITY,
    SETTINGS,
    Closeness,
    RuleSet,
    all_rulesets,
    case_isolation_end,
    classify_exposure,
    contact_isolation_end,
    get_ruleset,
    infectious_period,
    ruleset_for,
)
from tracekit.errors import ExitCode, NotFound, ValidationError

LAUNCH = "england-2020-05-28"
MID_2020 = "england-2020-07-30"
DECEMBER = "england-2020-12-14"


def rules(ruleset_id: str) -> RuleSet:
    return get_ruleset(ruleset_id)


def classify(
    ruleset_id: str,
    *,
    setting: str = "social",
    proximity_m: float | None = None,
    duration_min: float | None = None,
    face_to_face: bool = False,
    direct_contact: bool = False,
) -> Closeness:
    return classify_exposure(
        rules(ruleset_id),
        setting=setting,
        proximity_m=proximity_m,
        duration_min=duration_min,
        face_to_face=face_to_face,
        direct_contact=direct_contact,
    )


# ------------------------------------------------------------------------ the rule sets


def test_shipped_rule_sets_in_date_order() -> None:
    assert [(rs.id, rs.valid_from) for rs in all_rulesets()] == [
        (LAUNCH, date(2020, 5, 28)),
        (MID_2020, date(2020, 7, 30)),
        (DECEMBER, date(2020, 12, 14)),
    ]


@pytest.mark.parametrize(
    ("ruleset_id", "case_days", "contact_days"),
    [(LAUNCH, 7, 14), (MID_2020, 10, 14), (DECEMBER, 10, 10)],
)
def test_isolation_lengths(ruleset_id: str, case_days: int, contact_days: int) -> None:
    rs = rules(ruleset_id)
    assert (rs.case_isolation_days, rs.contact_isolation_days) == (case_days, contact_days)
    assert (rs.infectious_days_before, rs.infectious_days_after) == (2, 10)


def test_clauses_of_each_rule_set() -> None:
    assert [c.id for c in rules(LAUNCH).clauses] == [
        "direct-contact",
        "face-to-face-1m",
        "2m-15min",
    ]
    mid_2020 = [
        "household",
        "direct-contact",
        "face-to-face-1m",
        "1m-1min",
        "2m-15min",
        "shared-vehicle",
    ]
    assert [c.id for c in rules(MID_2020).clauses] == mid_2020
    assert rules(DECEMBER).clauses == rules(MID_2020).clauses


def test_every_rule_set_names_its_sources_and_says_what_it_is() -> None:
    for rs in all_rulesets():
        publishers = {source.publisher for source in rs.sources}
        assert "World Health Organization" in publishers
        assert any(source.id == "govuk-contacts" for source in rs.sources)
        assert rs.title and rs.description and not rs.description.startswith("\n")
        assert all(clause.text for clause in rs.clauses)
    who = next(s for s in rules(LAUNCH).sources if s.publisher == "World Health Organization")
    assert who.date == date(2020, 5, 10)
    cmo = next(s for s in rules(DECEMBER).sources if s.id == "cmo-2020-12-11")
    assert cmo.date == date(2020, 12, 11)
    assert cmo.url is not None and cmo.url.startswith("https://www.gov.uk/")


def test_rule_sets_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules(LAUNCH).case_isolation_days = 1  # type: ignore[misc]


def test_unknown_rule_set_lists_the_known_ones() -> None:
    with pytest.raises(NotFound) as caught:
        get_ruleset("england-2021-01-01")
    message = str(caught.value)
    assert "england-2021-01-01" in message
    for ruleset_id in (LAUNCH, MID_2020, DECEMBER):
        assert ruleset_id in message
    assert caught.value.exit_code == ExitCode.NOT_FOUND


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2020, 3, 1), LAUNCH),  # before the first rule set: the first one
        (date(2020, 5, 27), LAUNCH),
        (date(2020, 5, 28), LAUNCH),
        (date(2020, 7, 29), LAUNCH),
        (date(2020, 7, 30), MID_2020),
        (date(2020, 12, 13), MID_2020),
        (date(2020, 12, 14), DECEMBER),
        (date(2021, 6, 1), DECEMBER),
    ],
)
def test_rule_set_in_force_on_a_day(day: date, expected: str) -> None:
    assert ruleset_for(day).id == expected


def test_a_pinned_rule_set_wins_over_the_date() -> None:
    assert ruleset_for(date(2020, 12, 20), pinned=LAUNCH).id == LAUNCH
    with pytest.raises(NotFound):
        ruleset_for(date(2020, 12, 20), pinned="no-such-rules")


# ------------------------------------------------------------------------------- dates


def test_infectious_period_runs_from_two_days_before_onset_to_ten_after() -> None:
    rs = rules(MID_2020)
    assert infectious_period(date(2020, 10, 10), date(2020, 10, 12), rs) == (
        date(2020, 10, 8),
        date(2020, 10, 20),
    )


def test_infectious_period_of_an_asymptomatic_case_uses_the_test_date() -> None:
    rs = rules(DECEMBER)
    assert infectious_period(None, date(2020, 12, 30), rs) == (date(2020, 12, 28), date(2021, 1, 9))


@pytest.mark.parametrize(
    ("onset", "test_date", "expected"),
    [
        (date(2020, 7, 29), date(2020, 7, 30), date(2020, 8, 5)),  # launch: 7 days
        (date(2020, 7, 30), date(2020, 7, 31), date(2020, 8, 9)),  # from 30 July: 10 days
        (date(2020, 10, 1), date(2020, 10, 3), date(2020, 10, 11)),
        (None, date(2020, 10, 1), date(2020, 10, 11)),  # no symptoms: from the test date
        (date(2020, 10, 5), date(2020, 10, 1), date(2020, 10, 15)),  # symptoms after the test
    ],
)
def test_case_isolation_counts_from_the_day_after_onset_or_test(
    onset: date | None, test_date: date, expected: date
) -> None:
    rs = ruleset_for(onset or test_date)
    assert case_isolation_end(onset, test_date, rs) == expected


@pytest.mark.parametrize(
    ("exposure", "expected"),
    [
        (date(2020, 10, 1), date(2020, 10, 15)),  # 14 days: isolate until the end of 15 Oct
        (date(2020, 5, 28), date(2020, 6, 11)),
        (date(2020, 12, 13), date(2020, 12, 27)),  # last day of 14-day isolation
        (date(2020, 12, 14), date(2020, 12, 24)),  # first day of 10-day isolation
        (date(2020, 12, 28), date(2021, 1, 7)),  # across the new year
    ],
)
def test_contact_isolation_counts_from_the_day_after_exposure(exposure: date, expected: date) -> None:
    assert contact_isolation_end(exposure, ruleset_for(exposure)) == expected


def test_leap_day_is_counted() -> None:
    rs = rules(MID_2020)
    assert contact_isolation_end(date(2020, 2, 20), rs) == date(2020, 3, 5)


# ----------------------------------------------------------------------- close contact


def test_settings() -> None:
    assert SETTINGS == (
        "household",
        "workplace",
        "education",
        "healthcare",
        "social",
        "travel",
        "other",
    )
    assert CLAUSE_PRIORITY == (
        "household",
        "direct-contact",
        "face-to-face-1m",
        "1m-1min",
        "2m-15min",
        "shared-vehicle",
    )


@pytest.mark.parametrize("ruleset_id", [LAUNCH, MID_2020, DECEMBER])
@pytest.mark.parametrize(
    ("proximity_m", "duration_min", "is_close"),
    [
        (2.0, 15.0, False),  # exactly 15 minutes is not more than 15
        (2.0, 15.01, True),
        (2.0, 16, True),
        (2.01, 60, False),
        (1.5, 15, False),
        (1.5, 480, True),
    ],
)
def test_within_2m_for_more_than_15_minutes(
    ruleset_id: str, proximity_m: float, duration_min: float, is_close: bool
) -> None:
    result = classify(ruleset_id, proximity_m=proximity_m, duration_min=duration_min)
    assert result.is_close is is_close
    assert result.clause == ("2m-15min" if is_close else None)


@pytest.mark.parametrize(
    ("proximity_m", "duration_min", "is_close"),
    [
        (1.0, 1.0, True),  # 1 minute at 1 metre is close
        (1.0, 0.99, False),
        (1.01, 1.0, False),
        (0.3, 5, True),
        (0.0, 1, True),
    ],
)
def test_within_1m_for_1_minute_or_longer(proximity_m: float, duration_min: float, is_close: bool) -> None:
    for ruleset_id in (MID_2020, DECEMBER):
        result = classify(ruleset_id, proximity_m=proximity_m, duration_min=duration_min)
        assert result.is_close is is_close
        assert result.clause == ("1m-1min" if is_close else None)


def test_launch_rules_had_no_one_metre_one_minute_clause() -> None:
    assert not classify(LAUNCH, proximity_m=1.0, duration_min=10).is_close
    assert classify(MID_2020, proximity_m=1.0, duration_min=10).is_close


@pytest.mark.parametrize("ruleset_id", [LAUNCH, MID_2020, DECEMBER])
def test_face_to_face_within_1m_for_any_time(ruleset_id: str) -> None:
    assert classify(ruleset_id, proximity_m=1.0, duration_min=0, face_to_face=True).clause == "face-to-face-1m"
    assert classify(ruleset_id, proximity_m=0.5, duration_min=None, face_to_face=True).clause == "face-to-face-1m"
    assert not classify(ruleset_id, proximity_m=1.01, duration_min=0.5, face_to_face=True).is_close


@pytest.mark.parametrize("ruleset_id", [LAUNCH, MID_2020, DECEMBER])
def test_direct_physical_contact_for_any_time(ruleset_id: str) -> None:
    result = classify(ruleset_id, direct_contact=True)
    assert (result.is_close, result.clause) == (True, "direct-contact")


def test_household_members_are_close_from_mid_2020() -> None:
    assert classify(MID_2020, setting="household").clause == "household"
    assert classify(DECEMBER, setting="household").clause == "household"
    assert not classify(LAUNCH, setting="household", proximity_m=3, duration_min=600).is_close


def test_travel_in_the_same_vehicle_or_plane_is_close_from_mid_2020() -> None:
    assert classify(MID_2020, setting="travel").clause == "shared-vehicle"
    assert classify(DECEMBER, setting="travel", proximity_m=5, duration_min=5).clause == "shared-vehicle"
    assert not classify(LAUNCH, setting="travel", proximity_m=5, duration_min=5).is_close


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s not in ("household", "travel")])
def test_other_settings_are_close_only_by_distance_and_time(setting: str) -> None:
    assert not classify(MID_2020, setting=setting, proximity_m=3, duration_min=600).is_close
    assert classify(MID_2020, setting=setting, proximity_m=2, duration_min=16).is_close


@pytest.mark.parametrize(
    ("kwargs", "clause"),
    [
        (
            {
                "setting": "household",
                "proximity_m": 0.5,
                "duration_min": 60,
                "face_to_face": True,
                "direct_contact": True,
            },
            "household",
        ),
        (
            {"proximity_m": 0.5, "duration_min": 60, "face_to_face": True, "direct_contact": True},
            "direct-contact",
        ),
        ({"proximity_m": 0.5, "duration_min": 60, "face_to_face": True}, "face-to-face-1m"),
        ({"proximity_m": 0.5, "duration_min": 60}, "1m-1min"),
        ({"setting": "travel", "proximity_m": 1.5, "duration_min": 60}, "2m-15min"),
    ],
)
def test_the_first_matching_clause_in_priority_order_is_reported(kwargs: dict[str, Any], clause: str) -> None:
    assert classify(DECEMBER, **kwargs).clause == clause


def test_a_close_explanation_names_the_rule_set_and_clause() -> None:
    result = classify(MID_2020, proximity_m=1.5, duration_min=20)
    assert result.ruleset_id == MID_2020
    assert MID_2020 in result.explanation
    assert "2m-15min" in result.explanation
    assert "within 2 metres for more than 15 minutes" in result.explanation
    assert result.missing == ()


def test_a_not_close_explanation_names_the_rule_set() -> None:
    result = classify(LAUNCH, proximity_m=3, duration_min=30)
    assert (result.is_close, result.clause, result.missing) == (False, None, ())
    assert LAUNCH in result.explanation
    assert "Not a close contact" in result.explanation
    assert "could change" not in result.explanation


@pytest.mark.parametrize(
    ("ruleset_id", "kwargs", "missing"),
    [
        (MID_2020, {"face_to_face": True}, ("proximity_m", "duration_min")),
        (LAUNCH, {"face_to_face": True}, ("proximity_m", "duration_min")),
        (
            LAUNCH,
            {"face_to_face": True, "duration_min": 5},
            ("proximity_m",),
        ),  # 2 m rule can't reach
        (MID_2020, {"face_to_face": True, "duration_min": 5}, ("proximity_m",)),
        (MID_2020, {"proximity_m": 1.5}, ("duration_min",)),
        (MID_2020, {"proximity_m": 3}, ()),  # too far for any clause, whatever the time
        (MID_2020, {"duration_min": 0.5}, ()),  # too short for any clause, whatever the distance
        (MID_2020, {"duration_min": 5}, ("proximity_m",)),
        (LAUNCH, {"duration_min": 10}, ()),
        (LAUNCH, {}, ("proximity_m", "duration_min")),
    ],
)
def test_unrecorded_measures_that_could_make_it_close_are_named(
    ruleset_id: str, kwargs: dict[str, Any], missing: tuple[str, ...]
) -> None:
    result = classify(ruleset_id, **kwargs)
    assert not result.is_close
    assert result.missing == missing
    assert ("could change" in result.explanation) is bool(missing)
    if "proximity_m" in missing:
        assert "distance" in result.explanation


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        classify(MID_2020, setting="pub")
    assert caught.value.field == "setting"
    assert caught.value.expected == "one of " + ", ".join(SETTINGS)


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, -math.inf])
def test_impossible_measures_are_refused(bad: float) -> None:
    with pytest.raises(ValidationError) as caught:
        classify(MID_2020, proximity_m=bad, duration_min=20)
    assert caught.value.field == "proximity_m"
    with pytest.raises(ValidationError) as caught:
        classify(MID_2020, proximity_m=1, duration_min=bad)
    assert caught.value.field == "duration_min"
