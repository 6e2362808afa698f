"""Thousands of marked people (an import marking a sensitive occupation) leave the case book usable.

The note scrubber tries on each text only the written forms whose literals the text holds
(tracekit.records.identity.IdentityMatcher): what it finds must be exactly what one pattern of
every form finds, and a view of a store with 2,000 marked people must compile patterns of a
handful of forms, not one of 20,000 (which took seconds to build and minutes for 100 rows).
"""

from __future__ import annotations

import re
from datetime import date

from hypothesis import HealthCheck, given, settings

from tests.bundle.test_guard_equivalence import case
from tracekit.records import Casebook, identity
from tracekit.records.identity import (
    Found,
    IdentityMatcher,
    _original_span,
    fold_with_origins,
    python_pattern,
    written_forms,
)
from tracekit.records.models import Person

TODAY = date(2020, 10, 15)
MARKED = 2000


def one_pattern_finds(people: list[Person], text: str) -> list[Found]:
    """What the matcher found before it was indexed: one pattern of every form, longest first."""
    refs_of: dict[tuple[str, str], dict[str, None]] = {}
    for person in people:
        for form in written_forms(person):
            refs_of.setdefault((form.kind, python_pattern(form)), {})[person.ref] = None
    forms = sorted(refs_of.items(), key=lambda item: len(item[0][1]), reverse=True)
    pattern = re.compile("|".join(f"(?P<f{i}>{p})" for i, ((_, p), _) in enumerate(forms)))
    folded, origins = fold_with_origins(text)
    found, position = [], 0
    while (match := pattern.search(folded, position)) is not None:
        (kind, _), refs = forms[int(match.lastgroup[1:])]  # type: ignore[index]
        start, end = _original_span(text, origins, match.start(), match.end())
        found.extend(Found(ref, kind, start, end) for ref in refs)
        position = match.start() + 1
    return found


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case())
def test_the_indexed_matcher_finds_what_one_pattern_of_every_form_finds(example):
    people, text = example
    matcher = IdentityMatcher(people)
    assert matcher.find_all(text) == one_pattern_finds(people, text), text


def _store_with_marked_people(store) -> None:
    """MARKED marked people, 300 others; 100 open contacts whose notes name marked people
    in different written forms, or nobody; contact 7 shares marked person 7's phone."""
    with store.transaction() as c:
        for i in range(MARKED + 300):
            phone = "+447700900007" if i == MARKED + 7 else f"+4477009{i:05d}"
            c.execute(
                "INSERT INTO people(ref, name, name_key, phone, address, date_of_birth, created_at, updated_at)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (
                    f"P-{i:06d}",
                    f"Person{i} Surname{i % 97}",
                    f"person{i} surname{i % 97}",
                    phone,
                    f"{i} High Street, Town",
                    "1980-01-01",
                    "2020-10-01",
                    "2020-10-01",
                ),
            )
        c.executemany(
            "INSERT INTO person_roles(person_id, role, marked_at) VALUES (?, 'undercover-officer', '2020-10-01')",
            [(i,) for i in range(1, MARKED + 1)],
        )
        c.execute(
            "INSERT INTO cases(ref, person_id, test_date, test_type, test_result, status, created_at, updated_at,"
            " ruleset_id, infectious_start, infectious_end, isolation_end) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                "C-000001",
                MARKED + 299,
                "2020-10-10",
                "pcr",
                "positive",
                "open",
                "2020-10-10",
                "2020-10-10",
                "uk-2020-10",
                "2020-10-06",
                "2020-10-20",
                "2020-10-20",
            ),
        )
        notes = [
            "met PERSON{k} at home",
            "rang 07700 9{k:05d} twice",
            "lives at {k} high st.",
            "works with Surname, Person{k}",
            "no one named",
        ]
        for k in range(100):
            c.execute(
                "INSERT INTO exposures(ref, case_id, person_id, last_exposure, setting, trace_status, ruleset_id,"
                " close_contact, risk_rank, isolation_end, created_at, updated_at, face_to_face, direct_contact, notes)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    f"E-{k:06d}",
                    1,
                    MARKED + 1 + k,
                    "2020-10-09",
                    "household",
                    "not-yet-reached",
                    "uk-2020-10",
                    1,
                    1,
                    "2020-10-19",
                    "2020-10-10",
                    "2020-10-10",
                    0,
                    0,
                    notes[k % len(notes)].format(k=k * 19),
                ),
            )


def test_a_view_of_two_thousand_marked_people_tries_each_note_against_a_few_forms(store, monkeypatch):
    _store_with_marked_people(store)
    compiled: list[int] = []  # how many forms each compiled pattern holds
    real_compile = re.compile

    def counting_compile(pattern, flags=0):
        compiled.append(str(pattern).count("(?P<f"))
        return real_compile(pattern, flags)

    monkeypatch.setattr(identity.re, "compile", counting_compile)
    book = Casebook(store, today=TODAY)
    assert book._scrub("met Person19 at home") == "met [withheld] at home"
    assert compiled and max(compiled) <= 10, f"a pattern of {max(compiled)} forms"

    page = book.list_contacts(limit=100)
    notes = {e.ref: e.notes for e in page.items}
    assert notes["E-000000"] == "met [withheld] at home"  # Person0 is marked
    assert notes["E-000001"] == "rang [withheld] twice"
    assert notes["E-000002"] == "lives at [withheld]"  # "st." is "Street" abbreviated
    assert notes["E-000003"] == "works with Surname, [withheld]"  # "Surname" alone is no one's
    assert notes["E-000004"] == "no one named"
    assert notes["E-000005"] == "met [withheld] at home"  # Person95: its surname part too
    # 19 * 100 = 1,900 < MARKED: every name in these notes is a marked person's
    assert all("person" not in (note or "").lower() for note in notes.values())
    shares = next(e for e in page.items if e.contact.ref == f"P-{MARKED + 7:06d}")
    assert shares.contact.phone is None and "phone" in shares.contact.withheld_fields
    assert max(compiled) <= 10, f"a pattern of {max(compiled)} forms"
    assert len(compiled) <= 1 + len(notes)  # compiled once per set of candidate forms, kept
