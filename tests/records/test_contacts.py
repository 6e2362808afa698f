"""Contacts (exposures): close-contact classification, isolation dates, warnings, lists,
updates, the call log, promotion to a case, the transmission tree and the worklist.
"""

from __future__ import annotations

from datetime import date

import pytest

from tests.records.helpers import (  # store, store_path: fast copies of a new store, on tmpfs
    DECEMBER,
    DECEMBER_TODAY,
    LAUNCH,
    MID_2020,
    casebook,
    count,
    person,
    store,  # noqa: F401
    store_path,  # noqa: F401
    table_snapshot,
    template_store_file,  # noqa: F401
)
from tracekit.errors import Conflict, NotFound, ValidationError
from tracekit.records import CallOutcome, Casebook, TraceStatus


@pytest.fixture
def cb(store) -> Casebook:
    return casebook(store)


@pytest.fixture
def case(cb):
    """Onset 18 October 2020: infectious 16 to 28 October."""
    return cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", symptom_onset="2020-10-18")


def contact(cb, case, name, **kwargs):
    kwargs.setdefault("last_exposure", "2020-10-19")
    kwargs.setdefault("setting", "social")
    exposure, _warnings = cb.add_contact(case.ref, person=person(name), **kwargs)
    return exposure


def risk_rank(cb, ref):
    return cb.store.conn.execute("SELECT risk_rank FROM exposures WHERE ref = ?", (ref,)).fetchone()[0]


# -- classification ----------------------------------------------------------------------

MID_2020_CASES = [
    # (setting, proximity_m, duration_min, face_to_face, direct_contact) -> (close, clause, risk rank)
    (("household", None, None, False, False), (True, "household", 0)),
    (("household", "5", "1", False, True), (True, "household", 0)),  # household comes first
    (("social", None, None, False, True), (True, "direct-contact", 1)),
    (("social", "1", None, True, False), (True, "face-to-face-1m", 2)),
    (("social", "0.5m", "0", True, False), (True, "face-to-face-1m", 2)),
    (("social", "1.01", "60", True, False), (True, "2m-15min", 4)),  # face to face but too far
    (("workplace", "1", "1", False, False), (True, "1m-1min", 3)),
    (("workplace", "1 m", "0.9", False, False), (False, None, 99)),
    (("workplace", "2", "16", False, False), (True, "2m-15min", 4)),
    (("workplace", "2", "15", False, False), (False, None, 99)),  # exactly 15 is not more than 15
    (("workplace", "2.1", "600", False, False), (False, None, 99)),
    (("education", None, "60", False, False), (False, None, 99)),  # distance not recorded
    (("travel", None, None, False, False), (True, "shared-vehicle", 5)),
    (("travel", "1", "1", False, False), (True, "1m-1min", 3)),  # 1m-1min ranks above the vehicle
    (("healthcare", None, None, True, False), (False, None, 99)),  # face to face, distance unknown
]


@pytest.mark.parametrize(("facts", "expected"), MID_2020_CASES)
def test_close_contact_classification_mid_2020(cb, case, facts, expected):
    setting, proximity, duration, face, direct = facts
    exposure = contact(
        cb,
        case,
        "Bea Potter",
        setting=setting,
        proximity_m=proximity,
        duration_min=duration,
        face_to_face=face,
        direct_contact=direct,
    )
    assert exposure.ruleset_id == MID_2020
    assert (exposure.close_contact, exposure.clause, risk_rank(cb, exposure.ref)) == expected
    assert cb.explain_contact(exposure).clause == expected[1]


LAUNCH_CASES = [
    (("household", None, None, False, False), (False, None, 99)),  # no household clause at launch
    (("travel", None, None, False, False), (False, None, 99)),  # nor a vehicle clause
    (("workplace", "1", "1", False, False), (False, None, 99)),  # nor 1m-1min
    (("social", "1", None, True, False), (True, "face-to-face-1m", 2)),
    (("social", None, None, False, True), (True, "direct-contact", 1)),
    (("workplace", "2", "16", False, False), (True, "2m-15min", 4)),
]


