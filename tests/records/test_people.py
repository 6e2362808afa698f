"""People in the case book: duplicate detection, search, updates and merges.

Includes what a merge or a rename leaves behind in the search index's shadow tables:
the index is a contentless FTS5 trigram table, so a person's name exists in the store
only as trigram terms inside ``people_fts_data`` blocks.
"""

from __future__ import annotations

from datetime import date

import pytest

from tests.records.helpers import (  # store, store_path: fast copies of a new store, on tmpfs
    NHS_NUMBERS,
    casebook,
    count,
    e164,
    fts_blobs,
    fts_terms,
    person,
    phone,
    store,  # noqa: F401
    store_path,  # noqa: F401
    table_snapshot,
    template_store_file,  # noqa: F401
)
from tracekit.errors import Conflict, NotFound, ValidationError
from tracekit.records import Casebook, DuplicatePerson, PersonInput


@pytest.fixture
def cb(store) -> Casebook:
    return casebook(store)


@pytest.fixture
def ada(cb):
    """A case whose person has every identifier the duplicate checks look at."""
    return cb.add_case(
        person=person(
            "Zoë Ångström",
            date_of_birth="1985-12-10",
            nhs_number=NHS_NUMBERS[0],
            phone=phone(1),
            postcode="SW1A 1AA",
        ),
        test_date="2020-10-20",
        symptom_onset="2020-10-18",
    )


# -- duplicates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("details", "reasons"),
    [
        ({"name": "Someone Else", "nhs_number": "999-000-0018"}, ["same NHS number"]),
        ({"name": "ZOE ANGSTROM", "date_of_birth": "10/12/1985"}, ["same name and date of birth"]),
        ({"name": "  zoe   ångström ", "date_of_birth": "10 Dec 1985"}, ["same name and date of birth"]),
        ({"name": "Someone Else", "phone": "+44 7700 900001"}, ["same phone"]),
        (
            {"name": "Zoe Angstrom", "date_of_birth": "1985-12-10", "nhs_number": NHS_NUMBERS[0], "phone": phone(1)},
            ["same NHS number", "same name and date of birth", "same phone"],
        ),
    ],
)
def test_duplicate_person_is_refused_with_matches_and_reasons(cb, ada, details, reasons):
    before = table_snapshot(cb.store)
    with pytest.raises(DuplicatePerson) as info:
        cb.add_case(person=PersonInput(**details), test_date="2020-10-21", asymptomatic=True)
    assert isinstance(info.value, Conflict)
    assert [(m.person.ref, m.reasons) for m in info.value.matches] == [(ada.person.ref, reasons)]
    assert ada.person.ref in str(info.value)
    # The message names references only, never the details that matched.
    for value in ("Zoë", "Ångström", "7700", "999", "1985"):
        assert value not in str(info.value)
    # Nothing was written: no person, no case, no search-index entry, no audit entry.
    assert table_snapshot(cb.store) == before


def test_find_duplicates_reports_without_writing(cb, ada):
    before = table_snapshot(cb.store)
    matches = cb.find_duplicates(PersonInput(phone=e164(1)))
    assert [(m.person.ref, m.reasons) for m in matches] == [(ada.person.ref, ["same phone"])]
    assert cb.find_duplicates(PersonInput(phone=phone(2))) == []
    assert table_snapshot(cb.store) == before


def test_same_name_without_date_of_birth_is_not_a_duplicate(cb, ada):
    case = cb.add_case(person=person("Zoe Angstrom"), test_date="2020-10-21", asymptomatic=True)
    assert case.person.ref != ada.person.ref
    # Same name, different date of birth: not a duplicate either.
    other = cb.add_case(
        person=person("Zoe Angstrom", date_of_birth="1990-01-01"), test_date="2020-10-21", asymptomatic=True
    )
    assert other.person.ref not in (ada.person.ref, case.person.ref)


