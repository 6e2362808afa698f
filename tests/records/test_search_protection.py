"""Search never shows another record of a marked person.

Found by the protection property test: a person marked by an import, then entered again
as a new person with the same NHS number, came back unmasked from ``person search``
(case, contact and person views masked that record whole, search did not).
"""

from __future__ import annotations

from datetime import date

from tracekit.records import Casebook, PersonInput
from tracekit.records.sensitive import SensitiveRoles

MARKED = {
    "name": "Perpetua Fenwright",
    "date_of_birth": "1983-10-11",
    "nhs_number": "999 000 0050",
    "phone": "07700 900205",
    "postcode": "B33 8TH",
}


def test_a_second_record_of_a_marked_person_is_not_found_by_search(store):
    book = Casebook(store, today=date(2020, 12, 1))
    first = book.add_case(person=PersonInput(**MARKED), test_date="2020-11-20", asymptomatic=True, new_person=True)
    SensitiveRoles(book).mark(first.person.ref, "protected-witness", "court order")
    book.forget_marks()
    again = book.add_case(person=PersonInput(**MARKED), test_date="2020-11-21", asymptomatic=True, new_person=True)
    assert again.person.ref != first.person.ref and again.person.masked  # the views mask it whole

    fresh = Casebook(store, today=date(2020, 12, 1))
    for query in ("Fenwright", "9990000050", "07700900205"):
        found = fresh.search_people(query)
        assert all("Fenwright" not in (p.name or "") for p in found), (query, found)
        assert again.person.ref not in {p.ref for p in found}, query
        streamed = list(fresh.iter_search_people(query))
        assert again.person.ref not in {p.ref for p in streamed}, query
