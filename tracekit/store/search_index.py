"""The search index's layout (``people_fts``): what is written for a person, and how.

A person's indexed text (``people.search_terms``: name, phone forms, NHS number, postcode
forms, joined by :data:`SEPARATOR`) goes into the index one part per column. The trigram
tokenizer reads each column on its own, so no trigram spans two parts: a person has about
36 distinct trigrams rather than 52 (measured on the benchmark store), and every trigram
is a write when the person is added and a secure-delete seek when they are marked. A
search phrase matches within a column, as it matched within a part before (a phrase
across the separator, such as ``"h | +44"``, was never a useful search).

The index is contentless (it keeps no copy of the text) with FTS5 ``secure-delete``, so
removing a person overwrites their trigrams in the index's pages; removing needs the
same text again, which ``people.search_terms`` keeps (NULL when the person is not
indexed: marked or referred).
"""

from __future__ import annotations

from typing import Any

#: The parts a person's indexed text has at most (name, phone in two forms, NHS number,
#: postcode in two forms).
PARTS = 6
SEPARATOR = " | "
COLUMNS = tuple(f"part{n}" for n in range(1, PARTS + 1))

#: Bytes of pending index entries FTS5 holds in memory before it writes a segment (its
#: default is 1 MiB). An import's whole file is one transaction: with the default the
#: index is written, then merged, in many small segments.
HASH_BYTES = 8 * 1024 * 1024

CREATE_SQL = (
    f"CREATE VIRTUAL TABLE people_fts USING fts5({', '.join(COLUMNS)}, "
    "content = '', columnsize = 0, tokenize = 'trigram remove_diacritics 1')"
)
SETTINGS_SQL = (
    "INSERT INTO people_fts(people_fts, rank) VALUES ('secure-delete', 1)",
    f"INSERT INTO people_fts(people_fts, rank) VALUES ('hashsize', {HASH_BYTES})",
)
INSERT_SQL = f"INSERT INTO people_fts(rowid, {', '.join(COLUMNS)}) VALUES(?, {', '.join('?' * PARTS)})"
DELETE_SQL = (
    f"INSERT INTO people_fts(people_fts, rowid, {', '.join(COLUMNS)}) VALUES('delete', ?, {', '.join('?' * PARTS)})"
)


def parts(terms: str) -> tuple[str | None, ...]:
    """The column values for ``terms``: its parts, padded with NULL. A name holding the
    separator itself makes more parts; the first ones then stay together, so the split
    is the same every time (deleting needs exactly what was inserted)."""
    pieces = terms.split(SEPARATOR)
    if len(pieces) > PARTS:
        pieces = [SEPARATOR.join(pieces[: len(pieces) - PARTS + 1]), *pieces[len(pieces) - PARTS + 1 :]]
    return (*pieces, *([None] * (PARTS - len(pieces))))


def row(person_id: int, terms: str) -> tuple[Any, ...]:
    """The parameters of :data:`INSERT_SQL` or :data:`DELETE_SQL` for one person."""
    return (person_id, *parts(terms))


def add_people_from(conn: Any, first_id: int) -> None:
    """Add the people from ``first_id`` on to the index, as their ``search_terms`` say
    (NULL: not indexed): the whole index when it is made again, a bulk import's new
    people after their rows. In id order, a chunk at a time: memory stays flat and FTS5
    appends."""
    last = first_id - 1
    while True:
        people = conn.execute(
            "SELECT id, search_terms FROM people WHERE id > ? AND search_terms IS NOT NULL ORDER BY id LIMIT 5000",
            (last,),
        ).fetchall()
        if not people:
            return
        conn.executemany(INSERT_SQL, [row(pid, terms) for pid, terms in people])
        last = people[-1][0]


#: A secure removal costs about as much as merging this many indexed people: on the
#: 1,000,000-person store a removal took about 6 ms (it seeks and rewrites every trigram of
#: the person), a merge of the whole index about 9 s (docs/performance.md, "Bulk import").
REMOVAL_COST_IN_PEOPLE = 700


def merge_is_cheaper(conn: Any, removals: int) -> bool:
    """Whether taking ``removals`` people out is cheaper by merging the whole index than by
    secure removals one by one (an import that marks many people already indexed)."""
    indexed = conn.execute("SELECT coalesce(max(id), 0) FROM people").fetchone()[0]
    return removals * REMOVAL_COST_IN_PEOPLE > indexed


def merged_removals_begin(conn: Any) -> None:
    """Removals from here on leave delete markers instead of overwriting entries; the
    caller must call :func:`merged_removals_end` in the same transaction, which merges the
    index into one segment without the removed entries and turns secure delete back on.
    (If the transaction rolls back, so does the setting; and the connection that ran it
    is an import's, which is closed after it.)"""
    conn.execute("INSERT INTO people_fts(people_fts, rank) VALUES ('secure-delete', 0)")


def merged_removals_end(conn: Any) -> None:
    """Merge the index into one segment (the removed entries are dropped, and the old
    segments' pages freed and overwritten: the store runs with ``secure_delete``), then
    secure delete on again."""
    conn.execute("INSERT INTO people_fts(people_fts) VALUES ('optimize')")
    conn.execute("INSERT INTO people_fts(people_fts, rank) VALUES ('secure-delete', 1)")