def test_duplicates_of_several_people_are_all_listed(cb, ada):
    bea = cb.add_case(person=person("Bea Lovelace", phone=phone(2)), test_date="2020-10-20", asymptomatic=True)
    with pytest.raises(DuplicatePerson) as info:
        cb.add_case(
            person=person("New Person", nhs_number=NHS_NUMBERS[0], phone=phone(2)),
            test_date="2020-10-21",
            asymptomatic=True,
        )
    assert sorted((m.person.ref, tuple(m.reasons)) for m in info.value.matches) == sorted(
        [(ada.person.ref, ("same NHS number",)), (bea.person.ref, ("same phone",))]
    )


def test_link_uses_the_existing_person(cb, ada):
    cb.close_case(ada.ref)
    case = cb.add_case(
        person=person("Zoe Angstrom", phone=phone(1)), link=ada.person.ref, test_date="2020-10-25", asymptomatic=True
    )
    assert case.person.id == ada.person.id
    assert count(cb.store, "people") == 1


def test_new_person_adds_anyway(cb, ada):
    case = cb.add_case(
        person=person("Someone Else", phone=phone(1)), new_person=True, test_date="2020-10-25", asymptomatic=True
    )
    assert case.person.ref != ada.person.ref
    assert case.person.phone == e164(1)
    assert count(cb.store, "people") == 2


def test_duplicate_contact_details_are_refused_on_add_contact_too(cb, ada):
    other = cb.add_case(person=person("Case Two"), test_date="2020-10-20", asymptomatic=True)
    before = table_snapshot(cb.store)
    with pytest.raises(DuplicatePerson) as info:
        cb.add_contact(
            other.ref, person=person("Z Angstrom", phone=phone(1)), last_exposure="2020-10-19", setting="social"
        )
    assert [m.person.ref for m in info.value.matches] == [ada.person.ref]
    assert table_snapshot(cb.store) == before
    exposure, _ = cb.add_contact(other.ref, link=ada.person.ref, last_exposure="2020-10-19", setting="social")
    assert exposure.contact.ref == ada.person.ref


# -- get_person / update_person ----------------------------------------------------------


def test_get_person_unknown_is_not_found(cb):
    with pytest.raises(NotFound, match="P-7K2M9Q"):
        cb.get_person("p 7k2m 9q")


def test_update_person_changes_details_and_reindexes_search(cb, ada):
    updated = cb.update_person(ada.person.ref, PersonInput(name="Quentin Blake", phone=phone(9), postcode="ec1a 1bb"))
    assert (updated.name, updated.phone, updated.postcode) == ("Quentin Blake", e164(9), "EC1A 1BB")
    assert updated.nhs_number == NHS_NUMBERS[0]  # untouched
    assert cb.get_person(ada.person.ref) == updated
    assert [p.ref for p in cb.search_people("Quentin")] == [ada.person.ref]
    assert [p.ref for p in cb.search_people("07700 900009")] == [ada.person.ref]
    assert [p.ref for p in cb.search_people("EC1A1BB")] == [ada.person.ref]
    assert cb.search_people("Ångström") == []
    assert cb.search_people("angstrom") == []
    assert cb.search_people("07700 900001") == []
    assert cb.search_people("SW1A 1AA") == []
    # The duplicate check follows the new name (its name key is updated too).
    assert [
        m.person.ref for m in cb.find_duplicates(PersonInput(name="QUENTIN BLAKE", date_of_birth="1985-12-10"))
    ] == [ada.person.ref]
    assert cb.find_duplicates(PersonInput(name="Zoe Angstrom", date_of_birth="1985-12-10")) == []


def test_update_person_needs_a_change_and_valid_values(cb, ada):
    with pytest.raises(ValidationError) as info:
        cb.update_person(ada.person.ref, PersonInput())
    assert info.value.field == "changes"
    with pytest.raises(ValidationError) as info:
        cb.update_person(ada.person.ref, PersonInput(nhs_number="9990000019"))
    assert info.value.field == "nhs_number"
    assert cb.get_person(ada.person.ref) == ada.person


