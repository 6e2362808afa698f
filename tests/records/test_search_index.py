"""The search index's layout, and the migration that made it again (issue 16).

The index is contentless FTS5 with trigram terms, no per-person size table
(``columnsize=0``), secure delete, and a pending buffer sized for bulk imports. The
migration that changed it fills it again from ``people.search_terms``: searches find the
same people afterwards, and a marked person's terms are still nowhere in it.
"""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from tests.conftest import CHEAP_KDF, PASSPHRASE
from tests.records.helpers import fts_blobs, fts_terms
from tracekit.records import Casebook, PersonInput
from tracekit.records.sensitive import SensitiveRoles
from tracekit.store import create_store, open_store, search_index
from tracekit.store import migrations as migrations_module

TODAY = date(2020, 12, 1)
PEOPLE = [
    {"name": "Ottoline Quarrender", "nhs_number": "999 000 0018", "phone": "07700 900101", "postcode": "B33 8TH"},
    {"name": "Barnaby Quarrender", "phone": "07700 900102", "postcode": "B33 8TH"},
    {"name": "Hepzibah Ulverstone", "nhs_number": "999 000 0026", "postcode": "LS1 4AP"},
]
MARKED = {"name": "Perpetua Fenwright", "nhs_number": "999 000 0050", "phone": "07700 900205", "postcode": "M1 1AE"}
QUERIES = ("Quarrender", "900101", "07700 900102", "B33 8TH", "B338TH", "9990000026", "ulverst", "Fenwright")


def _found(book: Casebook) -> dict[str, list[str]]:
    return {query: [p.ref for p in book.search_people(query, limit=50)] for query in QUERIES}


def _to_the_layout_before(store) -> None:  # type: ignore[no-untyped-def]
    """Put the search index back as it was before the migration (one ``terms`` column,
    with a size table), filled as it was, and forget that the migration ran."""
    conn = store.conn
    with store.transaction():
        conn.execute("DROP TABLE people_fts")
        conn.execute(
            "CREATE VIRTUAL TABLE people_fts USING fts5(terms, content = '', tokenize = 'trigram remove_diacritics 1')"
        )
        conn.execute("INSERT INTO people_fts(people_fts, rank) VALUES ('secure-delete', 1)")
        conn.execute(
            "INSERT INTO people_fts(rowid, terms) SELECT id, search_terms FROM people WHERE search_terms IS NOT NULL"
        )
        conn.execute("DELETE FROM schema_migrations WHERE name IN ('search-index-by-part', 'search-index-residue')")


def test_the_index_is_made_again_with_the_same_people_and_no_marked_terms(tmp_path):
    path = tmp_path / "old.store"
    assert [m.name for m in migrations_module.MIGRATIONS[-2:]] == ["search-index-by-part", "search-index-residue"]
    with create_store(path, bytearray(PASSPHRASE.encode()), kdf=CHEAP_KDF) as old:
        book = Casebook(old, today=TODAY)
        for details in PEOPLE:
            book.add_case(person=PersonInput(**details), test_date="2020-11-20", asymptomatic=True, new_person=True)
        marked = book.add_case(person=PersonInput(**MARKED), test_date="2020-11-20", asymptomatic=True, new_person=True)
        SensitiveRoles(book).mark(marked.person.ref, "protected-witness", "court order")
        _to_the_layout_before(old)
        assert old.table_exists("people_fts_docsize")
        assert " | " in " ".join(fts_terms(old))  # trigrams across parts, as before
        found_before = _found(Casebook(old, today=TODAY))

    with open_store(path, bytearray(PASSPHRASE.encode())) as store:
        assert store.schema_version() == len(migrations_module.MIGRATIONS)
        assert not store.table_exists("people_fts_docsize")
        config = dict(store.conn.execute("SELECT k, v FROM people_fts_config").fetchall())
        assert config["secure-delete"] == 1
        assert config["hashsize"] == search_index.HASH_BYTES
        assert _found(Casebook(store, today=TODAY)) == found_before
        assert found_before["Quarrender"] and found_before["B338TH"] and not found_before["Fenwright"]
        terms = fts_terms(store)
        assert not any("|" in term for term in terms)  # no trigram spans two parts now
        # The marked person's terms are not in the index made again: neither listed as a
        # term nor as bytes in its blocks.
        assert "fen" not in terms and "wri" not in terms
        assert b"fenwright" not in fts_blobs(store).lower()
        assert not Casebook(store, today=TODAY).search_people("900205")


