"""Which records an export "since" a time carries: the record changed, or its person did,
found the same way whether by index lookups (few changes) or by reading every record."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracekit.bundle import source
from tracekit.records import Casebook, PersonInput

STAMPS = ["2020-10-01T00:00:00+00:00", "2020-10-02T00:00:00+00:00", "2020-10-03T00:00:00+00:00"]


@pytest.fixture
def book(store) -> Casebook:
    book = Casebook(store, today=date(2020, 11, 1))
    for n in range(4):
        case = book.add_case(
            person=PersonInput(name=f"Case Person{chr(97 + n)}"), test_date="2020-10-20", asymptomatic=True
        )
        for m in range(3):
            book.add_contact(
                case.ref,
                person=PersonInput(name=f"Contact Person{chr(97 + n)}{chr(97 + m)}"),
                last_exposure="2020-10-19",
                setting="household",
            )
    return book


def _expected(conn, table: str, since: str) -> list[str]:
    return [
        ref
        for ref, mine, persons in conn.execute(
            f"SELECT x.ref, x.updated_at, p.updated_at FROM {table} x JOIN people p ON p.id = x.person_id ORDER BY x.id"
        )
        if mine >= since or persons >= since
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_changed_since_is_the_record_or_its_person_by_lookup_and_by_scan(book, data, monkeypatch) -> None:
    conn = book.store.conn
    for table in ("people", "cases", "exposures"):
        ids = [row[0] for row in conn.execute(f"SELECT id FROM {table}")]
        stamps = data.draw(st.lists(st.sampled_from(STAMPS), min_size=len(ids), max_size=len(ids)))
        conn.executemany(f"UPDATE {table} SET updated_at = ? WHERE id = ?", list(zip(stamps, ids)))
    since = data.draw(st.sampled_from(STAMPS))
    for lookup_up_to, form in ((10_000, "WHERE e.id IN"), (0, "WHERE e.updated_at >= ?")):
        monkeypatch.setattr(source, "LOOKUP_UP_TO", lookup_up_to)
        assert source._changed_since(conn, "e", "exposures", since).startswith(form)
        assert [r["ref"] for r in source.cases(conn, since)] == _expected(conn, "cases", since)
        assert [r["ref"] for r in source.contacts(conn, since)] == _expected(conn, "exposures", since)


def test_many_changes_are_read_in_order_rather_than_looked_up(book, monkeypatch) -> None:
    conn = book.store.conn
    monkeypatch.setattr(source, "LOOKUP_UP_TO", 5)
    everything = "2000-01-01T00:00:00+00:00"
    assert source._changed_since(conn, "e", "exposures", everything).startswith("WHERE e.updated_at >= ?")
    conn.execute("UPDATE exposures SET updated_at = ?", (STAMPS[0],))
    conn.execute("UPDATE people SET updated_at = ?", (STAMPS[0],))
    conn.execute("UPDATE exposures SET updated_at = ? WHERE id = 1", (STAMPS[2],))
    assert source._changed_since(conn, "e", "exposures", STAMPS[2]).startswith("WHERE e.id IN")
    # a person's change counts every record of theirs towards the limit
    conn.execute("UPDATE people SET updated_at = ?", (STAMPS[2],))
    assert source._changed_since(conn, "e", "exposures", STAMPS[2]).startswith("WHERE e.updated_at >= ?")
    # and many changed people alone (SQLite would list them all in memory) mean reading in order,
    # even for cases, none of whose people here changed
    assert source._changed_since(conn, "c", "cases", STAMPS[2]).startswith("WHERE c.updated_at >= ?")
    conn.execute("UPDATE people SET updated_at = ?", (STAMPS[0],))
    assert source._changed_since(conn, "c", "cases", STAMPS[2]).startswith("WHERE c.id IN")


def test_no_isolation_end_goes_out_for_a_negative_case_or_a_contact_who_is_not_close(book) -> None:
    """Issue 14: a bundle is read by other teams; it must not carry an isolation date for
    someone who is not to isolate."""
    positive = book.add_case(person=PersonInput(name="Pos Case"), test_date="2020-10-10", asymptomatic=True)
    negative = book.add_case(
        person=PersonInput(name="Neg Case"), test_date="2020-10-10", test_result="negative", asymptomatic=True
    )
    close, _ = book.add_contact(
        positive.ref, person=PersonInput(name="Close One"), last_exposure="2020-10-09", setting="household"
    )
    far, _ = book.add_contact(
        positive.ref,
        person=PersonInput(name="Far One"),
        last_exposure="2020-10-09",
        setting="workplace",
        proximity_m="5",
    )
    conn = book.store.conn
    case_ends = {c["ref"]: c["isolation_end"] for c in source.cases(conn)}
    assert (case_ends[positive.ref], case_ends[negative.ref]) == ("2020-10-20", None)
    contact_ends = {c["ref"]: c["isolation_end"] for c in source.contacts(conn)}
    assert (contact_ends[close.ref], contact_ends[far.ref]) == ("2020-10-23", None)