@pytest.mark.parametrize(("facts", "expected"), LAUNCH_CASES)
def test_close_contact_classification_at_launch(cb, facts, expected):
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-07-01", symptom_onset="2020-06-30")
    setting, proximity, duration, face, direct = facts
    exposure = contact(
        cb,
        case,
        "Bea Potter",
        last_exposure="2020-06-30",
        setting=setting,
        proximity_m=proximity,
        duration_min=duration,
        face_to_face=face,
        direct_contact=direct,
    )
    assert exposure.ruleset_id == LAUNCH
    assert (exposure.close_contact, exposure.clause, risk_rank(cb, exposure.ref)) == expected


def test_exposure_facts_are_stored_as_given(cb, case):
    exposure = contact(
        cb,
        case,
        "Bea Potter",
        setting=" WorkPlace ",
        proximity_m="1.5 m",
        duration_min="20min",
        face_to_face="yes",
        direct_contact="no",
        notes="  met at the office\nsecond line  ",
    )
    assert (exposure.setting, exposure.proximity_m, exposure.duration_min) == ("workplace", 1.5, 20.0)
    assert (exposure.face_to_face, exposure.direct_contact) == (True, False)
    assert exposure.notes == "met at the office\nsecond line"
    assert exposure.trace_status is TraceStatus.NOT_YET_REACHED
    assert exposure.case_ref == case.ref
    assert exposure.calls == []
    assert cb.get_contact(exposure.ref) == exposure


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"setting": "pub"}, "setting"),
        ({"proximity_m": "close"}, "proximity_m"),
        ({"proximity_m": "-1"}, "proximity_m"),
        ({"duration_min": "nan"}, "duration_min"),
        ({"face_to_face": "maybe"}, "face_to_face"),
        ({"last_exposure": "2020-11-02"}, "last_exposure"),  # the future
        ({"last_exposure": ""}, "last_exposure"),  # required
        ({"setting": ""}, "setting"),  # required
    ],
)
def test_add_contact_validation_names_the_field(cb, case, kwargs, field):
    before = table_snapshot(cb.store)
    with pytest.raises(ValidationError) as info:
        contact(cb, case, "Bea Potter", **kwargs)
    assert info.value.field == field
    assert table_snapshot(cb.store) == before


# -- isolation dates and warnings ---------------------------------------------------------


def test_contact_isolates_14_days_from_the_day_after_exposure(cb, case):
    exposure = contact(cb, case, "Bea Potter", last_exposure="2020-10-19", setting="household")
    assert exposure.isolation_end == date(2020, 11, 2)


def test_a_contact_who_is_not_close_has_no_isolation(cb, case):
    """Issue 14: 'not a close contact; isolate until ...' could be read out to them."""
    far = contact(cb, case, "Nat Far", setting="workplace", proximity_m="5", last_exposure="2020-10-19")
    assert (far.close_contact, far.isolation_end) == (False, None)
    assert cb.get_contact(far.ref).to_json()["isolation_end"] is None
    assert [e.isolation_end for e in cb.list_contacts().items] == [None]
    # Becoming close (the distance corrected) gives the date; and back again takes it away.
    near, _ = cb.update_contact(far.ref, proximity_m="0.5", duration_min="20")
    assert near.isolation_end == date(2020, 11, 2)
    again, _ = cb.update_contact(far.ref, proximity_m="5")
    assert again.isolation_end is None
    # Still a contact to call, but not one whose isolation ends.
    assert far.ref in [e.ref for e in cb.worklist(date(2020, 10, 25)).to_call]
    assert cb.worklist(date(2020, 11, 2)).isolation_ends_today == []


@pytest.mark.parametrize(
    ("last_exposure", "ruleset", "isolation_end"),
    [
        ("2020-12-13", MID_2020, date(2020, 12, 27)),  # 14 days before 14 December 2020
        ("2020-12-14", DECEMBER, date(2020, 12, 24)),  # 10 days from 14 December 2020
    ],
)
def test_contact_isolation_changes_on_14_december(store, last_exposure, ruleset, isolation_end):
    cb = casebook(store, DECEMBER_TODAY)
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-12-15", symptom_onset="2020-12-13")
    exposure, warnings = cb.add_contact(
        case.ref, person=person("Bea Potter"), last_exposure=last_exposure, setting="household"
    )
    assert (exposure.ruleset_id, exposure.isolation_end) == (ruleset, isolation_end)
    assert warnings == []


