"""Column mapping: aliases, --map, the mapping file, ambiguity, required columns, the template."""

from __future__ import annotations

import pytest

from tracekit.errors import ValidationError
from tracekit.importers.columns import (
    KINDS,
    alias_table,
    parse_map_options,
    plan_columns,
    read_mapping_file,
    template_rows,
)


def test_no_alias_means_two_fields():
    for kind in KINDS:
        alias_table(kind)  # raises on a clash


@pytest.mark.parametrize("header", ["Mobile", "Phone number", "Tel", "TELEPHONE", "phone_number", "Mobile No."])
def test_phone_aliases(header):
    plan = plan_columns("contacts", ["Contact ID", "Case ID", "Name", header, "Last contact", "Setting"])
    assert plan.index["phone"] == 3


def test_case_id_means_different_things_in_the_two_kinds():
    cases = plan_columns("cases", ["Case ID", "Name", "Specimen date", "Onset"])
    contacts = plan_columns("contacts", ["Contact ID", "Case ID", "Name", "Date of contact", "Setting"])
    assert cases.index["external_id"] == 0
    assert contacts.index["case_external_id"] == 1 and contacts.index["external_id"] == 0


def test_unknown_columns_are_ignored_and_listed():
    plan = plan_columns("cases", ["ID", "Name", "Test date", "Asymptomatic", "Ward", "import_error"])
    assert plan.ignored == ["Ward"]


def test_map_overrides_and_ignores():
    plan = plan_columns(
        "cases",
        ["Ref", "Who", "When", "Mobile", "Onset"],
        parse_map_options(["Ref=external_id", "Who=name", "When=test_date", "Mobile=ignore"]),
    )
    assert plan.index == {"external_id": 0, "name": 1, "test_date": 2, "symptom_onset": 4}
    assert plan.ignored == ["Mobile"]


def test_map_errors():
    with pytest.raises(ValidationError, match="COLUMN=FIELD"):
        parse_map_options(["no equals sign"])
    with pytest.raises(ValidationError, match="unknown field"):
        plan_columns("cases", ["ID", "Name", "Test date"], {"Name": "shoe_size"})
    with pytest.raises(ValidationError, match="does not have"):
        plan_columns("cases", ["ID", "Name", "Test date"], {"Nmae": "name"})


def test_two_columns_for_one_field_is_an_error():
    with pytest.raises(ValidationError, match="both map to phone") as caught:
        plan_columns("cases", ["ID", "Name", "Test date", "Mobile", "Tel"])
    assert "--map" in caught.value.expected


@pytest.mark.parametrize(
    ("headers", "missing"),
    [
        (["Name", "Test date", "Onset"], "external_id"),
        (["ID", "Test date", "Onset"], "name"),
        (["ID", "Name", "Onset"], "test_date"),
        (["ID", "Name", "Test date"], "symptom_onset"),
    ],
)
def test_required_columns(headers, missing):
    with pytest.raises(ValidationError) as caught:
        plan_columns("cases", headers)
    assert caught.value.field == missing and caught.value.row == 1


def test_given_and_family_name_instead_of_name():
    plan_columns("cases", ["ID", "First name", "Surname", "Test date", "Asymptomatic"])
    with pytest.raises(ValidationError):
        plan_columns("cases", ["ID", "First name", "Test date", "Asymptomatic"])


def test_contacts_need_their_case():
    with pytest.raises(ValidationError, match="case"):
        plan_columns("contacts", ["ID", "Name", "Last contact", "Setting"])


def test_mapping_file(tmp_path):
    path = tmp_path / "map.toml"
    path.write_text('[columns]\n"Mobile Tel" = "phone"\n"Ward" = "ignore"\n', encoding="utf-8")
    assert read_mapping_file(path) == {"Mobile Tel": "phone", "Ward": "ignore"}
    path.write_text("columns = 3\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="columns"):
        read_mapping_file(path)
    path.write_text("[columns\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="TOML"):
        read_mapping_file(path)


@pytest.mark.parametrize("kind", KINDS)
def test_template_maps_onto_itself(kind):
    header, example = template_rows(kind)
    plan = plan_columns(kind, header)
    assert not plan.ignored and len(plan.index) == len(header) == len(example)


def test_every_missing_column_is_named_at_once():
    """Issue 14 item 10: a lab export missing several columns hears about all of them in one run,
    with the unmapped columns that --map could use."""
    with pytest.raises(ValidationError) as caught:
        plan_columns("cases", ["Specimen ref", "Patient", "Collected"])
    error = caught.value
    assert error.row == 1 and error.field == "header"
    for name in ("external_id", "name", "test_date", "symptom_onset"):
        assert name in error.problem
    assert "--map" in error.expected and "'Specimen ref', 'Patient', 'Collected'" in error.expected


def test_a_lab_export_without_onset_or_asymptomatic_column_is_refused_with_advice():
    """Issue 14 item 10: a blank onset is never read as 'no symptoms'; the header check says what to add."""
    with pytest.raises(ValidationError) as caught:
        plan_columns("cases", ["ID", "Name", "Specimen date"])
    assert caught.value.field == "symptom_onset"
    assert "asymptomatic column saying yes" in caught.value.expected
    assert "never taken to mean no symptoms" in caught.value.expected
    plan_columns("cases", ["ID", "Name", "Specimen date", "Asymptomatic"])  # either column will do
    plan_columns("cases", ["ID", "Name", "Specimen date", "Onset date"])