# -- search ------------------------------------------------------------------------------


@pytest.fixture
def people(cb, ada):
    bea = cb.add_case(
        person=person("Beatrix Potter", phone=phone(2), nhs_number=NHS_NUMBERS[1], postcode="EC1A 1BB"),
        test_date="2020-10-20",
        asymptomatic=True,
    ).person
    cy = cb.add_case(person=person("Cyril Potter"), test_date="2020-10-20", asymptomatic=True).person
    return {"ada": ada.person, "bea": bea, "cy": cy}


@pytest.mark.parametrize(
    ("query", "who"),
    [
        ("Beatrix", {"bea"}),
        ("atri", {"bea"}),  # a substring in the middle of a name
        ("potter", {"bea", "cy"}),
        ("POTTER", {"bea", "cy"}),
        ("zoe", {"ada"}),  # accents are ignored
        ("Ångström", {"ada"}),
        ("07700 900002", {"bea"}),  # national form with a space
        ("07700900002", {"bea"}),
        ("+44 7700 900002", {"bea"}),  # E.164 with spaces
        ("+447700900002", {"bea"}),
        ("07700 90000", {"ada", "bea"}),  # the start of a number, national form
        ("+44 7700 90000", {"ada", "bea"}),  # and international form
        ("900002", {"bea"}),  # the end of a number
        ("999 000 0026", {"bea"}),  # NHS number with spaces
        ("9990000026", {"bea"}),
        ("EC1A 1BB", {"bea"}),  # postcode with and without the space, any case
        ("ec1a1bb", {"bea"}),
        ("ec1a 1bb", {"bea"}),
        ("sw1a1aa", {"ada"}),
        ("Nobody Here", set()),
    ],
)
def test_search_people(cb, people, query, who):
    assert {p.ref for p in cb.search_people(query)} == {people[name].ref for name in who}


def test_search_limit(cb, people):
    assert len(cb.search_people("potter", limit=1)) == 1


@pytest.mark.parametrize("window", [1, 2, 3, 5, 2048])
def test_search_finds_the_newest_matches_first_whatever_the_window(cb, monkeypatch, window):
    """The search looks among the newest people first and widens its range: the answer
    must be exactly the newest matches, in order, for any window and limit."""
    from tracekit.records import casebook as casebook_module

    names = ["Potter", "Smith", "Potts", "Potter", "Jones", "Potter", "Smith", "Potterton", "Jones", "Potter"]
    made = [
        cb.add_case(person=person(f"Ann{chr(97 + i)} {surname}"), test_date="2020-10-20", asymptomatic=True).person
        for i, surname in enumerate(names)
    ]
    monkeypatch.setattr(casebook_module, "_SEARCH_WINDOW", window)
    for query, limit in [
        ("potter", 1),
        ("potter", 3),
        ("potter", 20),
        ("pott", 2),
        ("smith", 5),
        ("jones", 1),
        ("nobody", 3),
    ]:
        expected = [p.ref for p in reversed(made) if query in p.name.lower()][:limit]
        assert [p.ref for p in cb.search_people(query, limit=limit)] == expected, (query, limit)


@pytest.mark.parametrize("query", ["ab", " AB ", "x", "!!", "é"])
def test_too_short_search_is_refused(cb, people, query):
    with pytest.raises(ValidationError) as info:
        cb.search_people(query)
    assert info.value.field == "search"


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_search_is_refused_as_too_short(cb, query):
    with pytest.raises(ValidationError) as info:
        cb.search_people(query)
    assert info.value.field == "search"


@pytest.mark.parametrize("query", ['"potter', "potter OR zoe", "NEAR(a b)", "pot*", "'); DROP TABLE people; --"])
def test_search_text_is_not_an_fts_query(cb, people, query):
    """Quotes and FTS operators are searched for literally, never parsed."""
    results = cb.search_people(query)
    if query in ('"potter', "pot*"):  # punctuation is dropped from the compact variant
        assert {p.ref for p in results} == {people["bea"].ref, people["cy"].ref}
    else:
        assert results == []
    assert count(cb.store, "people") == 3