@pytest.mark.parametrize(
    ("last_exposure", "warned"),
    [("2020-10-15", True), ("2020-10-16", False), ("2020-10-28", False), ("2020-10-29", True)],
)
def test_exposure_outside_the_infectious_period_is_recorded_with_a_warning(cb, case, last_exposure, warned):
    exposure, warnings = cb.add_contact(
        case.ref, person=person("Bea Potter"), last_exposure=last_exposure, setting="social"
    )
    assert cb.get_contact(exposure.ref).last_exposure == date.fromisoformat(last_exposure)
    if warned:
        assert len(warnings) == 1
        assert case.ref in warnings[0] and "outside" in warnings[0]
        assert "2020-10-16 to 2020-10-28" in warnings[0]
    else:
        assert warnings == []


# -- refusals ----------------------------------------------------------------------------


def test_same_person_twice_for_one_case_is_a_conflict(cb, case):
    first = contact(cb, case, "Bea Potter")
    before = table_snapshot(cb.store)
    with pytest.raises(Conflict) as info:
        cb.add_contact(case.ref, person_ref=first.contact.ref, last_exposure="2020-10-20", setting="household")
    assert first.ref in str(info.value)
    assert table_snapshot(cb.store) == before


def test_same_person_can_be_a_contact_of_two_cases(cb, case):
    first = contact(cb, case, "Bea Potter")
    other = cb.add_case(person=person("Cyril Potter"), test_date="2020-10-20", asymptomatic=True)
    second, _ = cb.add_contact(other.ref, person_ref=first.contact.ref, last_exposure="2020-10-20", setting="household")
    assert second.contact.ref == first.contact.ref
    assert second.case_ref == other.ref


@pytest.mark.parametrize("how", ["person_ref", "link"])
def test_a_case_cannot_be_its_own_contact(cb, case, how):
    before = table_snapshot(cb.store)
    with pytest.raises(Conflict, match="own contact"):
        cb.add_contact(case.ref, last_exposure="2020-10-19", setting="household", **{how: case.person.ref})
    assert table_snapshot(cb.store) == before


def test_contacts_of_a_referred_case_are_refused(cb, case):
    with cb.store.transaction() as conn:
        conn.execute("UPDATE cases SET status = 'referred' WHERE ref = ?", (case.ref,))
    before = table_snapshot(cb.store)
    with pytest.raises(Conflict, match="referred"):
        contact(cb, case, "Bea Potter")
    assert table_snapshot(cb.store) == before


def test_contact_of_unknown_case_is_not_found(cb):
    with pytest.raises(NotFound, match="C-7K2M9Q"):
        cb.add_contact("C-7K2M9Q", person=person("Bea Potter"), last_exposure="2020-10-19", setting="social")
    assert count(cb.store, "people") == 0


# -- list_contacts -----------------------------------------------------------------------


@pytest.fixture
def listed(cb, case):
    other = cb.add_case(person=person("Other Case"), test_date="2020-10-20", asymptomatic=True)
    made = {
        "household": contact(cb, case, "Hal House", setting="household", last_exposure="2020-10-18"),
        "far": contact(
            cb, case, "Fay Far", setting="workplace", proximity_m="3", duration_min="60", last_exposure="2020-10-20"
        ),
        "vehicle": contact(cb, other, "Val Van", setting="travel", last_exposure="2020-10-22"),
        "same_day": contact(cb, other, "Sam Same", setting="social", last_exposure="2020-10-20"),
    }
    return other, made


def test_list_contacts_orders_by_latest_exposure_then_newest(cb, case, listed):
    _other, made = listed
    page = cb.list_contacts()
    assert [e.ref for e in page.items] == [made[k].ref for k in ("vehicle", "same_day", "far", "household")]
    assert (page.total, page.limit, page.offset) == (4, 50, 0)


