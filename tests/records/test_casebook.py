"""The case book's cases: adding, rule-derived dates, rule-set pinning, lists, updates,
and all-or-nothing changes.

Every case book here has ``today`` fixed at 1 November 2020, so "the future" and the rule
set in force are deterministic. People, NHS numbers and phones are made up (see helpers).
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest

from tests.records.helpers import (  # store, store_path: fast copies of a new store, on tmpfs
    DECEMBER_TODAY,
    LAUNCH,
    MID_2020,
    TODAY,
    audit_rows,
    casebook,
    count,
    person,
    phone,
    store,  # noqa: F401
    store_path,  # noqa: F401
    table_snapshot,
    template_store_file,  # noqa: F401
)
from tracekit import audit
from tracekit.errors import Conflict, NotFound, ValidationError
from tracekit.records import Casebook, CaseStatus, PersonInput


@pytest.fixture
def cb(store) -> Casebook:
    return casebook(store)


# -- add_case: who the case is about ----------------------------------------------------


def test_add_case_from_person_details_stores_normalised_person(cb):
    case = cb.add_case(
        person=person(
            "  Ada   Lovelace ",
            date_of_birth="10/12/1985",
            nhs_number="999 000 0018",
            phone=phone(1),
            postcode="sw1a1aa",
            email="ada@Example.COM",
        ),
        test_date="2020-10-20",
        symptom_onset="2020-10-18",
    )
    assert case.ref.startswith("C-") and len(case.ref) == 8
    assert case.status is CaseStatus.OPEN
    p = case.person
    assert p.ref.startswith("P-")
    assert p.name == "Ada Lovelace"
    assert p.date_of_birth == date(1985, 12, 10)
    assert p.nhs_number == "9990000018"
    assert p.phone == "+447700900001"
    assert p.postcode == "SW1A 1AA"
    assert p.email == "ada@example.com"
    assert cb.get_case(case.ref) == case
    assert cb.get_person(p.ref) == p
    # One person and one case, nothing else.
    assert (count(cb.store, "people"), count(cb.store, "cases")) == (1, 1)


def test_add_case_from_an_existing_person_ref(cb):
    first = cb.add_case(person=person("Ada Lovelace"), test_date="2020-06-01", asymptomatic=True)
    cb.close_case(first.ref)
    again = cb.add_case(person_ref=first.person.ref.lower(), test_date="2020-10-20", asymptomatic=True)
    assert again.person.id == first.person.id
    assert again.ref != first.ref
    assert count(cb.store, "people") == 1
    assert count(cb.store, "cases") == 2


def test_add_case_with_unknown_person_ref_is_not_found_and_writes_nothing(cb):
    before = table_snapshot(cb.store)
    with pytest.raises(NotFound, match="P-7K2M9Q"):
        cb.add_case(person_ref="P-7K2M9Q", test_date="2020-10-20", asymptomatic=True)
    assert table_snapshot(cb.store) == before


def test_add_case_needs_a_person(cb):
    with pytest.raises(ValidationError) as info:
        cb.add_case(test_date="2020-10-20", asymptomatic=True)
    assert info.value.field == "person"
    with pytest.raises(ValidationError) as info:
        cb.add_case(person=PersonInput(), test_date="2020-10-20", asymptomatic=True)
    assert info.value.field == "person"


def test_add_case_person_needs_a_name(cb):
    with pytest.raises(ValidationError) as info:
        cb.add_case(person=PersonInput(phone=phone(2)), test_date="2020-10-20", asymptomatic=True)
    assert info.value.field == "name"
    assert count(cb.store, "people") == 0


def test_add_case_rejects_bad_person_details_naming_the_field(cb):
    for details, field in (
        ({"nhs_number": "999 000 0019"}, "nhs_number"),  # wrong check digit
        ({"phone": "not a phone"}, "phone"),
        ({"postcode": "XX"}, "postcode"),
        ({"email": "nobody"}, "email"),
        ({"date_of_birth": "2020-11-02"}, "date_of_birth"),  # tomorrow
    ):
        with pytest.raises(ValidationError) as info:
            cb.add_case(person=person("Ada Lovelace", **details), test_date="2020-10-20", asymptomatic=True)
        assert info.value.field == field
    assert count(cb.store, "people") == 0


# -- add_case: required and consistent dates ---------------------------------------------


def test_test_date_is_required(cb):
    with pytest.raises(ValidationError) as info:
        cb.add_case(person=person("Ada Lovelace"), test_date="", symptom_onset="2020-10-18")
    assert info.value.field == "test_date"
    assert "required" in str(info.value)


def test_onset_or_asymptomatic_is_required(cb):
    with pytest.raises(ValidationError) as info:
        cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20")
    assert info.value.field == "symptom_onset"
    assert "required" in str(info.value)
    assert count(cb.store, "people") == 0


def test_onset_and_asymptomatic_together_is_an_error(cb):
    with pytest.raises(ValidationError) as info:
        cb.add_case(
            person=person("Ada Lovelace"), test_date="2020-10-20", symptom_onset="2020-10-18", asymptomatic=True
        )
    assert info.value.field == "symptom_onset"
    assert count(cb.store, "people") == 0


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("test_date", {"test_date": "2020-11-02", "asymptomatic": True}),
        ("test_date", {"test_date": date(2020, 11, 2), "asymptomatic": True}),
        ("symptom_onset", {"test_date": "2020-10-30", "symptom_onset": "02/11/2020"}),
        ("symptom_onset", {"test_date": "2020-10-30", "symptom_onset": date(2020, 11, 2)}),
    ],
)
def test_future_dates_are_refused(cb, field, kwargs):
    with pytest.raises(ValidationError) as info:
        cb.add_case(person=person("Ada Lovelace"), **kwargs)
    assert info.value.field == field
    assert "future" in str(info.value)
    assert count(cb.store, "cases") == 0


def test_today_itself_is_not_the_future(cb):
    case = cb.add_case(person=person("Ada Lovelace"), test_date=TODAY, symptom_onset=TODAY)
    assert case.test_date == case.symptom_onset == TODAY


def test_onset_long_after_the_test_is_refused(cb):
    with pytest.raises(ValidationError) as info:
        cb.add_case(person=person("Ada Lovelace"), test_date="2020-09-01", symptom_onset="2020-10-02")
    assert info.value.field == "symptom_onset"
    # 30 days after is still accepted.
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-09-01", symptom_onset="2020-10-01")
    assert case.symptom_onset == date(2020, 10, 1)


def test_unknown_test_type_or_result_names_the_field(cb):
    with pytest.raises(ValidationError) as info:
        cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", asymptomatic=True, test_type="saliva")
    assert info.value.field == "test_type"
    with pytest.raises(ValidationError) as info:
        cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", asymptomatic=True, test_result="maybe")
    assert info.value.field == "test_result"


def test_test_type_and_result_are_normalised(cb):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", asymptomatic=True, test_type=" LFD ")
    assert case.test_type == "lfd"
    assert case.test_result == "positive"


def test_test_date_before_date_of_birth_is_refused(cb):
    raised = None
    try:
        cb.add_case(
            person=person("Baby Lovelace", date_of_birth="2020-10-25"), test_date="2020-10-20", asymptomatic=True
        )
    except ValidationError as error:
        raised = error
    assert raised is not None and raised.field == "test_date"


# -- add_case: rule-derived values -------------------------------------------------------


def test_infectious_period_and_isolation_from_onset(cb):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", symptom_onset="2020-10-18")
    assert case.ruleset_id == MID_2020
    # From 2 days before onset to 10 days after.
    assert (case.infectious_start, case.infectious_end) == (date(2020, 10, 16), date(2020, 10, 28))
    # 10 days counted from the day after onset: isolate to the end of 28 October.
    assert case.isolation_end == date(2020, 10, 28)
    assert not case.asymptomatic


def test_asymptomatic_case_counts_from_the_test_date(cb):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", asymptomatic=True)
    assert case.symptom_onset is None and case.asymptomatic
    assert (case.infectious_start, case.infectious_end) == (date(2020, 10, 18), date(2020, 10, 30))
    assert case.isolation_end == date(2020, 10, 30)


@pytest.mark.parametrize(
    ("onset", "ruleset", "isolation_end"),
    [
        ("2020-07-29", LAUNCH, date(2020, 8, 5)),  # 7 days until 29 July 2020
        ("2020-07-30", MID_2020, date(2020, 8, 9)),  # 10 days from 30 July 2020
    ],
)
def test_case_isolation_changes_with_the_july_rule_change(cb, onset, ruleset, isolation_end):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-07-31", symptom_onset=onset)
    assert case.ruleset_id == ruleset
    assert case.isolation_end == isolation_end
    onset_date = date.fromisoformat(onset)
    assert (case.infectious_start, case.infectious_end) == (
        onset_date - timedelta(days=2),
        onset_date + timedelta(days=10),
    )
    # The rule set is chosen by onset, not by the (later) test date.
    stored = cb.store.conn.execute("SELECT ruleset_id, isolation_end FROM cases WHERE ref = ?", (case.ref,)).fetchone()
    assert stored == (ruleset, isolation_end.isoformat())


def test_asymptomatic_rule_set_is_chosen_by_test_date(cb):
    before = cb.add_case(person=person("Ada Lovelace"), test_date="2020-07-29", asymptomatic=True)
    after = cb.add_case(person=person("Bea Lovelace"), test_date="2020-07-30", asymptomatic=True)
    assert (before.ruleset_id, before.isolation_end) == (LAUNCH, date(2020, 8, 5))
    assert (after.ruleset_id, after.isolation_end) == (MID_2020, date(2020, 8, 9))


def test_a_december_case_still_isolates_for_10_days(store):
    cb = casebook(store, DECEMBER_TODAY)
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-12-20", symptom_onset="2020-12-14")
    assert case.ruleset_id == "england-2020-12-14"
    assert case.isolation_end == date(2020, 12, 24)


# -- pinned rule sets --------------------------------------------------------------------


def _stored_exposure(cb, ref):
    return cb.store.conn.execute(
        "SELECT ruleset_id, close_contact, clause, risk_rank, isolation_end FROM exposures WHERE ref = ?", (ref,)
    ).fetchone()


def test_pinning_a_rule_set_recomputes_cases_and_exposures_and_unpinning_restores(cb):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", symptom_onset="2020-10-18")
    household, _ = cb.add_contact(
        case.ref, person=person("Bea Lovelace"), last_exposure="2020-10-18", setting="household"
    )
    assert _stored_exposure(cb, household.ref) == (MID_2020, 1, "household", 0, "2020-11-01")
    original_case = cb.get_case(case.ref)

    cb.pin_ruleset(LAUNCH)
    assert cb.pinned_ruleset == LAUNCH
    pinned_case = cb.get_case(case.ref)
    assert pinned_case.ruleset_id == LAUNCH
    assert pinned_case.isolation_end == date(2020, 10, 25)  # 7 days under the launch rules
    # The launch rules had no household clause: a household member with nothing else
    # recorded is not a close contact, and drops to the bottom of the worklist.
    assert _stored_exposure(cb, household.ref) == (LAUNCH, 0, None, 99, "2020-11-01")
    assert cb.get_contact(household.ref).close_contact is False

    # New records follow the pin as well.
    later = cb.add_case(person=person("Cy Lovelace"), test_date="2020-10-25", asymptomatic=True)
    assert later.ruleset_id == LAUNCH
    assert later.isolation_end == date(2020, 11, 1)

    cb.pin_ruleset(None)
    assert cb.pinned_ruleset is None
    # The same values again; only updated_at moves (a pin marks what it changed as updated).
    assert dataclasses.replace(cb.get_case(case.ref), updated_at="") == dataclasses.replace(
        original_case, updated_at=""
    )
    assert _stored_exposure(cb, household.ref) == (MID_2020, 1, "household", 0, "2020-11-01")
    assert cb.get_case(later.ref).ruleset_id == MID_2020
    assert cb.get_case(later.ref).isolation_end == date(2020, 11, 4)


def _stored_rule_values(cb):
    conn = cb.store.conn
    cases = conn.execute(
        "SELECT id, ruleset_id, infectious_start, infectious_end, isolation_end FROM cases ORDER BY id"
    ).fetchall()
    exposures = conn.execute(
        "SELECT id, ruleset_id, close_contact, clause, risk_rank, isolation_end FROM exposures ORDER BY id"
    ).fetchall()
    return cases, exposures


def _mixed_case_book(cb):
    """Cases and contacts on both sides of each rule change, in every setting."""
    settings = ["household", "workplace", "education", "healthcare", "social", "travel", "other"]
    days = ["2020-06-01", "2020-07-29", "2020-07-31", "2020-09-01", "2020-12-13", "2020-12-15"]
    for i, day in enumerate(days):
        onset = date.fromisoformat(day)
        case = cb.add_case(
            person=person(f"Case Person{i}"),
            test_date=(onset + timedelta(days=1)).isoformat(),
            symptom_onset=None if i % 3 == 0 else day,
            asymptomatic=i % 3 == 0,
        )
        for j, setting in enumerate(settings):
            cb.add_contact(
                case.ref,
                person=person(f"Contact Person{i}x{j}"),
                last_exposure=day,
                setting=setting,
                proximity_m=[0.5, 1.5, 3.0][j % 3],
                duration_min=[1, 10, 20][(i + j) % 3],
                face_to_face=j % 2 == 0,
            )


def test_pinning_in_batches_gives_each_record_the_values_it_would_get_added_under_the_pin(store, monkeypatch):
    import tracekit.records.casebook as casebook_module

    cb = casebook(store, DECEMBER_TODAY)
    _mixed_case_book(cb)
    unpinned = _stored_rule_values(cb)
    cb.store.conn.execute("UPDATE exposures SET updated_at = '2020-01-01T00:00:00+00:00'")
    updated_before = dict(cb.store.conn.execute("SELECT id, updated_at FROM exposures").fetchall())
    monkeypatch.setattr(casebook_module, "RECOMPUTE_BATCH", 4)  # 6 cases, 42 contacts: many batches
    monkeypatch.setattr(casebook_module, "RECOMPUTE_MEMO", 3)  # and the remembered values forgotten often
    reports = []
    summary = cb.pin_ruleset(LAUNCH, progress=lambda done, total: reports.append((done, total)))
    pinned = _stored_rule_values(cb)

    # The same values one record at a time, as add_case and add_contact work them out.
    conn = cb.store.conn
    for case_id, *stored in pinned[0]:
        test_date, onset = conn.execute(
            "SELECT test_date, symptom_onset FROM cases WHERE id = ?", (case_id,)
        ).fetchone()
        expected = cb._case_rule_values(date.fromisoformat(test_date), date.fromisoformat(onset) if onset else None)
        assert tuple(stored) == tuple(expected.values()) and stored[0] == LAUNCH
    for exposure_id, *stored in pinned[1]:
        exposure = cb._load_exposure(conn, exposure_id, with_calls=False, raw=True)
        assert tuple(stored) == tuple(cb._exposure_rule_values(exposure.__dict__).values())
        assert stored[0] == LAUNCH

    # What changed is marked updated (so the next --since-last handover carries it); the rest is not.
    after = dict(conn.execute("SELECT id, updated_at FROM exposures").fetchall())
    for (exposure_id, *was), (_, *now) in zip(unpinned[1], pinned[1]):
        assert (after[exposure_id] != updated_before[exposure_id]) == (was != now)
    changed_cases = sum(a != b for a, b in zip(unpinned[0], pinned[0]))
    changed_contacts = sum(a != b for a, b in zip(unpinned[1], pinned[1]))
    assert (summary.cases, summary.contacts) == (6, 42)
    assert (summary.cases_changed, summary.contacts_changed) == (changed_cases, changed_contacts)
    assert 0 < changed_contacts < 42  # the launch-period records keep theirs
    assert reports[0] == (0, 48) and reports[-1] == (48, 48)
    assert [done for done, _ in reports] == sorted(done for done, _ in reports) and len(reports) > 10

    # Unpinning puts back exactly what the dated rules gave.
    back = cb.pin_ruleset(None)
    assert _stored_rule_values(cb) == unpinned
    assert (back.cases_changed, back.contacts_changed) == (changed_cases, changed_contacts)


def test_pinning_the_rule_set_already_in_force_changes_no_row(cb):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", symptom_onset="2020-10-18")
    cb.add_contact(case.ref, person=person("Bea Lovelace"), last_exposure="2020-10-18", setting="household")
    before = _stored_rule_values(cb)
    summary = cb.pin_ruleset(MID_2020)
    assert _stored_rule_values(cb) == before
    assert summary.to_json() == {"cases": 1, "contacts": 1, "cases_changed": 0, "contacts_changed": 0}


def test_pinning_an_unknown_rule_set_is_refused_and_changes_nothing(cb):
    cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", asymptomatic=True)
    before = table_snapshot(cb.store)
    with pytest.raises(NotFound, match="england-2020-05-28"):
        cb.pin_ruleset("england-1918")
    assert table_snapshot(cb.store) == before
    assert cb.pinned_ruleset is None


def test_pin_and_unpin_are_audited(cb):
    cb.pin_ruleset(LAUNCH)
    cb.pin_ruleset(None)
    assert [(e["action"], e["refs"], e["reason"]) for e in audit_rows(cb.store)] == [
        ("rules.pin", [], LAUNCH),
        ("rules.unpin", [], None),
    ]


# -- list_cases --------------------------------------------------------------------------


@pytest.fixture
def five_cases(cb):
    refs = {}
    for i, test in enumerate(("2020-10-01", "2020-10-05", "2020-10-05", "2020-10-10", "2020-10-20")):
        refs[i] = cb.add_case(person=person(f"Person {i}"), test_date=test, asymptomatic=True).ref
    return refs


def test_list_cases_orders_newest_test_first_then_newest_record(cb, five_cases):
    page = cb.list_cases()
    assert [c.ref for c in page.items] == [five_cases[i] for i in (4, 3, 2, 1, 0)]
    assert (page.total, page.limit, page.offset) == (5, 50, 0)


def test_list_cases_pages_with_a_total(cb, five_cases):
    page = cb.list_cases(limit=2, offset=2)
    assert [c.ref for c in page.items] == [five_cases[2], five_cases[1]]
    assert (page.total, page.limit, page.offset) == (5, 2, 2)
    last = cb.list_cases(limit=2, offset=4)
    assert [c.ref for c in last.items] == [five_cases[0]]
    assert last.total == 5
    beyond = cb.list_cases(limit=2, offset=10)
    assert beyond.items == [] and beyond.total == 5


def test_list_cases_clamps_limit_and_offset(cb, five_cases):
    page = cb.list_cases(limit=0, offset=-5)
    assert (page.limit, page.offset, len(page.items)) == (1, 0, 1)
    assert cb.list_cases(limit=10_000).limit == 1000


def test_list_cases_since_and_until_are_inclusive(cb, five_cases):
    page = cb.list_cases(since="2020-10-05", until="10/10/2020")
    assert {c.ref for c in page.items} == {five_cases[1], five_cases[2], five_cases[3]}
    assert page.total == 3
    assert cb.list_cases(since=date(2020, 10, 11)).total == 1


def test_list_cases_by_status(cb, five_cases):
    cb.close_case(five_cases[0], reason="isolation complete")
    assert [c.ref for c in cb.list_cases(status="closed").items] == [five_cases[0]]
    assert cb.list_cases(status="OPEN").total == 4
    assert cb.list_cases(status="referred").total == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"status": "pending"}, "status"), ({"since": "yesterday"}, "since"), ({"until": "2020-13-01"}, "until")],
)
def test_list_cases_invalid_filters_name_the_field(cb, kwargs, field):
    with pytest.raises(ValidationError) as info:
        cb.list_cases(**kwargs)
    assert info.value.field == field


def test_contact_count_is_reported(cb):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", asymptomatic=True)
    assert case.contact_count == 0
    for i in range(3):
        cb.add_contact(case.ref, person=person(f"Contact {i}"), last_exposure="2020-10-19", setting="social")
    assert cb.get_case(case.ref).contact_count == 3
    assert cb.list_cases().items[0].contact_count == 3


# -- update_case / close_case ------------------------------------------------------------


def test_update_case_recomputes_rule_values(cb):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", symptom_onset="2020-10-18")
    moved = cb.update_case(case.ref, symptom_onset="2020-07-29", test_date="2020-07-31")
    assert moved.ruleset_id == LAUNCH
    assert (moved.infectious_start, moved.infectious_end) == (date(2020, 7, 27), date(2020, 8, 8))
    assert moved.isolation_end == date(2020, 8, 5)
    assert moved.updated_at >= case.updated_at
    assert cb.get_case(case.ref) == moved


def test_update_case_to_asymptomatic_counts_from_the_test(cb):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", symptom_onset="2020-10-10")
    updated = cb.update_case(case.ref, asymptomatic=True)
    assert updated.symptom_onset is None
    assert (updated.infectious_start, updated.isolation_end) == (date(2020, 10, 18), date(2020, 10, 30))


def test_update_case_keeps_other_fields(cb):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", symptom_onset="2020-10-18", notes="first")
    updated = cb.update_case(case.ref, notes="second")
    assert updated.notes == "second"
    assert (updated.test_date, updated.symptom_onset, updated.isolation_end) == (
        case.test_date,
        case.symptom_onset,
        case.isolation_end,
    )


def test_update_case_refuses_nothing_future_and_bad_onset(cb):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-09-01", symptom_onset="2020-08-30")
    with pytest.raises(ValidationError) as info:
        cb.update_case(case.ref)
    assert info.value.field == "changes"
    with pytest.raises(ValidationError) as info:
        cb.update_case(case.ref, test_date="2020-11-05")
    assert info.value.field == "test_date"
    with pytest.raises(ValidationError) as info:
        cb.update_case(case.ref, symptom_onset="2020-10-15")  # 44 days after the test
    assert info.value.field == "symptom_onset"
    assert cb.get_case(case.ref) == case


def test_update_case_with_onset_and_asymptomatic_is_an_error(cb):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", symptom_onset="2020-10-18")
    raised = None
    try:
        cb.update_case(case.ref, symptom_onset="2020-10-17", asymptomatic=True)
    except ValidationError as error:
        raised = error
    assert raised is not None and raised.field == "symptom_onset"


def test_update_of_a_referred_case_is_refused(cb):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", asymptomatic=True)
    with cb.store.transaction() as conn:
        conn.execute("UPDATE cases SET status = 'referred' WHERE ref = ?", (case.ref,))
    with pytest.raises(Conflict, match="referred"):
        cb.update_case(case.ref, notes="more")


def test_close_case(cb):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", asymptomatic=True)
    closed = cb.close_case(case.ref, reason="isolation complete")
    assert closed.status is CaseStatus.CLOSED
    assert closed.closed_at
    with pytest.raises(Conflict, match="closed, not open"):
        cb.close_case(case.ref)
    assert audit_rows(cb.store)[-1] == {
        "seq": 3,
        "action": "case.close",
        "refs": [case.ref],
        "reason": "isolation complete",
    }


def test_unknown_and_malformed_case_refs(cb):
    with pytest.raises(NotFound):
        cb.get_case("C-7K2M9Q")
    with pytest.raises(ValidationError) as info:
        cb.get_case("P-7K2M9Q")  # a person reference where a case is expected
    assert info.value.field == "reference"


# -- atomicity ---------------------------------------------------------------------------


class FailingAudit:
    """Replaces tracekit.audit.append: the ``fail_on``-th call raises, others append."""

    def __init__(self, fail_on: int) -> None:
        self.calls = 0
        self.fail_on = fail_on
        self.real = audit.append

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_on:
            raise RuntimeError("simulated failure half-way through")
        return self.real(*args, **kwargs)


def test_failure_half_way_through_add_case_leaves_nothing(cb, monkeypatch):
    cb.add_case(person=person("Existing Person"), test_date="2020-10-01", asymptomatic=True)
    before = table_snapshot(cb.store)
    failing = FailingAudit(fail_on=2)  # person.add succeeds, case.add fails
    monkeypatch.setattr(audit, "append", failing)
    with pytest.raises(RuntimeError, match="half-way"):
        cb.add_case(person=person("Zebedee Quill", phone=phone(7)), test_date="2020-10-20", asymptomatic=True)
    assert failing.calls == 2
    monkeypatch.undo()
    assert table_snapshot(cb.store) == before
    assert cb.search_people("Zebedee") == []
    assert audit.verify(cb.store.conn).ok


def test_failure_half_way_through_add_contact_leaves_nothing(cb, monkeypatch):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", asymptomatic=True)
    before = table_snapshot(cb.store)
    monkeypatch.setattr(audit, "append", FailingAudit(fail_on=2))
    with pytest.raises(RuntimeError):
        cb.add_contact(case.ref, person=person("Zebedee Quill"), last_exposure="2020-10-19", setting="household")
    monkeypatch.undo()
    assert table_snapshot(cb.store) == before


def test_failure_in_pin_ruleset_leaves_values_unchanged(store, monkeypatch):
    import tracekit.records.casebook as casebook_module

    cb = casebook(store, DECEMBER_TODAY)
    _mixed_case_book(cb)
    monkeypatch.setattr(casebook_module, "RECOMPUTE_BATCH", 1)  # batches written before the failure
    before = table_snapshot(cb.store)
    monkeypatch.setattr(audit, "append", FailingAudit(fail_on=1))
    with pytest.raises(RuntimeError):
        cb.pin_ruleset(LAUNCH)
    monkeypatch.undo()
    assert table_snapshot(cb.store) == before
    assert cb.pinned_ruleset is None


def test_failure_in_update_case_keeps_the_old_values(cb, monkeypatch):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", symptom_onset="2020-10-18")
    before = table_snapshot(cb.store)
    monkeypatch.setattr(audit, "append", FailingAudit(fail_on=1))
    with pytest.raises(RuntimeError):
        cb.update_case(case.ref, symptom_onset="2020-07-29")
    monkeypatch.undo()
    assert table_snapshot(cb.store) == before
