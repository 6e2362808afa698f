"""The hash-chained audit log: what the case book writes to it, that it never holds a
person's identity, and that every kind of tampering is detected and the entry named.

Tampering is done the way someone holding the store key could: plain SQL on the
decrypted tables (UPDATE, DELETE, INSERT), outside tracekit's own code.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.records.helpers import NHS_NUMBERS, casebook, person, store, store_path, template_store_file  # noqa: F401  (fast store copies, on tmpfs)
from tracekit import audit
from tracekit.errors import Conflict, NotFound, ValidationError
from tracekit.records import Casebook, DuplicatePerson, PersonInput


@pytest.fixture
def cb(store) -> Casebook:
    return casebook(store)


def rows(store) -> list[tuple]:
    return store.conn.execute(
        "SELECT seq, at, action, refs, reason, prev_hash, hash FROM audit_log ORDER BY rowid"
    ).fetchall()


def new_entries(store, since_seq: int) -> list[tuple[str, list[str], str | None]]:
    return [
        (action, json.loads(refs), reason)
        for action, refs, reason in store.conn.execute(
            "SELECT action, refs, reason FROM audit_log WHERE seq > ? ORDER BY seq", (since_seq,)
        )
    ]


def last_seq(store) -> int:
    return store.conn.execute("SELECT coalesce(max(seq), 0) FROM audit_log").fetchone()[0]


def tamper(store, sql: str, params: tuple = ()) -> None:
    with store.transaction() as conn:
        conn.execute(sql, params)


# -- what the case book writes -----------------------------------------------------------


def test_every_casebook_change_appends_its_entry(cb):
    store = cb.store

    def step(operation, expected):
        before = last_seq(store)
        result = operation()
        assert new_entries(store, before) == expected
        return result

    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", symptom_onset="2020-10-18")
    assert new_entries(store, 0) == [
        ("person.add", [case.person.ref], None),
        ("case.add", sorted([case.ref, case.person.ref]), None),
    ]

    before = last_seq(store)
    exposure, _ = cb.add_contact(case.ref, person=person("Bea Potter"), last_exposure="2020-10-19", setting="household")
    assert new_entries(store, before) == [
        ("person.add", [exposure.contact.ref], None),
        ("contact.add", sorted([exposure.ref, case.ref, exposure.contact.ref]), None),
    ]

    # An existing person: no person.add.
    other_case = cb.add_case(person=person("Cyd Other"), test_date="2020-10-20", asymptomatic=True)
    before = last_seq(store)
    linked, _ = cb.add_contact(
        other_case.ref, person_ref=exposure.contact.ref, last_exposure="2020-10-19", setting="social"
    )
    assert new_entries(store, before) == [
        ("contact.add", sorted([linked.ref, other_case.ref, exposure.contact.ref]), None)
    ]

    step(lambda: cb.update_case(case.ref, notes="more"), [("case.update", [case.ref], None)])
    step(lambda: cb.update_contact(exposure.ref, proximity_m="1"), [("contact.update", [exposure.ref], None)])
    step(lambda: cb.log_call(exposure.ref, "no-answer", note="rang"), [("contact.call", [exposure.ref], "no-answer")])
    step(lambda: cb.log_call(exposure.ref, "Reached"), [("contact.call", [exposure.ref], "reached")])
    step(
        lambda: cb.update_person(exposure.contact.ref, PersonInput(phone="07700 900003")),
        [("person.update", [exposure.contact.ref], None)],
    )
    before = last_seq(store)
    promoted = cb.promote_contact(exposure.contact.ref, test_date="2020-10-25", asymptomatic=True)
    assert new_entries(store, before) == [("case.add", sorted([promoted.ref, exposure.contact.ref]), None)]
    step(
        lambda: cb.close_case(case.ref, reason="isolation complete"), [("case.close", [case.ref], "isolation complete")]
    )
    lone = cb.add_case(person=person("Dot Lone"), test_date="2020-10-20", asymptomatic=True)
    step(
        lambda: cb.merge_people(other_case.person.ref, lone.person.ref),
        [("person.merge", sorted([other_case.person.ref, lone.person.ref]), None)],
    )
    step(lambda: cb.pin_ruleset("england-2020-05-28"), [("rules.pin", [], "england-2020-05-28")])
    step(lambda: cb.pin_ruleset(None), [("rules.unpin", [], None)])
    assert audit.verify(store.conn).ok


def test_reads_and_refused_changes_write_no_entry(cb):
    case = cb.add_case(person=person("Ada Lovelace", phone="07700 900001"), test_date="2020-10-20", asymptomatic=True)
    before = rows(cb.store)
    cb.get_case(case.ref)
    cb.list_cases()
    cb.list_contacts()
    cb.search_people("Ada")
    cb.worklist()
    cb.case_tree(case.ref)
    cb.find_duplicates(PersonInput(phone="07700 900001"))
    with pytest.raises(DuplicatePerson):
        cb.add_case(person=person("Ada Again", phone="07700 900001"), test_date="2020-10-20", asymptomatic=True)
    with pytest.raises(ValidationError):
        cb.log_call("E-7K2M9Q", "hung-up")
    with pytest.raises(NotFound):
        cb.update_case("C-7K2M9Q", notes="x")
    assert rows(cb.store) == before
    cb.close_case(case.ref)
    with pytest.raises(Conflict):
        cb.close_case(case.ref)
    after = rows(cb.store)
    assert after[: len(before)] == before
    assert [r[2] for r in after[len(before) :]] == ["case.close"]


def test_the_entry_is_written_in_the_changes_own_transaction(cb, monkeypatch):
    """The change is visible to the audit call, and a failure after it undoes both."""
    seen = []
    real_append = audit.append

    def spying_append(conn, action, refs, reason=None):
        seen.append((conn.in_transaction, action, conn.execute("SELECT count(*) FROM cases").fetchone()[0]))
        return real_append(conn, action, refs, reason)

    monkeypatch.setattr(audit, "append", spying_append)
    cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", asymptomatic=True)
    assert seen == [(True, "person.add", 0), (True, "case.add", 1)]

    # Fail the change after its audit entry was appended: neither survives.
    monkeypatch.setattr(audit, "append", real_append)
    before = rows(cb.store)

    def broken_load(self, conn, case_id):
        raise RuntimeError("failure after the audit entry")

    monkeypatch.setattr(Casebook, "_load_case", broken_load)
    with pytest.raises(RuntimeError):
        cb.add_case(person=person("Bea Potter"), test_date="2020-10-20", asymptomatic=True)
    monkeypatch.undo()
    assert rows(cb.store) == before
    assert cb.store.conn.execute("SELECT count(*) FROM cases").fetchone()[0] == 1
    assert audit.verify(cb.store.conn).ok


def test_entries_never_hold_identity(cb):
    details = dict(
        name="Wilhelmina Featherstonehaugh",
        date_of_birth="1985-12-10",
        nhs_number="999 000 0026",
        phone="07700 900321",
        email="wilhelmina@example.org",
        address="17 Quayside Terrace",
        postcode="ec1a 1bb",
        occupation="lighthouse keeper",
    )
    case = cb.add_case(person=PersonInput(**details), test_date="2020-10-20", symptom_onset="2020-10-18")
    exposure, _ = cb.add_contact(
        case.ref,
        person=PersonInput(name="Bartholomew Quince", phone="07700 900322", nhs_number=NHS_NUMBERS[2]),
        last_exposure="2020-10-19",
        setting="household",
        notes="Bartholomew shares the flat",
    )
    cb.log_call(exposure.ref, "reached", note="spoke to Bartholomew")
    cb.update_person(case.person.ref, PersonInput(name="Wilhelmina Featherstonehaugh-Smythe", phone="07700 900323"))
    cb.update_contact(exposure.ref, notes="Bartholomew again")
    other = cb.add_case(person=person("Ottoline Quarrington"), test_date="2020-10-20", asymptomatic=True)
    cb.merge_people(case.person.ref, other.person.ref)

    text = json.dumps(rows(cb.store)) + json.dumps(cb.store.get_setting(audit.HEAD_SETTING))
    # The chain's SHA-256 digests are random hex: "ec1a" turns up in them by chance.
    text = re.sub(r"[0-9a-f]{64}", "<digest>", text)
    forbidden = [
        "Wilhelmina",
        "wilhelmina",
        "Featherstonehaugh",
        "featherstonehaugh",
        "Bartholomew",
        "bartholomew",
        "Quince",
        "Ottoline",
        "Quarrington",
        "ottoline",
        "1985-12-10",
        "9990000026",
        "999 000 0026",
        NHS_NUMBERS[2],
        "+447700900321",
        "07700900321",
        "7700900321",
        "900321",
        "900322",
        "900323",
        "example.org",
        "Quayside",
        "EC1A",
        "ec1a",
        "lighthouse",
        "flat",
    ]
    leaked = [value for value in forbidden if value in text]
    assert leaked == []
    assert len(rows(cb.store)) == 10  # the log was written: the check looked at something


# -- verify on an untouched store --------------------------------------------------------


@pytest.fixture
def history(cb):
    """A store with ten audit entries, made by ordinary case-book work."""
    case = cb.add_case(person=person("Ada Lovelace"), test_date="2020-10-20", symptom_onset="2020-10-18")  # 1, 2
    exposure, _ = cb.add_contact(
        case.ref, person=person("Bea Potter"), last_exposure="2020-10-19", setting="household"
    )  # 3, 4
    cb.log_call(exposure.ref, "no-answer")  # 5
    cb.log_call(exposure.ref, "reached")  # 6
    cb.update_case(case.ref, notes="note")  # 7
    cb.update_contact(exposure.ref, proximity_m="1")  # 8
    cb.close_case(case.ref, reason="isolation complete")  # 9
    cb.pin_ruleset("england-2020-07-30")  # 10
    assert last_seq(cb.store) == 10
    return cb.store


def test_verify_accepts_an_untouched_log(history):
    result = audit.verify(history.conn)
    assert (result.ok, result.entries, result.problem, result.first_bad_seq) == (True, 10, None, None)
    last = rows(history)[-1]
    assert result.head == f"10:{last[6]}" == history.get_setting(audit.HEAD_SETTING)
    assert history.check().ok
    assert "audit chain" in history.check().checks


def test_store_info_counts_audit_entries_by_the_last_sequence_number(history):
    assert history.info().record_counts["audit_entries"] == 10
    assert history.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 10


def test_store_info_counts_no_audit_entries_in_a_new_store(store):
    assert store.info().record_counts["audit_entries"] == 0


def test_verify_accepts_an_empty_log(store):
    result = audit.verify(store.conn)
    assert (result.ok, result.entries, result.head) == (True, 0, None)


def test_chain_links_each_entry_to_the_previous(history):
    entries = audit.entries(history.conn)
    assert [e.seq for e in entries] == list(range(1, 11))
    assert entries[0].prev_hash == audit.GENESIS_HASH
    for previous, entry in zip(entries, entries[1:]):
        assert entry.prev_hash == previous.hash
        assert entry.hash == audit.entry_hash(
            entry.prev_hash, entry.seq, entry.at, entry.action, entry.refs, entry.reason
        )


def test_entries_filters(history):
    assert [e.action for e in audit.entries(history.conn, action="case")] == ["case.add", "case.update", "case.close"]
    assert [e.seq for e in audit.entries(history.conn, action="contact.call")] == [5, 6]
    assert [e.seq for e in audit.entries(history.conn, limit=3)] == [1, 2, 3]
    case_ref = audit.entries(history.conn, action="case.add")[0].refs[0]
    assert [e.action for e in audit.entries(history.conn, ref=case_ref)] == [
        "case.add",
        "contact.add",
        "case.update",
        "case.close",
    ]
    fifth = audit.entries(history.conn)[4]
    assert [e.seq for e in audit.entries(history.conn, since=fifth.at)][0] == 5
    assert set(fifth.to_json()) == {"seq", "at", "action", "refs", "reason", "hash"}


# -- tampering ---------------------------------------------------------------------------


def assert_names(result, seq: int, *words: str) -> None:
    assert not result.ok
    assert result.first_bad_seq == seq, result.problem
    assert f"entry {seq}" in result.problem
    for word in words:
        assert word in result.problem


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("reason", "nothing to see"),
        ("action", "case.add"),
        ("refs", '["C-7K2M9Q"]'),
        ("at", "2020-01-01T00:00:00.000000+00:00"),
        ("hash", "f" * 64),
    ],
)
def test_edited_entry_is_named(history, column, value):
    tamper(history, f"UPDATE audit_log SET {column} = ? WHERE seq = 5", (value,))
    assert_names(audit.verify(history.conn), 5)


def test_edited_reason_is_named_as_edited(history):
    tamper(history, "UPDATE audit_log SET reason = 'closed early' WHERE seq = 9")
    assert_names(audit.verify(history.conn), 9, "edited")


def test_edited_and_rehashed_entry_breaks_the_next_link(history):
    (prev_hash, seq, at, action, refs) = history.conn.execute(
        "SELECT prev_hash, seq, at, action, refs FROM audit_log WHERE seq = 5"
    ).fetchone()
    new_hash = audit.entry_hash(prev_hash, seq, at, action, json.loads(refs), "declined")
    tamper(history, "UPDATE audit_log SET reason = 'declined', hash = ? WHERE seq = 5", (new_hash,))
    result = audit.verify(history.conn)
    assert_names(result, 6, "entry 5")


def test_deleted_middle_entry_is_named(history):
    tamper(history, "DELETE FROM audit_log WHERE seq = 4")
    assert_names(audit.verify(history.conn), 4, "missing", "deleted")


def test_deleted_first_entry_is_named(history):
    tamper(history, "DELETE FROM audit_log WHERE seq = 1")
    assert_names(audit.verify(history.conn), 1, "missing")


def test_deleted_entry_with_later_entries_renumbered_is_named(history):
    tamper(history, "DELETE FROM audit_log WHERE seq = 4")
    tamper(history, "UPDATE audit_log SET seq = seq - 1 WHERE seq > 4")
    assert_names(audit.verify(history.conn), 4, "does not follow")


def forged(prev_hash: str, seq: int, action: str = "case.close", refs=("C-7K2M9Q",), reason=None) -> tuple:
    at = "2020-10-30T12:00:00.000000+00:00"
    digest = audit.entry_hash(prev_hash, seq, at, action, list(refs), reason)
    return (seq, at, action, json.dumps(list(refs)), reason, prev_hash, digest)


def test_forged_entry_inserted_in_the_middle_is_named(history):
    """A self-consistent forgery of entry 6 (its hash follows entry 5), placed physically
    between entries 5 and 6 by moving the later rows' rowids."""
    hash5 = history.conn.execute("SELECT hash FROM audit_log WHERE seq = 5").fetchone()[0]
    tamper(history, "UPDATE audit_log SET rowid = rowid + 1000 WHERE seq >= 6")
    with history.transaction() as conn:
        conn.execute(
            "INSERT INTO audit_log(rowid, seq, at, action, refs, reason, prev_hash, hash) VALUES(6, ?, ?, ?, ?, ?, ?, ?)",
            forged(hash5, 6),
        )
    assert_names(audit.verify(history.conn), 6, "appears again", "inserted")