def test_list_contacts_filters(cb, case, listed):
    other, made = listed

    def refs(**kwargs):
        return {e.ref for e in cb.list_contacts(**kwargs).items}

    assert refs(case_ref=case.ref) == {made["household"].ref, made["far"].ref}
    assert refs(case_ref=other.ref) == {made["vehicle"].ref, made["same_day"].ref}
    assert refs(close_only=True) == {made["household"].ref, made["vehicle"].ref}
    assert refs(setting="Travel") == {made["vehicle"].ref}
    assert refs(since="2020-10-20") == {made["far"].ref, made["vehicle"].ref, made["same_day"].ref}
    assert refs(until=date(2020, 10, 20)) == {made["far"].ref, made["household"].ref, made["same_day"].ref}
    assert refs(since="20/10/2020", until="2020-10-20") == {made["far"].ref, made["same_day"].ref}
    assert refs(case_ref=case.ref, close_only=True) == {made["household"].ref}
    cb.log_call(made["far"].ref, "reached")
    assert refs(status="reached") == {made["far"].ref}
    assert refs(status="not yet reached") == {made["household"].ref, made["vehicle"].ref, made["same_day"].ref}


def test_list_contacts_paging(cb, case, listed):
    _other, made = listed
    page = cb.list_contacts(limit=1, offset=1)
    assert [e.ref for e in page.items] == [made["same_day"].ref]
    assert page.total == 4
    filtered = cb.list_contacts(close_only=True, limit=1)
    assert filtered.total == 2 and len(filtered.items) == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"status": "called"}, "trace_status"),
        ({"setting": "pub"}, "setting"),
        ({"since": "last week"}, "since"),
        ({"until": "31/02/2020"}, "until"),
        ({"case_ref": "E-7K2M9Q"}, "reference"),
    ],
)
def test_list_contacts_invalid_filters_name_the_field(cb, listed, kwargs, field):
    with pytest.raises(ValidationError) as info:
        cb.list_contacts(**kwargs)
    assert info.value.field == field


def test_list_contacts_of_unknown_case_is_not_found(cb):
    with pytest.raises(NotFound):
        cb.list_contacts(case_ref="C-7K2M9Q")


# -- update_contact ----------------------------------------------------------------------


def test_update_contact_recomputes_rule_values(cb, case):
    exposure = contact(cb, case, "Bea Potter", setting="workplace", proximity_m="3", duration_min="60")
    assert (exposure.close_contact, risk_rank(cb, exposure.ref)) == (False, 99)

    closer, warnings = cb.update_contact(exposure.ref, proximity_m="1.5")
    assert (closer.close_contact, closer.clause, risk_rank(cb, exposure.ref)) == (True, "2m-15min", 4)
    assert warnings == []  # the date did not change

    household, _ = cb.update_contact(exposure.ref, setting="household")
    assert (household.clause, risk_rank(cb, exposure.ref)) == ("household", 0)
    assert household.proximity_m == 1.5 and household.duration_min == 60  # kept

    earlier, warnings = cb.update_contact(exposure.ref, last_exposure="2020-07-29")
    assert earlier.ruleset_id == LAUNCH
    assert (earlier.close_contact, earlier.clause) == (True, "2m-15min")  # no household clause then
    assert earlier.isolation_end == date(2020, 8, 12)
    assert len(warnings) == 1 and "outside" in warnings[0]

    back, warnings = cb.update_contact(exposure.ref, last_exposure="2020-10-19")
    assert (back.ruleset_id, back.clause, back.isolation_end, warnings) == (
        MID_2020,
        "household",
        date(2020, 11, 2),
        [],
    )
    cb.update_contact(exposure.ref, setting="workplace")
    flags, _ = cb.update_contact(exposure.ref, face_to_face=True, proximity_m="0.5")
    assert (flags.face_to_face, flags.clause) == (True, "face-to-face-1m")
    cleared, _ = cb.update_contact(exposure.ref, face_to_face=False)
    assert (cleared.face_to_face, cleared.clause) == (False, "1m-1min")
    assert cb.get_contact(exposure.ref) == cleared


