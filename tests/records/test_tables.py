"""The table specs (tracekit.records.tables) against the migrated schema, the model and the rules."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from tracekit.bundle import source
from tracekit.domain import rules
from tracekit.records import casebook, derived
from tracekit.records.inputs import (
    CASE_VALIDATORS,
    EXPOSURE_VALIDATORS,
    PERSON_VALIDATORS,
    PersonInput,
)
from tracekit.records.models import Case, Exposure, Person
from tracekit.records.tables import CASES, EXPOSURES, PEOPLE, TABLES, Table, View


@pytest.mark.parametrize("name", sorted(TABLES))
def test_spec_columns_are_the_migrated_tables_columns_in_order(store, name):
    schema = [row[1] for row in store.conn.execute(f"PRAGMA table_info({name})")]
    assert list(TABLES[name].columns) == schema


@pytest.mark.parametrize("name", sorted(TABLES))
def test_insert_of_a_whole_row_by_name_stores_each_value_in_its_column(store, name):
    """``row`` puts every value in its own column: each column is given a value of its
    own name, so a misplaced value would show."""
    table = TABLES[name]
    values = {column: f"v-{column}" for column in table.columns if column != "id"}
    conn = store.conn
    conn.execute("PRAGMA foreign_keys = OFF")  # the links' values are names here, not ids
    cursor = conn.execute(table.insert_sql, table.row(values))
    stored = conn.execute(f"SELECT * FROM {name} WHERE id = ?", (cursor.lastrowid,)).fetchone()
    assert dict(zip(table.columns, stored)) == {"id": cursor.lastrowid, **values}
    # A value not given is NULL: a NOT NULL column refuses the row, loudly.
    with pytest.raises(Exception, match="NOT NULL"):
        conn.execute(table.insert_sql, table.row({"ref": "R-1"}))


def test_a_spec_naming_a_column_it_lacks_is_refused():
    with pytest.raises(ValueError, match="not columns"):
        Table("t", ("id", "name"), identity=("name", "phone"))


def test_a_view_reads_rows_by_name_and_refuses_a_name_twice():
    inner = View([("a", "1"), ("b", "2")])
    assert (inner.sql, inner.width) == ("1, 2", 2)
    assert inner.named((10, 20)) == {"a": 10, "b": 20}
    outer = View([("a", "3")], nested=("inner", inner))
    assert (outer.sql, outer.width) == ("3, 1, 2", 3)
    assert outer.named((30, 10, 20)) == {"a": 30, "inner": {"a": 10, "b": 20}}
    with pytest.raises(ValueError, match="twice"):
        View([("a", "1"), ("a", "2")])
    with pytest.raises(ValueError, match="twice"):
        View([("inner", "1")], nested=("inner", inner))


@pytest.mark.parametrize(
    "view, rest",
    [
        (casebook.PERSON_VIEW, "FROM people p"),
        (casebook.CASE_VIEW, "FROM cases c JOIN people p ON p.id = c.person_id"),
        (casebook.EXPOSURE_VIEW, "FROM exposures e JOIN people p ON p.id = e.person_id"),
    ],
)
def test_case_book_views_give_one_value_per_name(store, view, rest):
    cursor = store.conn.execute(f"SELECT {view.sql} {rest} LIMIT 0")
    assert len(cursor.description) == view.width


@pytest.mark.parametrize(
    "view, sql",
    [
        (source.CASE_VIEW, source.CASE_SQL),
        (source.CONTACT_VIEW, source.CONTACT_SQL),
    ],
)
def test_export_views_give_one_value_per_name(store, view, sql):
    cursor = store.conn.execute(sql.format(where="") + " LIMIT 0")
    assert len(cursor.description) == len(view.names)


def test_person_details_are_the_input_the_validators_and_the_model():
    assert set(PEOPLE.details) == set(PERSON_VALIDATORS) == {f.name for f in dataclasses.fields(PersonInput)}
    assert set(PEOPLE.details) <= {f.name for f in dataclasses.fields(Person)}
    assert set(PEOPLE.identity) <= set(PEOPLE.details)


def test_record_details_are_validated_and_in_the_model():
    assert set(CASES.details) <= set(CASE_VALIDATORS)
    assert set(CASES.details) <= {f.name for f in dataclasses.fields(Case)}
    assert set(EXPOSURES.details) <= set(EXPOSURE_VALIDATORS)
    assert set(EXPOSURES.details) <= {f.name for f in dataclasses.fields(Exposure)}


def test_derived_columns_are_what_the_rules_give():
    rs = rules.ruleset_for(date(2020, 10, 1))
    case = derived.case_values(date(2020, 10, 1), date(2020, 9, 29), rs)
    exposure = derived.exposure_values(
        {"last_exposure": date(2020, 9, 30), "setting": "household", "face_to_face": True}, rs
    )
    assert tuple(case) == CASES.derived
    assert tuple(exposure) == EXPOSURES.derived
    assert set(derived.EXPOSURE_RULE_INPUTS) <= set(EXPOSURES.details)


def test_memoised_rule_values_equal_the_plain_ones():
    values = derived.RuleValues(None)
    for day in (date(2020, 9, 1), date(2020, 12, 20)):
        rs = rules.ruleset_for(day)
        assert values.case(day, None) == derived.case_values(day, None, rs)
        for setting in ("household", "social"):
            facts = {"last_exposure": day, "setting": setting, "proximity_m": 1.0, "duration_min": 20.0}
            assert values.exposure(facts) == derived.exposure_values(facts, rs)
            assert values.exposure(facts) == derived.exposure_values(facts, rs)  # from the memo