def test_forged_entry_renumbering_the_rest_is_named(history):
    """A forgery at position 6 with every later entry renumbered by one."""
    hash5 = history.conn.execute("SELECT hash FROM audit_log WHERE seq = 5").fetchone()[0]
    tamper(history, "UPDATE audit_log SET rowid = rowid + 1000, seq = seq + 1 WHERE seq >= 6")
    with history.transaction() as conn:
        conn.execute(
            "INSERT INTO audit_log(rowid, seq, at, action, refs, reason, prev_hash, hash) VALUES(6, ?, ?, ?, ?, ?, ?, ?)",
            forged(hash5, 6),
        )
    assert_names(audit.verify(history.conn), 7, "does not follow entry 6")


def test_forged_duplicate_seq_appended_is_named(history):
    hash2 = history.conn.execute("SELECT hash FROM audit_log WHERE seq = 2").fetchone()[0]
    with history.transaction() as conn:
        conn.execute("INSERT INTO audit_log VALUES(?, ?, ?, ?, ?, ?, ?)", forged(hash2, 3))
    assert_names(audit.verify(history.conn), 3, "appears again", "inserted")


def test_forged_entry_appended_after_the_head_is_named(history):
    hash10 = history.conn.execute("SELECT hash FROM audit_log WHERE seq = 10").fetchone()[0]
    with history.transaction() as conn:
        conn.execute("INSERT INTO audit_log VALUES(?, ?, ?, ?, ?, ?, ?)", forged(hash10, 11))
    result = audit.verify(history.conn)
    assert not result.ok  # detected: the recorded head is still entry 10
    assert_names(result, 11)
    assert "removed" not in result.problem