def test_update_contact_trace_status_and_notes(cb, case):
    exposure = contact(cb, case, "Bea Potter")
    updated, _ = cb.update_contact(exposure.ref, trace_status="Isolating", notes="agreed to isolate")
    assert updated.trace_status is TraceStatus.ISOLATING
    assert updated.notes == "agreed to isolate"


def test_update_contact_refusals(cb, case):
    exposure = contact(cb, case, "Bea Potter")
    with pytest.raises(ValidationError) as info:
        cb.update_contact(exposure.ref)
    assert info.value.field == "changes"
    with pytest.raises(ValidationError) as info:
        cb.update_contact(exposure.ref, trace_status="found")
    assert info.value.field == "trace_status"
    with pytest.raises(ValidationError) as info:
        cb.update_contact(exposure.ref, last_exposure="2020-11-02")
    assert info.value.field == "last_exposure"
    with pytest.raises(NotFound):
        cb.update_contact("E-7K2M9Q", notes="x")
    assert cb.get_contact(exposure.ref) == exposure


# -- the call log ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        ("no-answer", TraceStatus.NOT_YET_REACHED),
        ("voicemail", TraceStatus.NOT_YET_REACHED),
        ("reached", TraceStatus.REACHED),
        ("isolating", TraceStatus.ISOLATING),
        ("declined", TraceStatus.DECLINED),
        ("unreachable", TraceStatus.UNREACHABLE),
        ("wrong-number", TraceStatus.UNREACHABLE),
        (" Wrong-Number ", TraceStatus.UNREACHABLE),
        ("REACHED", TraceStatus.REACHED),
    ],
)
def test_call_outcome_sets_trace_status(cb, case, outcome, status):
    exposure = contact(cb, case, "Bea Potter")
    logged = cb.log_call(exposure.ref, outcome)
    assert logged.trace_status is status
    assert [c.outcome for c in logged.calls] == [CallOutcome(outcome.strip().lower())]
    assert cb.get_contact(exposure.ref).trace_status is status


def test_no_answer_does_not_undo_an_earlier_status(cb, case):
    exposure = contact(cb, case, "Bea Potter")
    cb.log_call(exposure.ref, "isolating")
    assert cb.log_call(exposure.ref, "no-answer").trace_status is TraceStatus.ISOLATING


def test_calls_are_kept_in_order_with_notes(cb, case):
    exposure = contact(cb, case, "Bea Potter")
    cb.log_call(exposure.ref, "no-answer", note="rang twice")
    cb.log_call(exposure.ref, "voicemail")
    final = cb.log_call(exposure.ref, "reached", note="  will isolate  ")
    assert [(c.outcome, c.note) for c in final.calls] == [
        (CallOutcome.NO_ANSWER, "rang twice"),
        (CallOutcome.VOICEMAIL, None),
        (CallOutcome.REACHED, "will isolate"),
    ]
    assert [c.at for c in final.calls] == sorted(c.at for c in final.calls)
    assert cb.get_contact(exposure.ref).calls == final.calls
    assert count(cb.store, "call_attempts") == 3


def test_unknown_outcome_lists_the_allowed_ones(cb, case):
    exposure = contact(cb, case, "Bea Potter")
    before = table_snapshot(cb.store)
    with pytest.raises(ValidationError) as info:
        cb.log_call(exposure.ref, "hung-up")
    assert info.value.field == "outcome"
    for allowed in CallOutcome:
        assert allowed.value in str(info.value)
    assert table_snapshot(cb.store) == before


def test_call_on_unknown_contact_is_not_found(cb):
    with pytest.raises(NotFound):
        cb.log_call("E-7K2M9Q", "reached")


# -- promote_contact and the transmission tree ---------------------------------------------


