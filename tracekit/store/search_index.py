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
indexed: marked or referred). The one exception is a bulk import's marking of people
already indexed: delete markers, with the trigrams left as residue until the next
referral merges the index (:func:`finish_bulk_write`, :func:`clear_residue`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tracekit.store import settings

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


def set_entry(conn: Any, person_id: int, terms: str | None) -> None:
    """Make ``terms`` the person's search entry (None: no entry), and keep them in
    ``people.search_terms``, from which a removal takes what to remove."""
    found = conn.execute("SELECT search_terms FROM people WHERE id = ?", (person_id,)).fetchone()
    old = found[0] if found else None
    if old == terms:
        return
    if old is not None:
        conn.execute(DELETE_SQL, row(person_id, old))
    if terms is not None:
        conn.execute(INSERT_SQL, row(person_id, terms))
    conn.execute("UPDATE people SET search_terms = ? WHERE id = ?", (terms, person_id))


def remove_people(conn: Any, person_ids: Iterable[int], *, indexed_below: int | None = None) -> int:
    """Take these people out of the index (as :func:`set_entry` with None), all at once,
    and say how many had an entry in it.

    In increasing id order, after the transaction's other writes: FTS5 writes its
    pending entries out whenever a change comes for a smaller id than the last one, and
    with secure delete every removal then seeks each of its terms in every segment.
    Removals one at a time between an import's batches cost about 25 ms each for that
    reason (docs/performance.md). People from ``indexed_below`` on are not in the index
    yet (a bulk import adds its new people last): only their terms are cleared."""
    wanted = sorted(set(person_ids))
    removed = 0
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        entries = conn.execute(
            f"SELECT id, search_terms FROM people WHERE id IN ({marks}) AND search_terms IS NOT NULL ORDER BY id",
            chunk,
        ).fetchall()
        indexed = [e for e in entries if indexed_below is None or e[0] < indexed_below]
        conn.executemany(DELETE_SQL, [row(pid, terms) for pid, terms in indexed])
        conn.executemany("UPDATE people SET search_terms = NULL WHERE id = ?", [(pid,) for pid, _ in entries])
        removed += len(indexed)
    return removed


def merge(conn: Any) -> None:
    """Merge the index into one segment (entries removed by delete markers are dropped,
    and the old segments' pages freed and overwritten: the store runs with
    ``secure_delete``)."""
    conn.execute("INSERT INTO people_fts(people_fts) VALUES ('optimize')")


#: The setting (in ``settings``) that says the index's pages still hold entries taken out
#: by delete markers: people a bulk import marked. Search no longer finds them; their
#: trigrams stay in the older segments until :func:`clear_residue` merges the index.
RESIDUE_SETTING = "search_index.residue"


def _set_secure_delete(conn: Any, on: bool) -> None:
    conn.execute("INSERT INTO people_fts(people_fts, rank) VALUES ('secure-delete', ?)", (1 if on else 0,))


def finish_bulk_write(conn: Any, marked: Iterable[int], first_new_id: int) -> None:
    """A bulk import's search-index work, done last in its transaction: take out the
    people it ``marked``, then add its new people (ids from ``first_new_id`` on), so a
    person the import made and marked is never added.

    The people it marked who were already indexed leave by delete markers (FTS5 secure
    delete off for them only): search stops finding them at once, and their trigrams
    stay in the index's older pages, as residue, until a referral merges the index
    (:func:`clear_residue`). A secure removal instead seeks and rewrites every trigram
    of the person, about 6 ms each at 1,000,000 people, and one merge of the whole index
    there costs 9-15 s; the residue holds nothing the marked person's own record in
    the store does not (docs/threat-model.md, "Search index residue"). A rollback
    restores the setting with everything else."""
    _set_secure_delete(conn, False)
    removed = remove_people(conn, marked, indexed_below=first_new_id)
    _set_secure_delete(conn, True)
    if removed:
        settings.put(conn, RESIDUE_SETTING, "1")
    add_people_from(conn, first_new_id)


def clear_residue(conn: Any) -> bool:
    """Merge the index if it holds residue (:func:`finish_bulk_write`), so that no
    trigram of a person taken out by a delete marker is left in its pages, and say
    whether it did. A referral calls it before it commits: what it purges must not
    survive in the index."""
    if settings.get(conn, RESIDUE_SETTING) is None:
        return False
    merge(conn)
    settings.delete(conn, RESIDUE_SETTING)
    return True