def test_forged_entry_appended_after_the_head_is_detected(history):
    hash10 = history.conn.execute("SELECT hash FROM audit_log WHERE seq = 10").fetchone()[0]
    with history.transaction() as conn:
        conn.execute("INSERT INTO audit_log VALUES(?, ?, ?, ?, ?, ?, ?)", forged(hash10, 11))
    result = audit.verify(history.conn)
    assert not result.ok
    assert "head" in result.problem


def test_swapped_entries_are_named(history):
    """Two entries' whole contents swapped (seq included): the first out of place is named."""
    row3, row4 = (history.conn.execute("SELECT * FROM audit_log WHERE seq = ?", (s,)).fetchone() for s in (3, 4))
    columns = "seq = ?, at = ?, action = ?, refs = ?, reason = ?, prev_hash = ?, hash = ?"
    with history.transaction() as conn:
        conn.execute("UPDATE audit_log SET seq = -1 WHERE seq = 3")
        conn.execute(f"UPDATE audit_log SET {columns} WHERE seq = 4", row3)
        conn.execute(f"UPDATE audit_log SET {columns} WHERE seq = -1", row4)
    assert [r[0] for r in rows(history)][:5] == [1, 2, 4, 3, 5]
    assert_names(audit.verify(history.conn), 3, "missing", "moved")