@pytest.fixture
def chain(cb):
    """Ada (C1) -> Bea (C2) -> Cyd (C3) -> Dot (uncased); Eve is an uncased contact of C1."""
    c1 = cb.add_case(person=person("Ada Root"), test_date="2020-10-11", symptom_onset="2020-10-10")
    e_bea = contact(cb, c1, "Bea Middle", last_exposure="2020-10-12", setting="household")
    e_eve = contact(cb, c1, "Eve Aside", last_exposure="2020-10-11", setting="social")
    c2 = cb.promote_contact(e_bea.contact.ref, test_date="2020-10-16", symptom_onset="2020-10-15")
    e_cyd = contact(cb, c2, "Cyd Lower", last_exposure="2020-10-16", setting="household")
    c3 = cb.promote_contact(e_cyd.contact.ref, test_date="2020-10-22", asymptomatic=True)
    e_dot = contact(cb, c3, "Dot Leaf", last_exposure="2020-10-22", setting="household")
    return {"c1": c1, "c2": c2, "c3": c3, "bea": e_bea, "eve": e_eve, "cyd": e_cyd, "dot": e_dot}


def test_promoted_contact_records_the_exposure(cb, chain):
    c2 = chain["c2"]
    assert c2.person.ref == chain["bea"].contact.ref
    assert c2.source_exposure_ref == chain["bea"].ref
    assert (c2.symptom_onset, c2.isolation_end) == (date(2020, 10, 15), date(2020, 10, 25))
    assert chain["c3"].source_exposure_ref == chain["cyd"].ref
    assert chain["c3"].asymptomatic


def test_case_tree_from_a_grandchild_finds_the_root(cb, chain):
    root, highlight = cb.case_tree(chain["c3"].ref)
    assert highlight == chain["c3"].id
    assert root.case.ref == chain["c1"].ref and root.via is None
    assert [e.ref for e in root.uncased_contacts] == [chain["eve"].ref]
    [child] = root.children
    assert child.case.ref == chain["c2"].ref
    assert child.via.ref == chain["bea"].ref
    assert child.uncased_contacts == []
    [grandchild] = child.children
    assert grandchild.case.ref == chain["c3"].ref
    assert grandchild.via.ref == chain["cyd"].ref
    assert grandchild.children == []
    assert [e.ref for e in grandchild.uncased_contacts] == [chain["dot"].ref]


def test_case_tree_from_the_root_and_the_middle(cb, chain):
    for start in ("c1", "c2"):
        root, highlight = cb.case_tree(chain[start].ref)
        assert root.case.ref == chain["c1"].ref
        assert highlight == chain[start].id


def test_case_tree_of_a_lone_case(cb, case):
    root, highlight = cb.case_tree(case.ref)
    assert (root.case.ref, highlight, root.children, root.uncased_contacts) == (case.ref, case.id, [], [])


def test_promote_uses_the_most_recent_exposure(cb, case):
    first = contact(cb, case, "Bea Potter", last_exposure="2020-10-17")
    other = cb.add_case(person=person("Other Case"), test_date="2020-10-20", asymptomatic=True)
    latest, _ = cb.add_contact(other.ref, person_ref=first.contact.ref, last_exposure="2020-10-19", setting="social")
    promoted = cb.promote_contact(first.contact.ref, test_date="2020-10-25", asymptomatic=True)
    assert promoted.source_exposure_ref == latest.ref


def test_promoting_someone_who_is_not_a_contact_is_a_conflict(cb, case):
    before = table_snapshot(cb.store)
    with pytest.raises(Conflict, match="not a contact"):
        cb.promote_contact(case.person.ref, test_date="2020-10-25", asymptomatic=True)
    assert table_snapshot(cb.store) == before


def test_promoting_someone_with_an_open_case_is_a_conflict(cb, chain):
    before = table_snapshot(cb.store)
    with pytest.raises(Conflict) as info:
        cb.promote_contact(chain["bea"].contact.ref, test_date="2020-10-25", asymptomatic=True)
    assert chain["c2"].ref in str(info.value)
    assert table_snapshot(cb.store) == before
    # Once that case is closed, a new case can be opened for a new infection.
    cb.close_case(chain["c2"].ref)
    again = cb.promote_contact(chain["bea"].contact.ref, test_date="2020-10-30", asymptomatic=True)
    assert again.source_exposure_ref == chain["bea"].ref


