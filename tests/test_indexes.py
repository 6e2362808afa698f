"""Every index is there for a query that uses it, checked with EXPLAIN QUERY PLAN.

Each index costs a b-tree write for every row written (an import writes millions), so
the schema keeps only those a command's query uses: dropping one of these fails its
line here, and an index no query names fails ``test_no_index_without_a_query``. The
queries are the ones the commands issue (parameters left unbound: SQLite plans before
binding); docs/performance.md lists them.
"""

from __future__ import annotations

import re

import pytest

#: index -> (the command, its query).
USES: dict[str, tuple[str, str]] = {
    "sqlite_autoindex_people_1": ("person show P-...", "SELECT id FROM people WHERE ref = ?"),
    "people_nhs": ("import, person add: the same person by NHS number", "SELECT id FROM people WHERE nhs_number = ?"),
    "people_name_dob": (
        "import, person add: the same person by name and date of birth",
        "SELECT id FROM people WHERE (name_key, date_of_birth) IN (VALUES (?, ?), (?, ?))",
    ),
    "people_phone": ("contact add, refer: people sharing a phone", "SELECT id FROM people WHERE phone = ?"),
    "people_postcode": (
        "refer: people sharing a postcode",
        "SELECT id FROM people WHERE postcode = ? AND referral_id IS NULL AND id != ?",
    ),
    "people_updated": ("export --since: people changed since", "SELECT id FROM people WHERE updated_at >= ?"),
    "sqlite_autoindex_cases_1": ("case show C-...", "SELECT id FROM cases WHERE ref = ?"),
    "cases_person": (
        "contact add: the person's open cases",
        "SELECT ref FROM cases WHERE person_id = ? AND status = ?",
    ),
    "cases_status_date": ("case list --status", "SELECT id FROM cases c WHERE c.status = ? ORDER BY c.test_date DESC"),
    "cases_test_date": ("case list --from", "SELECT id FROM cases c WHERE c.test_date >= ?"),
    "cases_source": (
        "case tree: cases that came from a contact",
        "SELECT id FROM cases WHERE source_exposure_id = ? ORDER BY id",
    ),
    "cases_updated": ("export --since: cases changed since", "SELECT id FROM cases WHERE updated_at >= ?"),
    "sqlite_autoindex_exposures_1": ("contact show E-...", "SELECT id FROM exposures WHERE ref = ?"),
    "sqlite_autoindex_exposures_2": ("case show: its contacts", "SELECT id FROM exposures e WHERE e.case_id = ?"),
    "exposures_person": (
        "person show: the person's contacts",
        "SELECT id FROM exposures WHERE person_id = ? ORDER BY last_exposure DESC, id DESC LIMIT 1",
    ),
    "exposures_worklist": (
        "today: the worklist",
        ("SELECT id FROM exposures e WHERE e.trace_status = ? ORDER BY e.risk_rank, e.last_exposure DESC LIMIT ?"),
    ),
    "exposures_status_date": (
        "contact list --status",
        "SELECT id FROM exposures e WHERE e.trace_status = ? ORDER BY e.last_exposure DESC",
    ),
    "exposures_pending": (
        "today: contacts waiting, by isolation end",
        "SELECT count(*) FROM exposures e WHERE e.trace_status = ? AND e.isolation_end >= ?",
    ),
    "exposures_isolation_end": (
        "today: isolations ending",
        "SELECT id FROM exposures e WHERE e.isolation_end = ? ORDER BY e.risk_rank",
    ),
    "exposures_date": ("contact list --to", "SELECT count(*) FROM exposures e WHERE e.last_exposure <= ?"),
    "exposures_updated": ("export --since: contacts changed since", "SELECT id FROM exposures WHERE updated_at >= ?"),
    "call_attempts_exposure": (
        "contact show: its calls",
        "SELECT at, outcome, note FROM call_attempts WHERE exposure_id = ? ORDER BY id",
    ),
    "audit_log_seq": ("audit show, audit verify", "SELECT hash FROM audit_log WHERE seq = ?"),
    "handovers_recipient": (
        "export --since-last",
        "SELECT changes_until FROM handovers WHERE recipient = ? AND policy = ? ORDER BY id DESC LIMIT 1",
    ),
    "sqlite_autoindex_handovers_1": (
        "bundle recall: a handover by bundle id",
        "SELECT id FROM handovers WHERE bundle_id = ?",
    ),
    "sqlite_autoindex_recalls_1": ("a recall request by id", "SELECT id FROM recalls WHERE recall_id = ?"),
    "sqlite_autoindex_recipients_1": ("export --to NAME", "SELECT id FROM recipients WHERE name = ?"),
    "sqlite_autoindex_referrals_1": ("referrals: one by reference", "SELECT id FROM referrals WHERE ref = ?"),
    "sqlite_autoindex_received_referrals_1": (
        "referrals receive: received already?",
        "SELECT payload_sha256, received_at FROM received_referrals WHERE signer_public_key = ? AND ref = ?",
    ),
    "received_records_referral": (
        "referrals receive, received: what a referral became",
        "SELECT x.record_id FROM received_records x WHERE x.received_id = ? AND x.kind IN ('case', 'contact') "
        "ORDER BY x.kind, x.record_id",
    ),
}


def _plan(conn, sql: str) -> str:
    params = (None,) * sql.count("?")
    return " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


@pytest.mark.parametrize("index", sorted(USES))
def test_the_query_of_each_index_uses_it(store, index):
    command, sql = USES[index]
    plan = _plan(store.conn, sql)
    assert re.search(rf"INDEX {index}\b", plan), f"{command}: {sql} is planned as {plan}"


def test_no_index_without_a_query(store):
    indexes = {name for (name,) in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert indexes - set(USES) == set(), "an index no query is known to use: add its query here, or drop it"
    assert set(USES) - indexes == set(), "a listed index is missing from the schema"
