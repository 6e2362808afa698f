"""Raw input to validated column values: the validators of tracekit.records.inputs."""

from __future__ import annotations

from datetime import date

import pytest

from tests.records.helpers import NHS_NUMBERS, TODAY
from tracekit.errors import ValidationError
from tracekit.records import PersonInput
from tracekit.records.inputs import (
    ADDRESS_MAX_LENGTH,
    CASE_VALIDATORS,
    EXPOSURE_VALIDATORS,
    NOTES_MAX_LENGTH,
    PERSON_VALIDATORS,
    validate_fields,
    validated,
)


def person_values(**raw):
    return validated(raw, PERSON_VALIDATORS, TODAY)


def exposure_values(**raw):
    return validated(raw, EXPOSURE_VALIDATORS, TODAY)


def case_values(**raw):
    return validated(raw, CASE_VALIDATORS, TODAY)


def field_of(fn, **raw) -> str:
    with pytest.raises(ValidationError) as info:
        fn(**raw)
    return info.value.field


# -- people ------------------------------------------------------------------------------


def test_person_fields_are_normalised():
    values = person_values(
        name=" Zoë\t Ångström ",
        date_of_birth="3 April 1985",
        nhs_number="999-000-0018",
        phone="+44 (0)7700 900123",
        email="Zoe@Example.ORG",
        address="1 Test Street\nLondon",
        postcode=" sw1a   1aa ",
        occupation="  nurse  ",
    )
    assert values == {
        "name": "Zoë Ångström",
        "date_of_birth": date(1985, 4, 3),
        "nhs_number": NHS_NUMBERS[0],
        "phone": "+447700900123",
        "email": "Zoe@example.org",
        "address": "1 Test Street London",
        "postcode": "SW1A 1AA",
        "occupation": "nurse",
    }


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"name": "\u202eevil"}, "name"),
        ({"date_of_birth": "2020-11-02"}, "date_of_birth"),
        ({"date_of_birth": date(2020, 11, 2)}, "date_of_birth"),
        ({"date_of_birth": "04/13/1985"}, "date_of_birth"),
        ({"nhs_number": "9990000019"}, "nhs_number"),
        ({"phone": "0800 FLOWERS"}, "phone"),
        ({"email": "a@b"}, "email"),
        ({"address": "x" * (ADDRESS_MAX_LENGTH + 1)}, "address"),
        ({"address": "1 Test\x07Street"}, "address"),
        ({"postcode": "SW1A"}, "postcode"),
        ({"occupation": "x" * 201}, "occupation"),
    ],
)
def test_person_field_errors_name_the_field(raw, field):
    assert field_of(person_values, **raw) == field


def test_error_messages_do_not_echo_the_value():
    with pytest.raises(ValidationError) as info:
        person_values(nhs_number="9990000019")
    assert "9990000019" not in str(info.value)


def test_address_at_the_limit_is_accepted():
    assert len(person_values(address="x" * ADDRESS_MAX_LENGTH)["address"]) == ADDRESS_MAX_LENGTH


# -- cases -------------------------------------------------------------------------------


def test_case_fields():
    values = case_values(
        test_date="20/10/2020",
        test_type="PCR",
        test_result=" Positive ",
        symptom_onset=date(2020, 10, 18),
        status="Closed",
    )
    assert values == {
        "test_date": date(2020, 10, 20),
        "test_type": "pcr",
        "test_result": "positive",
        "symptom_onset": date(2020, 10, 18),
        "status": "closed",
    }


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"test_date": "2020-11-02"}, "test_date"),
        ({"test_date": "20201020"}, "test_date"),  # ambiguous compact form
        ({"test_date": "20/10/20"}, "test_date"),  # two-digit year
        ({"symptom_onset": date(2021, 1, 1)}, "symptom_onset"),
        ({"test_type": "blood"}, "test_type"),
        ({"test_result": "inconclusive"}, "test_result"),
        ({"status": "pending"}, "status"),
        ({"notes": "x" * (NOTES_MAX_LENGTH + 1)}, "notes"),
    ],
)
def test_case_field_errors_name_the_field(raw, field):
    assert field_of(case_values, **raw) == field


def test_choice_errors_list_the_allowed_values():
    with pytest.raises(ValidationError) as info:
        case_values(test_type="blood")
    for allowed in ("pcr", "lfd", "lamp", "other"):
        assert allowed in str(info.value)