# -- merge -------------------------------------------------------------------------------


def test_merge_moves_cases_and_exposures_and_keeps_the_old_reference(cb, ada):
    # "other" was recorded separately as a contact of another case, with a phone.
    index_case = cb.add_case(person=person("Index Case"), test_date="2020-10-20", asymptomatic=True)
    exposure, _ = cb.add_contact(
        index_case.ref,
        person=person("Z. Angstrom", phone=phone(5), email="z@example.org", address="1 Test Street"),
        last_exposure="2020-10-19",
        setting="household",
    )
    other = exposure.contact
    # Keep has no email/address but a phone and NHS number; these are kept.
    merged = cb.merge_people(ada.person.ref, other.ref)
    assert merged.ref == ada.person.ref
    assert merged.name == "Zoë Ångström"
    assert merged.phone == e164(1)  # keep's own value wins
    assert (merged.email, merged.address) == ("z@example.org", "1 Test Street")  # filled from other
    assert merged.nhs_number == NHS_NUMBERS[0]
    # The other person is gone; its reference resolves to the kept person.
    assert count(cb.store, "people") == 2
    assert cb.get_person(other.ref) == merged
    assert cb.get_contact(exposure.ref).contact.ref == merged.ref
    assert cb.get_case(ada.ref).person.ref == merged.ref
    # New cases can be added through the old reference.
    cb.close_case(ada.ref)
    again = cb.add_case(person_ref=other.ref, test_date="2020-10-30", asymptomatic=True)
    assert again.person.ref == merged.ref
    # Search finds the kept person (once), and not by the phone that was not kept.
    assert [p.ref for p in cb.search_people("07700 900001")] == [merged.ref]
    assert cb.search_people("07700 900005") == []
    assert [p.ref for p in cb.search_people("Test Street")] == []  # addresses are not indexed
    assert [p.ref for p in cb.search_people("Angstrom")] == [merged.ref]


def test_merge_follows_aliases_of_aliases(cb):
    refs = [
        cb.add_case(person=person(f"Person {n}"), test_date="2020-10-20", asymptomatic=True).person.ref for n in "ABC"
    ]
    cb.merge_people(refs[1], refs[2])  # C into B
    cb.merge_people(refs[0], refs[1])  # B (with C's alias) into A
    for ref in refs:
        assert cb.get_person(ref).ref == refs[0]
    assert count(cb.store, "people") == 1
    assert count(cb.store, "cases") == 3
    with pytest.raises(Conflict, match="same person"):
        cb.merge_people(refs[0], refs[2])


def test_merge_a_person_with_itself_is_a_conflict(cb, ada):
    before = table_snapshot(cb.store)
    with pytest.raises(Conflict, match="same person"):
        cb.merge_people(ada.person.ref, ada.person.ref)
    assert table_snapshot(cb.store) == before


def test_merge_two_contacts_of_one_case_is_a_conflict(cb, ada):
    a, _ = cb.add_contact(ada.ref, person=person("Contact One"), last_exposure="2020-10-19", setting="social")
    b, _ = cb.add_contact(ada.ref, person=person("Contact Two"), last_exposure="2020-10-19", setting="social")
    before = table_snapshot(cb.store)
    with pytest.raises(Conflict, match="same case"):
        cb.merge_people(a.contact.ref, b.contact.ref)
    assert table_snapshot(cb.store) == before


def test_merge_a_case_person_with_a_contact_of_that_case_is_a_conflict(cb, ada):
    exposure, _ = cb.add_contact(ada.ref, person=person("Zoe A"), last_exposure="2020-10-19", setting="household")
    before = table_snapshot(cb.store)
    raised = False
    try:
        cb.merge_people(ada.person.ref, exposure.contact.ref)
    except Conflict:
        raised = True
    assert raised, "the merge made the case's person a contact of their own case"
    assert table_snapshot(cb.store) == before