def test_promote_validates_like_add_case(cb, case):
    exposure = contact(cb, case, "Bea Potter")
    with pytest.raises(ValidationError) as info:
        cb.promote_contact(exposure.contact.ref, test_date="2020-10-25")
    assert info.value.field == "symptom_onset"
    assert count(cb.store, "cases") == 1


# -- the worklist ------------------------------------------------------------------------


@pytest.fixture
def worklist_contacts(cb, case):
    return {
        "not_close_recent": contact(
            cb, case, "Nat Far", setting="workplace", proximity_m="5", last_exposure="2020-10-27"
        ),
        "m2_old": contact(
            cb, case, "Moe Twoold", setting="workplace", proximity_m="2", duration_min="30", last_exposure="2020-10-19"
        ),
        "m2_new": contact(
            cb, case, "Meg Twonew", setting="workplace", proximity_m="2", duration_min="30", last_exposure="2020-10-25"
        ),
        "face": contact(
            cb, case, "Fin Face", setting="social", proximity_m="0.5", face_to_face=True, last_exposure="2020-10-18"
        ),
        "house_old": contact(cb, case, "Hal Old", setting="household", last_exposure="2020-10-19"),
        "house_new": contact(cb, case, "Hep New", setting="household", last_exposure="2020-10-20"),
    }


@pytest.mark.parametrize("sort_up_to", [0, 1000])  # walk the worklist index, or find and sort
def test_worklist_orders_by_risk_then_most_recent_exposure(cb, worklist_contacts, monkeypatch, sort_up_to):
    monkeypatch.setattr("tracekit.records.casebook._SORT_WAITING_UP_TO", sort_up_to)
    w = cb.worklist()
    assert w.day == date(2020, 11, 1)
    order = ["house_new", "house_old", "face", "m2_new", "m2_old", "not_close_recent"]
    assert [e.ref for e in w.to_call] == [worklist_contacts[k].ref for k in order]
    assert w.to_call_total == 6


def test_worklist_leaves_out_contacts_whose_isolation_is_over(cb, worklist_contacts):
    """Exposed 19 Oct: isolation ends at the end of 2 Nov; on 3 Nov there is no call to make."""
    on_3_november = [e.ref for e in cb.worklist(date(2020, 11, 3)).to_call]
    assert worklist_contacts["house_old"].ref not in on_3_november
    assert worklist_contacts["house_new"].ref in on_3_november


def test_worklist_limit_keeps_the_total(cb, worklist_contacts):
    w = cb.worklist(limit=2)
    assert [e.ref for e in w.to_call] == [worklist_contacts["house_new"].ref, worklist_contacts["house_old"].ref]
    assert w.to_call_total == 6


@pytest.mark.parametrize(
    ("cap", "total", "capped"), [(0, 0, True), (2, 2, True), (5, 5, True), (6, 6, False), (100, 6, False)]
)
def test_worklist_can_count_up_to_a_cap(cb, worklist_contacts, cap, total, capped):
    w = cb.worklist(limit=2, count_up_to=cap)
    assert (w.to_call_total, w.to_call_total_capped) == (total, capped)
    assert len(w.to_call) == 2  # the list itself is not capped by the count
    assert "to_call_total_capped" not in w.to_json()


def test_reached_contacts_leave_the_to_call_list(cb, worklist_contacts):
    cb.log_call(worklist_contacts["house_new"].ref, "reached")
    cb.log_call(worklist_contacts["face"].ref, "no-answer")  # still to call
    cb.log_call(worklist_contacts["m2_new"].ref, "declined")
    w = cb.worklist()
    refs = [e.ref for e in w.to_call]
    assert worklist_contacts["house_new"].ref not in refs
    assert worklist_contacts["m2_new"].ref not in refs
    assert worklist_contacts["face"].ref in refs
    assert w.to_call_total == 4 == len(refs)