# -- exposures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"proximity_m": "1.5"}, {"proximity_m": 1.5}),
        ({"proximity_m": " 2 m "}, {"proximity_m": 2.0}),
        ({"proximity_m": "0"}, {"proximity_m": 0.0}),
        ({"proximity_m": 1000}, {"proximity_m": 1000.0}),
        ({"duration_min": "20min"}, {"duration_min": 20.0}),
        ({"duration_min": "20 mins"}, {"duration_min": 20.0}),
        ({"duration_min": "1 hour"}, {"duration_min": 60.0}),
        ({"duration_min": "1h30m"}, {"duration_min": 90.0}),
        ({"duration_min": 20160}, {"duration_min": 20160.0}),
        ({"face_to_face": "Yes"}, {"face_to_face": True}),
        ({"face_to_face": "0"}, {"face_to_face": False}),
        ({"direct_contact": False}, {"direct_contact": False}),
        ({"direct_contact": "TRUE"}, {"direct_contact": True}),
        ({"setting": " Household "}, {"setting": "household"}),
        ({"trace_status": "Not Yet Reached"}, {"trace_status": "not-yet-reached"}),
        ({"trace_status": "not_yet_reached"}, {"trace_status": "not-yet-reached"}),
        ({"notes": "  line one\n\tline two  "}, {"notes": "line one\n\tline two"}),
        ({"last_exposure": "1 Nov 2020"}, {"last_exposure": date(2020, 11, 1)}),
    ],
)
def test_exposure_values(raw, expected):
    assert exposure_values(**raw) == expected


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"proximity_m": "near"}, "proximity_m"),
        ({"proximity_m": "-0.1"}, "proximity_m"),
        ({"proximity_m": "1000.1"}, "proximity_m"),
        ({"proximity_m": "nan"}, "proximity_m"),
        ({"proximity_m": "inf"}, "proximity_m"),
        ({"duration_min": "20 parsecs"}, "duration_min"),
        ({"duration_min": "20161"}, "duration_min"),
        ({"face_to_face": "sometimes"}, "face_to_face"),
        ({"setting": "pub"}, "setting"),
        ({"trace_status": "called"}, "trace_status"),
        ({"last_exposure": "2020-11-02"}, "last_exposure"),
        ({"notes": "bell\x07"}, "notes"),
    ],
)
def test_exposure_field_errors_name_the_field(raw, field):
    assert field_of(exposure_values, **raw) == field


# -- validate_fields / validated ---------------------------------------------------------


def test_empty_values_are_skipped():
    assert validated({"name": None, "phone": "", "email": "   "}, PERSON_VALIDATORS, TODAY) == {}


def test_validate_fields_collects_every_problem_and_keeps_good_values():
    values, problems = validate_fields(
        {"name": "Ada Lovelace", "nhs_number": "123", "phone": "nope", "postcode": "EC1A 1BB"}, PERSON_VALIDATORS, TODAY
    )
    assert values == {"name": "Ada Lovelace", "postcode": "EC1A 1BB"}
    assert [p.field for p in problems] == ["nhs_number", "phone"]


def test_validated_raises_the_first_problem():
    with pytest.raises(ValidationError) as info:
        validated({"nhs_number": "123", "phone": "nope"}, PERSON_VALIDATORS, TODAY)
    assert info.value.field == "nhs_number"


def test_unknown_field_is_a_programming_error():
    with pytest.raises(KeyError):
        validated({"shoe_size": "9"}, PERSON_VALIDATORS, TODAY)


def test_future_is_relative_to_the_given_today():
    assert validated({"test_date": "2020-11-02"}, CASE_VALIDATORS, date(2020, 11, 2)) == {
        "test_date": date(2020, 11, 2)
    }
    assert (
        field_of(lambda **raw: validated(raw, CASE_VALIDATORS, date(2020, 11, 1)), test_date="2020-11-02")
        == "test_date"
    )


# -- PersonInput -------------------------------------------------------------------------


def test_person_input_raw_lists_every_field():
    raw = PersonInput(name="Ada", phone="07700 900001").raw()
    assert set(raw) == set(PERSON_VALIDATORS)
    assert raw["name"] == "Ada" and raw["phone"] == "07700 900001" and raw["email"] is None


def test_person_input_is_empty():
    assert PersonInput().is_empty()
    assert PersonInput(name="", phone=None).is_empty()
    assert not PersonInput(postcode="SW1A 1AA").is_empty()
