"""The worklist's "not a case by then" check looks the person's cases up by person.

Without statistics SQLite's planner preferred ``cases_status_date`` (status = 'open' and
a test date range) for the correlated subquery, so every contact still pending scanned
every open case tested by that day: ``today --date`` took 15 s on the 1,000,000-person
bench store instead of 34 ms. The plan does not depend on the data (no sqlite_stat1), so
an empty store shows it.
"""

from __future__ import annotations

from datetime import date

from tracekit.records import Casebook


def _plan(store, sql: str, params) -> list[str]:
    return [row[3] for row in store.conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


def test_the_pending_check_finds_a_persons_cases_by_person(store):
    pending, params = Casebook(store)._pending(date(2021, 1, 1))
    plan = _plan(store, f"SELECT count(*) FROM exposures e WHERE {pending}", params)
    subquery = [step for step in plan if " oc " in f" {step} "]
    assert subquery and all("cases_person (person_id=?" in step for step in subquery), plan


def test_every_worklist_query_uses_the_person_lookup(store):
    casebook = Casebook(store)
    for index in ("exposures_worklist", "exposures_pending"):
        pending, params = casebook._pending(date(2021, 1, 1))
        plan = _plan(
            store,
            f"SELECT e.id FROM exposures e INDEXED BY {index} WHERE {pending} ORDER BY e.risk_rank LIMIT 50",
            params,
        )
        assert any("cases_person (person_id=?" in step for step in plan), plan