def test_parts_split_the_same_way_every_time():
    assert search_index.parts("ada lovelock | +447700900101 | 07700900101") == (
        "ada lovelock",
        "+447700900101",
        "07700900101",
        None,
        None,
        None,
    )
    # A name holding the separator: the extra parts stay with the name, so the last five
    # parts are where they would be.
    many = " | ".join(["a | b", "+447700900101", "07700900101", "9990000018", "B33 8TH", "B338TH"])
    assert search_index.parts(many) == ("a | b", "+447700900101", "07700900101", "9990000018", "B33 8TH", "B338TH")
    assert search_index.row(7, "x") == (7, "x", None, None, None, None, None)


def test_a_new_store_has_the_bulk_layout(store):
    assert not store.table_exists("people_fts_docsize")
    config = dict(store.conn.execute("SELECT k, v FROM people_fts_config").fetchall())
    assert config == {"secure-delete": 1, "hashsize": search_index.HASH_BYTES, "version": 4}


class _Undo(Exception):
    """Raised to roll a sequence back."""


def test_no_order_of_removals_by_marker_or_securely_and_adds_again_lets_an_entry_come_back(store):
    """Delete markers leave a removed entry in older segments. Whatever order an import's
    marker removal, a secure removal (marking by command), adding the person again
    (unmarking) and a merge come in (every sequence of up to four), search finds the
    person exactly when they are indexed, and once the residue is cleared (a referral) no
    trigram of theirs is left in the index's pages unless they are indexed."""
    book = Casebook(store, today=TODAY)
    case = book.add_case(
        person=PersonInput(name="Ada Xjzqv", phone="07700 900101"), test_date="2020-11-20", asymptomatic=True
    )
    pid = store.conn.execute("SELECT id FROM people WHERE ref = ?", (case.person.ref,)).fetchone()[0]
    terms = store.conn.execute("SELECT search_terms FROM people WHERE id = ?", (pid,)).fetchone()[0]
    after_everyone = pid + 1
    steps = {
        "import marks": lambda conn: search_index.finish_bulk_write(conn, [pid], after_everyone),
        "command marks": lambda conn: search_index.set_entry(conn, pid, None),
        "unmark": lambda conn: search_index.set_entry(conn, pid, terms),
        "merge": search_index.merge,
    }
    checked = 0
    for length in range(1, 5):
        for sequence in itertools.product(steps, repeat=length):
            indexed, possible = True, True
            for step in sequence:
                if step in ("import marks", "command marks"):
                    possible, indexed = possible and indexed, False
                elif step == "unmark":
                    possible, indexed = possible and not indexed, True
            if not possible:
                continue
            with pytest.raises(_Undo), store.transaction() as conn:
                indexed = True
                for step in sequence:
                    steps[step](conn)
                    indexed = {"import marks": False, "command marks": False, "unmark": True}.get(step, indexed)
                    found = [p.ref for p in book.search_people("Xjzqv")]
                    assert found == ([case.person.ref] if indexed else []), (sequence, step)
                search_index.clear_residue(conn)
                with store.transaction():
                    pass  # a savepoint: FTS5 writes its pending changes out to its pages
                assert (b"xjz" in fts_blobs(store)) == indexed, sequence
                assert ("xjz" in fts_terms(store)) == indexed, sequence
                conn.execute("INSERT INTO people_fts(people_fts, rank) VALUES ('integrity-check', 0)")
                checked += 1
                raise _Undo
    assert checked == 68


def test_a_tracekit_that_does_not_know_the_residue_refuses_the_store(store, store_path, monkeypatch):
    """A tracekit from before the residue would refer someone without merging the index:
    the residue came with a schema version of its own, so such a tracekit (the migrations
    without the last) refuses the store as made by a newer one, and leaves it as it was."""
    from tests.test_store import snapshot
    from tracekit.errors import StoreTooNew
    from tracekit.store import core

    assert migrations_module.MIGRATIONS[-1].name == "search-index-residue"
    store.close()
    before = snapshot(store_path)
    monkeypatch.setattr(core, "MIGRATIONS", migrations_module.MIGRATIONS[:-1])
    with pytest.raises(StoreTooNew, match="newer tracekit"):
        open_store(store_path, bytearray(PASSPHRASE.encode()))
    assert snapshot(store_path) == before