def test_isolation_ends_today(cb, worklist_contacts):
    # Exposure on 19 October: 14 days from the day after, to the end of 2 November.
    w = cb.worklist(day=date(2020, 11, 2))
    assert w.day == date(2020, 11, 2)
    assert [e.ref for e in w.isolation_ends_today] == [worklist_contacts[k].ref for k in ("house_old", "m2_old")]
    # Reached contacts still appear in the isolation-ends list.
    cb.log_call(worklist_contacts["house_old"].ref, "reached")
    assert len(cb.worklist(day=date(2020, 11, 2)).isolation_ends_today) == 2
    # The default day is the case book's today (1 November: exposure on 18 October).
    assert [e.ref for e in cb.worklist().isolation_ends_today] == [worklist_contacts["face"].ref]
    assert cb.worklist(day=date(2020, 10, 30)).isolation_ends_today == []


def test_worklist_of_an_empty_store(cb):
    w = cb.worklist()
    assert (w.to_call, w.isolation_ends_today, w.to_call_total) == ([], [], 0)


def test_worklist_for_a_past_day_leaves_out_later_exposures(cb, worklist_contacts):
    """Issue 14: the list for 22 Oct shows only what was known then: the contacts exposed
    on 25 and 27 Oct are not yet anyone to call."""
    w = cb.worklist(date(2020, 10, 22))
    refs = [e.ref for e in w.to_call]
    assert worklist_contacts["m2_new"].ref not in refs
    assert worklist_contacts["not_close_recent"].ref not in refs
    assert refs == [worklist_contacts[k].ref for k in ("house_new", "house_old", "face", "m2_old")]
    assert w.to_call_total == 4
    # The day of the exposure itself counts.
    assert worklist_contacts["m2_new"].ref in [e.ref for e in cb.worklist(date(2020, 10, 25)).to_call]


def test_worklist_for_a_past_day_still_calls_someone_who_became_a_case_later(cb, worklist_contacts):
    bea = worklist_contacts["m2_old"]
    cb.promote_contact(bea.contact.ref, test_date="2020-10-28", asymptomatic=True)
    assert bea.ref in [e.ref for e in cb.worklist(date(2020, 10, 22)).to_call]
    assert bea.ref not in [e.ref for e in cb.worklist(date(2020, 10, 28)).to_call]


def test_promote_by_exposure_records_that_exposure(cb, case):
    """Issue 14: promoting by the E- reference records that exposure, even when the
    person has a more recent one."""
    first = contact(cb, case, "Bea Potter", last_exposure="2020-10-17")
    other = cb.add_case(person=person("Other Case"), test_date="2020-10-20", asymptomatic=True)
    latest, _ = cb.add_contact(other.ref, person_ref=first.contact.ref, last_exposure="2020-10-19", setting="social")
    promoted = cb.promote_contact(first.ref, test_date="2020-10-25", asymptomatic=True)
    assert (promoted.person.ref, promoted.source_exposure_ref) == (first.contact.ref, first.ref)
    assert promoted.source_exposure_ref != latest.ref


def test_promote_by_person_with_a_named_source(cb, case):
    first = contact(cb, case, "Bea Potter", last_exposure="2020-10-17")
    stranger = contact(cb, case, "Sam Stranger")
    other = cb.add_case(person=person("Other Case"), test_date="2020-10-20", asymptomatic=True)
    cb.add_contact(other.ref, person_ref=first.contact.ref, last_exposure="2020-10-19", setting="social")
    before = table_snapshot(cb.store)
    with pytest.raises(Conflict, match=f"{stranger.ref} is not an exposure of {first.contact.ref}"):
        cb.promote_contact(first.contact.ref, source=stranger.ref, test_date="2020-10-25", asymptomatic=True)
    with pytest.raises(ValidationError, match="another exposure"):
        cb.promote_contact(first.ref, source=stranger.ref, test_date="2020-10-25", asymptomatic=True)
    with pytest.raises(ValidationError) as info:
        cb.promote_contact(case.ref, test_date="2020-10-25", asymptomatic=True)
    assert info.value.field == "reference"
    assert table_snapshot(cb.store) == before
    promoted = cb.promote_contact(first.contact.ref, source=first.ref, test_date="2020-10-25", asymptomatic=True)
    assert promoted.source_exposure_ref == first.ref