def test_swapped_entries_keeping_their_numbers_are_named(history):
    """Contents swapped but sequence numbers left in order: the chain breaks at entry 3."""
    body = "at, action, refs, reason, prev_hash, hash"
    row3, row4 = (history.conn.execute(f"SELECT {body} FROM audit_log WHERE seq = ?", (s,)).fetchone() for s in (3, 4))
    columns = "at = ?, action = ?, refs = ?, reason = ?, prev_hash = ?, hash = ?"
    with history.transaction() as conn:
        conn.execute(f"UPDATE audit_log SET {columns} WHERE seq = 3", row4)
        conn.execute(f"UPDATE audit_log SET {columns} WHERE seq = 4", row3)
    assert_names(audit.verify(history.conn), 3, "does not follow entry 2")


def test_truncated_log_is_detected_against_the_head(history):
    tamper(history, "DELETE FROM audit_log WHERE seq > 8")
    result = audit.verify(history.conn)
    assert not result.ok
    assert result.first_bad_seq == 9  # the first missing entry
    for words in ("ends at entry 8", "head is entry 10", "removed from the end"):
        assert words in result.problem


def test_emptied_log_is_detected_against_the_head(history):
    tamper(history, "DELETE FROM audit_log")
    result = audit.verify(history.conn)
    assert not result.ok
    assert "head is entry 10" in result.problem