def test_merge_unknown_person_is_not_found(cb, ada):
    with pytest.raises(NotFound):
        cb.merge_people(ada.person.ref, "P-7K2M9Q")


# -- what a merge or rename leaves in the search index -----------------------------------

#: A name whose trigrams share no first letter with any other text indexed in these
#: tests, so each trigram term is stored as a contiguous suffix in the FTS5 leaf pages
#: (terms are prefix-compressed against the previous term on the page, and every term
#: of the main index starts with the same '0' byte).
UNIQUE_NAME = "Qxjz Wvkq"
UNIQUE_TRIGRAMS = (b"xjz", b"wvk", b"vkq")


@pytest.fixture
def unique_contact(cb):
    """A case (person Ann Case) and a contact called UNIQUE_NAME, with no other details."""
    case = cb.add_case(person=person("Ann Case"), test_date="2020-10-20", asymptomatic=True)
    exposure, _ = cb.add_contact(case.ref, person=person(UNIQUE_NAME), last_exposure="2020-10-19", setting="household")
    other_case = cb.add_case(person=person("Bob Other"), test_date="2020-10-21", asymptomatic=True)
    return case, exposure, other_case


def test_index_bytes_of_a_live_person_are_visible_in_the_shadow_table(cb, unique_contact):
    """Positive control for the remnant checks below: the method can see a name."""
    blobs = fts_blobs(cb.store)
    assert all(trigram in blobs for trigram in UNIQUE_TRIGRAMS)
    assert {"xjz", "wvk", "vkq"} <= fts_terms(cb.store)


def test_merged_away_name_is_no_longer_found_or_listed_as_a_term(cb, unique_contact):
    """What is checked: search, and the terms FTS5 reports through fts5vocab."""
    _case, exposure, other_case = unique_contact
    assert [p.ref for p in cb.search_people("Qxjz")] == [exposure.contact.ref]
    cb.merge_people(other_case.person.ref, exposure.contact.ref)
    assert cb.search_people("Qxjz") == []
    assert cb.search_people("Wvkq") == []
    assert {"qxj", "xjz", "jz ", "wvk", "vkq"}.isdisjoint(fts_terms(cb.store))
    assert [p.ref for p in cb.search_people("Bob Other")] == [other_case.person.ref]


def test_renamed_name_is_no_longer_found_or_listed_as_a_term(cb, unique_contact):
    _case, exposure, _other = unique_contact
    cb.update_person(exposure.contact.ref, PersonInput(name="Dora Renamed"))
    assert cb.search_people("Qxjz") == []
    assert {"xjz", "wvk", "vkq"}.isdisjoint(fts_terms(cb.store))
    assert [p.ref for p in cb.search_people("Dora")] == [exposure.contact.ref]


@pytest.mark.parametrize("operation", ["merge", "rename"])
def test_removed_name_leaves_no_trigrams_in_the_shadow_table(cb, unique_contact, operation):
    """What is checked: the raw bytes of every people_fts_data block, for the trigram
    terms of a name that only the removed person had (see the positive control above)."""
    _case, exposure, other_case = unique_contact
    assert all(trigram in fts_blobs(cb.store) for trigram in UNIQUE_TRIGRAMS)
    if operation == "merge":
        cb.merge_people(other_case.person.ref, exposure.contact.ref)
    else:
        cb.update_person(exposure.contact.ref, PersonInput(name="Dora Renamed"))
    blobs = fts_blobs(cb.store)
    assert [t for t in UNIQUE_TRIGRAMS if t in blobs] == []


def test_birth_date_is_kept_as_a_date(cb, ada):
    assert cb.get_person(ada.person.ref).date_of_birth == date(1985, 12, 10)