def test_removed_head_setting_is_detected(history):
    tamper(history, "DELETE FROM settings WHERE key = ?", (audit.HEAD_SETTING,))
    result = audit.verify(history.conn)
    assert not result.ok
    assert "head is missing" in result.problem


def test_altered_head_setting_is_detected(history):
    tamper(history, "UPDATE settings SET value = ? WHERE key = ?", ("10:" + "0" * 64, audit.HEAD_SETTING))
    result = audit.verify(history.conn)
    assert not result.ok
    assert "head" in result.problem


def test_edited_and_rehashed_last_entry_is_named(history):
    (prev_hash, seq, at, action, refs) = history.conn.execute(
        "SELECT prev_hash, seq, at, action, refs FROM audit_log WHERE seq = 10"
    ).fetchone()
    new_hash = audit.entry_hash(prev_hash, seq, at, action, json.loads(refs), "england-2020-05-28")
    tamper(history, "UPDATE audit_log SET reason = 'england-2020-05-28', hash = ? WHERE seq = 10", (new_hash,))
    result = audit.verify(history.conn)
    assert not result.ok
    assert_names(result, 10)


def test_store_check_reports_audit_tampering(history):
    tamper(history, "UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 9")
    report = history.check()
    assert not report.ok
    assert any("audit entry 9" in problem for problem in report.problems), report.problems
    assert "audit chain" in report.checks


# -- append ------------------------------------------------------------------------------


def test_append_outside_a_transaction_raises_and_writes_nothing(store):
    with pytest.raises(RuntimeError, match="transaction"):
        audit.append(store.conn, "case.add", ["C-7K2M9Q"])
    assert rows(store) == []
    assert store.get_setting(audit.HEAD_SETTING) is None


def test_append_sorts_and_deduplicates_refs_and_moves_the_head(store):
    with store.transaction() as conn:
        first = audit.append(conn, "case.add", ["P-7K2M9Q", "C-7K2M9Q", "P-7K2M9Q"], None)
        second = audit.append(conn, "case.close", ["C-7K2M9Q"], "done")
    assert first.refs == ["C-7K2M9Q", "P-7K2M9Q"]
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == audit.GENESIS_HASH and second.prev_hash == first.hash
    assert store.get_setting(audit.HEAD_SETTING) == f"2:{second.hash}"
    assert audit.verify(store.conn).ok


def test_append_in_a_rolled_back_transaction_leaves_nothing(store):
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as conn:
        audit.append(conn, "case.add", ["C-7K2M9Q"])
        raise RuntimeError("boom")
    assert rows(store) == []
    assert store.get_setting(audit.HEAD_SETTING) is None
    assert audit.verify(store.conn).ok


def test_audit_timestamps_are_utc_and_ordered(history):
    ats = [r[1] for r in rows(history)]
    assert all(at.endswith("+00:00") for at in ats)
    assert ats == sorted(ats)
