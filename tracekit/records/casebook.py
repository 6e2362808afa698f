"""The case book: the library API for people, cases, contacts and the daily worklist.

``Casebook(store)`` is what the CLI (and any script) calls. Every change runs in one
store transaction together with its audit entry (see :meth:`Casebook._audit`). Rule-based
values (infectious period, isolation ends, close-contact clause) are computed with the
rule set in force on the relevant date, or the store's pinned rule set, and stored with
the record so lists and the worklist are index scans.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tracekit.domain import identifiers as ids
from tracekit.domain import rules
from tracekit.domain.refs import RefKind, new_ref, parse_ref
from tracekit.errors import Conflict, NotFound, ValidationError
from tracekit.records import derived, identity
from tracekit.records.association import ProtectedKeys
from tracekit.records.derived import (  # noqa: F401  (re-exported: part of the case book's API)
    CASE_ISOLATION_END_SQL,
    EXPOSURE_ISOLATION_END_SQL,
    NOT_CLOSE_RISK_RANK,
    risk_rank,
)
from tracekit.records.inputs import (
    CASE_VALIDATORS,
    EXPOSURE_VALIDATORS,
    PERSON_VALIDATORS,
    PersonInput,
    validated,
)
from tracekit.records.models import (
    OUTCOME_STATUS,
    WITHHELD_ASSOCIATION,
    WITHHELD_MATCH_TEXT,
    WITHHELD_REASON,
    CallAttempt,
    CallOutcome,
    Case,
    CaseStatus,
    DuplicateMatch,
    Exposure,
    Page,
    Person,
    RecomputeSummary,
    TestResult,
    TestType,
    TraceStatus,
    TreeNode,
    Worklist,
)
from tracekit.records.tables import CASES, EXPOSURES, PEOPLE, PERSON_DETAILS_BESIDES_NAME, Table, View
from tracekit.store import Store, search_index
from tracekit.store import settings as store_settings

PINNED_RULESET_SETTING = "rules.pinned"
MAX_PAGE = 1000
#: Rows read and written per batch when stored rule values are recomputed (``rules pin``).
RECOMPUTE_BATCH = 5000
#: Distinct inputs whose values are kept while recomputing (then forgotten, so memory
#: stays flat whatever the data).
RECOMPUTE_MEMO = 50_000
_REF_ATTEMPTS = 20


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _batches_by_id(conn: Any, sql: str, batch: int | None = None) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of ``sql`` (``... WHERE id > ? ORDER BY id LIMIT ?``, id first) a batch at a
    time, by id, so that the caller can update rows between batches (no statement is left
    open over a table being changed)."""
    size = batch or RECOMPUTE_BATCH
    after = 0
    while True:
        rows = conn.execute(sql, (after, size)).fetchall()
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def _recompute_rows(
    conn: Any,
    table: Table,
    inputs: tuple[str, ...],
    compute: Callable[..., dict[str, Any]],
    advance: Callable[[int], None],
    updated_at: str,
) -> tuple[int, int]:
    """Bring ``table``'s derived columns in line with ``compute``: rows are read by id in
    batches; ``compute(*inputs)`` gives the derived values by name,
    worked out once per distinct inputs (up to :data:`RECOMPUTE_MEMO` of them kept at a
    time), and set on the rows where they differ, with their ``updated_at``.
    Returns (rows read, rows changed)."""
    select_sql = f"SELECT id, {', '.join((*inputs, *table.derived))} FROM {table.name} WHERE id > ? ORDER BY id LIMIT ?"
    update_sql = (
        f"UPDATE {table.name} SET {', '.join(f'{name} = ?' for name in table.derived)}, updated_at = ? WHERE id = ?"
    )
    known: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    read = changed_count = 0
    width = len(inputs)
    for rows in _batches_by_id(conn, select_sql):
        changed = []
        for row_id, *columns in rows:
            key, stored = tuple(columns[:width]), tuple(columns[width:])
            values = known.get(key)
            if values is None:
                if len(known) >= RECOMPUTE_MEMO:  # real data can have millions of distinct inputs
                    known.clear()
                computed = compute(*key)
                values = known[key] = tuple(computed[name] for name in table.derived)
            if stored != values:
                changed.append((*values, updated_at, row_id))
        conn.executemany(update_sql, changed)
        read += len(rows)
        changed_count += len(changed)
        advance(len(rows))
    return read, changed_count


#: Whether person ``p`` is sensitive by association: a contact of a marked person's case,
#: in an exposure not released (a point lookup per marked person's case, then per exposure).
ASSOCIATED_SQL = (
    "EXISTS (SELECT 1 FROM exposures ae JOIN cases ac ON ac.id = ae.case_id "
    "JOIN person_roles ar ON ar.person_id = ac.person_id WHERE ae.person_id = p.id "
    "AND NOT EXISTS (SELECT 1 FROM released_exposures re WHERE re.exposure_id = ae.id))"
)

#: A person as every view of them loads them: the stored columns shown, and the facts
#: that decide their protection (role, referral, association).
PERSON_VIEW = View(
    [
        *PEOPLE.select("p", ("id", "ref", *PEOPLE.details, "created_at", "updated_at")),
        ("role", "(SELECT role FROM person_roles WHERE person_id = p.id)"),
        ("referral_ref", "(SELECT ref FROM referrals WHERE id = p.referral_id)"),
        ("associated", ASSOCIATED_SQL),
    ]
)

NO_REVEAL: frozenset[int] = frozenset()


class _RevealAll(frozenset):
    """For internal loads that need the full record (re-indexing, merging, recomputing)."""

    def __contains__(self, item: object) -> bool:
        return True


REVEAL_ALL: frozenset[int] = _RevealAll()


def person_protection(role: str | None, referral_ref: str | None, associated: bool) -> str | None:
    """How a person is protected; the one rule every view of a person goes through.

    WITHHELD_REASON for a marked or referred person, WITHHELD_ASSOCIATION for a contact of
    a marked person's case (in an exposure not released), None for everyone else. A
    protected person is masked unless revealed; a referred one always (details are gone).
    """
    if role is not None or referral_ref is not None:
        return WITHHELD_REASON
    if associated:
        return WITHHELD_ASSOCIATION
    return None


def marked_people(conn: Any) -> list[Person]:
    """Everyone marked and not referred, with all their details (never masked): for the
    scrubber, association and the leak guard, not for showing. A person who carried other
    details before a merge or an update is listed once more per former detail (the same
    reference, that one value), so protection covers what they used to carry too."""
    rows = _fetch(
        conn,
        PERSON_VIEW,
        # CROSS JOIN: loop over the few marked people, not over everyone.
        "FROM person_roles r CROSS JOIN people p ON p.id = r.person_id WHERE p.referral_id IS NULL",
    )
    people = [_person(row, REVEAL_ALL) for row in rows]
    return people + former_details(conn, people)


class _Marks:
    """What protects the marked people a case book does not reveal, each part built on first
    use: the free-text scrubber only once a row has text, the identifier keys once a row
    has a person. Each row then costs hashed look-ups, whatever the number of people."""

    def __init__(self, conn: Any, hidden: list[Person]) -> None:
        self._conn = conn
        self.hidden = hidden

    @functools.cached_property
    def scrubber(self) -> identity.IdentityMatcher | None:
        return identity.identity_matcher(self.hidden) if self.hidden else None

    @functools.cached_property
    def keys(self) -> ProtectedKeys:
        """The identifier keys no record may carry (also those of referred people)."""
        return ProtectedKeys(self._conn, marked=self.hidden)


#: The details a merge or an update may replace and that protection must remember.
FORMER_DETAIL_FIELDS = PEOPLE.identity


def former_details(conn: Any, people: list[Person]) -> list[Person]:
    """For each of ``people``, a copy per detail they carried before (``person_former_details``):
    only that field set, the others empty, so it matches that value alone."""
    if not people:
        return []
    by_id = {p.id: p for p in people}
    blank = {name: None for name in FORMER_DETAIL_FIELDS}
    out = []
    for chunk in range(0, len(people), 500):
        ids_ = [p.id for p in people[chunk : chunk + 500]]
        for person_id, name, value in conn.execute(
            f"SELECT person_id, field, value FROM person_former_details WHERE person_id IN ({','.join('?' * len(ids_))})",
            ids_,
        ).fetchall():
            fields: dict[str, Any] = {**blank, "name": ""}
            if name == "address":  # kept with the postcode it had: an address is matched with it
                fields["address"], _, postcode = value.partition("\n")
                fields["postcode"] = postcode or None
            else:
                fields[name] = date.fromisoformat(value) if name == "date_of_birth" else value
            out.append(dataclasses.replace(by_id[person_id], **fields))
    return out


def remember_former_details(conn: Any, person_id: int, before: Person, after: Person) -> None:
    """Keep the details ``before`` carried that ``after`` no longer does (see :func:`former_details`)."""
    for name in FORMER_DETAIL_FIELDS:
        old, new = getattr(before, name), getattr(after, name)
        if name == "address" and old:  # with its postcode, as association compares them
            old, new = f"{old}\n{before.postcode or ''}", f"{new}\n{after.postcode or ''}"
        if old not in (None, "") and old != new:
            conn.execute(
                "INSERT OR IGNORE INTO person_former_details(person_id, field, value) VALUES(?, ?, ?)",
                (person_id, name, old.isoformat() if isinstance(old, date) else str(old)),
            )


def _fetch(conn: Any, view: View, rest: str, params: Any = ()) -> list[dict[str, Any]]:
    """``SELECT`` the ``view`` with ``rest`` (FROM, WHERE...), each row read by name."""
    return [view.named(row) for row in conn.execute(f"SELECT {view.sql} {rest}", params).fetchall()]


def _stream_rows(conn: Any, view: View, rest: str, params: Any = ()) -> Iterator[dict[str, Any]]:
    """As :func:`_fetch`, read one row at a time (for streaming: nothing is collected)."""
    for row in conn.execute(f"SELECT {view.sql} {rest}", params):
        yield view.named(row)


def _person(r: dict[str, Any], reveal: frozenset[int] = NO_REVEAL) -> Person:
    """A person from a row of PERSON_VIEW; masked if protected, unless revealed (never if referred)."""
    role, referral_ref = r["role"], r["referral_ref"]
    protection = person_protection(role, referral_ref, bool(r["associated"]))
    if referral_ref is not None or (protection is not None and r["id"] not in reveal):
        return Person(
            id=r["id"],
            ref=r["ref"],
            name="",
            created_at=r["created_at"],
            updated_at=r["updated_at"],
            role=role,
            referral_ref=referral_ref,
            masked=True,
            protection=protection,
        )
    return Person(
        id=r["id"],
        ref=r["ref"],
        name=r["name"],
        date_of_birth=_date(r["date_of_birth"]),
        nhs_number=r["nhs_number"],
        phone=r["phone"],
        email=r["email"],
        address=r["address"],
        postcode=r["postcode"],
        occupation=r["occupation"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        role=role,
        referral_ref=referral_ref,
        protection=protection,
    )


#: A case with its person (``row["person"]``).
CASE_VIEW = View(
    [
        *CASES.select(
            "c",
            (
                "id",
                "ref",
                *CASES.details,
                "status",
                "ruleset_id",
                "infectious_start",
                "infectious_end",
                "created_at",
                "updated_at",
                "closed_at",
            ),
        ),
        ("source_exposure_ref", "(SELECT ref FROM exposures WHERE id = c.source_exposure_id)"),
        ("isolation_end", CASE_ISOLATION_END_SQL),
        ("contact_count", "(SELECT count(*) FROM exposures WHERE case_id = c.id)"),
    ],
    nested=("person", PERSON_VIEW),
)


def _case(row: dict[str, Any], reveal: frozenset[int] = NO_REVEAL) -> Case:
    return Case(
        id=row["id"],
        ref=row["ref"],
        test_date=date.fromisoformat(row["test_date"]),
        test_type=TestType(row["test_type"]),
        test_result=TestResult(row["test_result"]),
        symptom_onset=_date(row["symptom_onset"]),
        status=CaseStatus(row["status"]),
        notes=row["notes"],
        source_exposure_ref=row["source_exposure_ref"],
        ruleset_id=row["ruleset_id"],
        infectious_start=date.fromisoformat(row["infectious_start"]),
        infectious_end=date.fromisoformat(row["infectious_end"]),
        isolation_end=_date(row["isolation_end"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        closed_at=row["closed_at"],
        contact_count=row["contact_count"],
        person=_person(row["person"], reveal),
    )


#: An exposure with its contact (``row["person"]``), and what decides
#: whether it is withheld: the marked person whose case it is, if any, and its release.
EXPOSURE_VIEW = View(
    [
        *EXPOSURES.select(
            "e",
            (
                "id",
                "ref",
                *EXPOSURES.details,
                "trace_status",
                "ruleset_id",
                "close_contact",
                "clause",
                "created_at",
                "updated_at",
            ),
        ),
        ("case_ref", "(SELECT ref FROM cases WHERE id = e.case_id)"),
        ("isolation_end", EXPOSURE_ISOLATION_END_SQL),
        (
            "marked_case_person",
            (
                "COALESCE((SELECT c2.person_id FROM cases c2 JOIN person_roles r ON r.person_id = c2.person_id "
                "WHERE c2.id = e.case_id), (SELECT r.person_id FROM person_roles r WHERE r.person_id = e.person_id))"
            ),
        ),
        ("released", "EXISTS (SELECT 1 FROM released_exposures WHERE exposure_id = e.id)"),
    ],
    nested=("person", PERSON_VIEW),
)


def _exposure(
    row: dict[str, Any], reveal: frozenset[int] = NO_REVEAL, reveal_exposures: frozenset[int] = NO_REVEAL
) -> Exposure:
    """An exposure; withheld when its case's person or its contact is marked, unless the
    exposure was released, or revealed itself, or that marked person revealed."""
    marked_case_person, released = row["marked_case_person"], bool(row["released"])
    withheld = (
        marked_case_person is not None
        and not released
        and marked_case_person not in reveal
        and row["id"] not in reveal_exposures
    )
    common = {
        "id": row["id"],
        "ref": row["ref"],
        "case_ref": row["case_ref"],
        "last_exposure": date.fromisoformat(row["last_exposure"]),
        "trace_status": TraceStatus(row["trace_status"]),
        "ruleset_id": row["ruleset_id"],
        "close_contact": bool(row["close_contact"]),
        "clause": row["clause"],
        "isolation_end": _date(row["isolation_end"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
    if withheld:
        contact = _person(row["person"], NO_REVEAL)
        contact = Person(
            id=contact.id,
            ref=contact.ref,
            name="",
            role=contact.role,
            referral_ref=contact.referral_ref,
            masked=True,
            protection=contact.protection or WITHHELD_ASSOCIATION,
        )
        return Exposure(
            **common,
            setting="",
            proximity_m=None,
            duration_min=None,
            face_to_face=False,
            direct_contact=False,
            notes=None,
            contact=contact,
            withheld=True,
        )
    return Exposure(
        **common,
        setting=row["setting"],
        proximity_m=row["proximity_m"],
        duration_min=row["duration_min"],
        face_to_face=bool(row["face_to_face"]),
        direct_contact=bool(row["direct_contact"]),
        notes=row["notes"],
        contact=_person(row["person"], reveal),
    )


def new_case_values(values: dict[str, Any], computed: dict[str, Any]) -> dict[str, Any]:
    """The columns of a new case from its validated ``values`` and its derived values."""
    onset = values.get("symptom_onset")
    return {
        "test_date": values["test_date"].isoformat(),
        "test_type": values.get("test_type", "pcr"),
        "test_result": values.get("test_result", "positive"),
        "symptom_onset": onset.isoformat() if onset else None,
        "status": CaseStatus.OPEN.value,
        "notes": values.get("notes"),
        **computed,
    }


def new_exposure_values(values: dict[str, Any], computed: dict[str, Any]) -> dict[str, Any]:
    """The columns of a new contact from its validated ``values`` and its derived values."""
    return {
        "last_exposure": values["last_exposure"].isoformat(),
        "setting": values["setting"],
        "proximity_m": values.get("proximity_m"),
        "duration_min": values.get("duration_min"),
        "face_to_face": int(bool(values.get("face_to_face"))),
        "direct_contact": int(bool(values.get("direct_contact"))),
        "trace_status": TraceStatus.NOT_YET_REACHED.value,
        "notes": values.get("notes"),
        **computed,
    }


def search_terms(values: dict[str, Any]) -> str:
    """The text indexed for a person: name, phone forms, NHS number, postcode forms."""
    return identity.search_terms(
        ids.name_key(values["name"]), values.get("phone"), values.get("nhs_number"), values.get("postcode")
    )


class Casebook:
    """People, cases and contacts in one store. ``today`` is injectable for tests."""

    def __init__(self, store: Store, *, today: date | None = None) -> None:
        self.store = store
        self.today = today or date.today()
        #: People whose identity this Casebook shows although they are marked; only
        #: :meth:`reveal` (audited) adds to it.
        self._reveal: frozenset[int] = NO_REVEAL
        #: Exposures shown in full although withheld by association; only
        #: :meth:`reveal_contact` (audited) adds to it.
        self._reveal_exposures: frozenset[int] = NO_REVEAL
        self._marks: _Marks | None = None  # read on first use; forgotten when marks change

    # -- free text: no marked person's details in notes ----------------------------------------
    def forget_marks(self) -> None:
        """Marks or reveals changed: read them again, and rebuild what protects them, on next use."""
        self._marks = None

    def _load_marks(self) -> _Marks:
        """The marked people not revealed, read once per change of marks or reveals."""
        if self._marks is None:
            hidden = [p for p in marked_people(self.store.conn) if p.id not in self._reveal]
            self._marks = _Marks(self.store.conn, hidden)
        return self._marks

    def _scrub(self, text: str | None) -> str | None:
        """Replace any unrevealed marked person's details in free text with a marker."""
        if not text:
            return text
        scrubber = self._load_marks().scrubber
        if scrubber is None:
            return text
        return str(scrubber.scrub(text, identity.WITHHELD_IN_TEXT))

    def _shared_withheld(self, person: Person) -> Person:
        """``person`` with the details they share with a protected person withheld (a
        household member's landline or address: tracekit.records.association). Their name
        stays: a namesake is someone else. Another record of the protected person
        (same NHS number, or name and date of birth) is masked whole."""
        if person.masked or person.protection == WITHHELD_REASON:
            return person
        protected = self._load_marks().keys
        if protected.empty:
            return person
        whole, fields = protected.withheld_fields(person, own_id=person.id)
        if whole:
            return Person(
                id=person.id,
                ref=person.ref,
                name="",
                created_at=person.created_at,
                updated_at=person.updated_at,
                masked=True,
                protection=WITHHELD_ASSOCIATION,
            )
        fields = fields - {"name"}
        for name in fields:
            setattr(person, name, None)
        person.withheld_fields = frozenset(fields)
        return person

    def _case_view(self, row: dict[str, Any], raw: bool = False) -> Case:
        case = _case(row, REVEAL_ALL if raw else self._reveal)
        if not raw:
            case.notes = self._scrub(case.notes)
            case.person = self._shared_withheld(case.person)
        return case

    def _exposure_view(self, row: dict[str, Any], raw: bool = False) -> Exposure:
        exposure = (
            _exposure(row, REVEAL_ALL, REVEAL_ALL) if raw else _exposure(row, self._reveal, self._reveal_exposures)
        )
        if not raw:
            exposure.notes = self._scrub(exposure.notes)
            exposure.contact = self._shared_withheld(exposure.contact)
        return exposure

    # -- rules ---------------------------------------------------------------------------
    @property
    def pinned_ruleset(self) -> str | None:
        return self.store.get_setting(PINNED_RULESET_SETTING)

    def ruleset_for(self, day: date) -> rules.RuleSet:
        return rules.ruleset_for(day, self.pinned_ruleset)

    def pin_ruleset(
        self, ruleset_id: str | None, *, progress: Callable[[int, int], None] | None = None
    ) -> RecomputeSummary:
        """Pin a rule set for every computation (None unpins), and recompute stored values.

        All or nothing: the setting, every recomputed value and the audit entry are one
        transaction. Records are read in batches of :data:`RECOMPUTE_BATCH` by id, values
        are worked out once per distinct set of inputs, and only rows whose stored values
        change are written, so a store of millions of contacts is pinned in minutes, in
        flat memory. ``progress(done, total)`` is called after each batch.
        """
        if ruleset_id is not None:
            rules.get_ruleset(ruleset_id)
        with self.store.transaction() as conn:
            if ruleset_id is None:
                store_settings.delete(conn, PINNED_RULESET_SETTING)
            else:
                store_settings.put(conn, PINNED_RULESET_SETTING, ruleset_id)
            summary = self._recompute_rule_values(conn, ruleset_id, progress)
            self._audit(conn, "rules.pin" if ruleset_id else "rules.unpin", [], ruleset_id)
        return summary

    def _recompute_rule_values(
        self, conn: Any, pinned: str | None, progress: Callable[[int, int], None] | None
    ) -> RecomputeSummary:
        """Bring every case's and contact's stored rule values in line with ``pinned``."""
        rulesets: dict[date, rules.RuleSet] = {}

        def ruleset(day: date) -> rules.RuleSet:
            if day not in rulesets:
                rulesets[day] = rules.ruleset_for(day, pinned)
            return rulesets[day]

        total = sum(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in ("cases", "exposures"))
        done = 0
        # A changed record is marked updated, so the next --since-last handover carries
        # its new values.
        now = utcnow()

        def advance(rows: int) -> None:
            nonlocal done
            done += rows
            if progress is not None:
                progress(done, total)

        advance(0)

        def case_values(test_date: str, onset: str | None) -> dict[str, Any]:
            onset_day, test_day = _date(onset), date.fromisoformat(test_date)
            return self._case_rule_values(test_day, onset_day, ruleset(onset_day or test_day))

        def exposure_values(*inputs: Any) -> dict[str, Any]:
            values = dict(zip(derived.EXPOSURE_RULE_INPUTS, inputs))
            values["last_exposure"] = day = date.fromisoformat(values["last_exposure"])
            return self._exposure_rule_values(values, ruleset(day))

        cases, cases_changed = _recompute_rows(conn, CASES, ("test_date", "symptom_onset"), case_values, advance, now)
        contacts, contacts_changed = _recompute_rows(
            conn, EXPOSURES, derived.EXPOSURE_RULE_INPUTS, exposure_values, advance, now
        )
        return RecomputeSummary(cases, contacts, cases_changed, contacts_changed)

    # -- audit hook ----------------------------------------------------------------------
    def _audit(self, conn: Any, action: str, refs: list[str], reason: str | None = None) -> None:
        """Write the audit entry for a change, in the change's own transaction."""
        from tracekit import audit

        audit.append(conn, action, refs, reason)

    # -- revealing a masked identity ---------------------------------------------------------
    def reveal(self, person_refs: list[str], reason: str) -> None:
        """Show these people's identities in this Casebook's results (audited, with reason).

        Referred people cannot be revealed: their details are no longer in the store.
        """
        from tracekit.records.identity import check_reason

        with self.store.transaction() as conn:
            ids, refs, people = set(), [], []
            for ref in person_refs:
                person = self._load_person(conn, self._person_id(conn, ref), raw=True)
                ids.add(person.id)
                refs.append(person.ref)
                people.append(person)
            check_reason(reason, people)
            self._audit(conn, "person.reveal", refs, reason)
        self._reveal = self._reveal | frozenset(ids)
        self.forget_marks()

    def reveal_contact(self, exposure_ref: str, reason: str) -> None:
        """Show this contact in full although withheld by association (audited, with reason):
        the exposure's setting, measurements and notes, and the contact's identity. Nothing
        else: the marked person whose case it is stays masked, and notes stay scrubbed of
        their details. The audit entry names the contact and their person only."""
        from tracekit.records.identity import check_reason

        with self.store.transaction() as conn:
            exposure_id = self._exposure_id(conn, exposure_ref)
            exposure = self._load_exposure(conn, exposure_id, with_calls=False, raw=True)
            case_person = self._load_case(conn, self._case_id(conn, exposure.case_ref), raw=True).person
            text = check_reason(reason, [exposure.contact, case_person])
            self._audit(conn, "contact.reveal", [exposure.ref, exposure.contact.ref], text)
        self._reveal = self._reveal | {exposure.contact.id}
        self._reveal_exposures = self._reveal_exposures | {exposure_id}
        self.forget_marks()

    # -- references ----------------------------------------------------------------------
    def _insert_with_ref(self, conn: Any, kind: RefKind, table: Table, values: dict[str, Any]) -> tuple[int, str]:
        """Insert a row of ``table`` (``values`` by column name) with a fresh reference and
        its creation time; redraw the reference on a collision."""
        now = utcnow()
        for _ in range(_REF_ATTEMPTS):
            ref = new_ref(kind)
            if conn.execute(f"SELECT 1 FROM {table.name} WHERE ref = ?", (ref,)).fetchone():
                continue
            if kind is RefKind.PERSON and conn.execute("SELECT 1 FROM person_aliases WHERE ref = ?", (ref,)).fetchone():
                continue
            cursor = conn.execute(
                table.insert_sql, table.row({**values, "ref": ref, "created_at": now, "updated_at": now})
            )
            return int(cursor.lastrowid), ref
        raise Conflict("could not draw an unused reference; the store may be nearly full")  # pragma: no cover

    # -- people --------------------------------------------------------------------------
    def _person_id(self, conn: Any, ref_text: str) -> int:
        ref = parse_ref(ref_text, RefKind.PERSON)
        row = conn.execute("SELECT id FROM people WHERE ref = ?", (ref,)).fetchone()
        if row is None:
            row = conn.execute("SELECT person_id FROM person_aliases WHERE ref = ?", (ref,)).fetchone()
        if row is None:
            raise NotFound(f"no person {ref}")
        return int(row[0])

    def _load_person(self, conn: Any, person_id: int, *, raw: bool = False) -> Person:
        (row,) = _fetch(conn, PERSON_VIEW, "FROM people p WHERE p.id = ?", (person_id,))
        if raw:
            return _person(row, REVEAL_ALL)
        return self._visible_person(row)

    def get_person(self, ref: str) -> Person:
        conn = self.store.conn
        return self._load_person(conn, self._person_id(conn, ref))

    def validate_person(self, person: PersonInput, *, require_name: bool = True) -> dict[str, Any]:
        values = validated(person.raw(), PERSON_VALIDATORS, self.today)
        if require_name and "name" not in values:
            raise ValidationError("name", "is required", expected="the person's full name")
        return values

    def find_duplicates(self, person: PersonInput) -> list[DuplicateMatch]:
        """People already in the store with the same NHS number, name and date of birth, or phone.

        A match the tracer may not see is one withheld entry (see :meth:`_duplicates`);
        telling the tracer even that much is audited (``duplicate.withheld-match``).
        """
        values = self.validate_person(person, require_name=False)
        matches = self._duplicates(self.store.conn, values)
        if any(m.withheld for m in matches):
            self._audit_withheld_match([], "shown while entering a new person")
        return matches

    def _audit_withheld_match(self, refs: list[str], what: str) -> None:
        """Audit that typed details matched a withheld record (never which, nor how)."""
        with self.store.transaction() as conn:
            self._audit(conn, WITHHELD_MATCH_ACTION, refs, f"details matched a record the tracer may not see; {what}")

    @contextmanager
    def _withheld_match_audited(self) -> Iterator[None]:
        """Around a change's transaction: a refused duplicate that involved a withheld
        record is audited after the change has rolled back."""
        try:
            yield
        except DuplicatePerson as duplicate:
            if any(m.withheld for m in duplicate.matches):
                self._audit_withheld_match([], "refused as a possible duplicate")
            raise

    def _withheld_ids(self, conn: Any, person_ids: list[int]) -> set[int]:
        """Of these people, those the tracer may not see: marked and not revealed, or a
        contact in an exposure withheld by association (see ``_exposure``)."""
        marks = f"({','.join('?' * len(person_ids))})"
        hidden = {
            pid
            for (pid,) in conn.execute(f"SELECT person_id FROM person_roles WHERE person_id IN {marks}", person_ids)
            if pid not in self._reveal
        }
        for pid, case_person in conn.execute(
            "SELECT e.person_id, c.person_id FROM exposures e JOIN cases c ON c.id = e.case_id "
            f"JOIN person_roles r ON r.person_id = c.person_id WHERE e.person_id IN {marks} "
            "AND NOT EXISTS (SELECT 1 FROM released_exposures WHERE exposure_id = e.id)",
            person_ids,
        ):
            if case_person not in self._reveal:
                hidden.add(pid)
        return hidden

    def _duplicates(self, conn: Any, values: dict[str, Any], exclude: int | None = None) -> list[DuplicateMatch]:
        found: dict[int, list[str]] = {}
        if values.get("nhs_number"):
            for (pid,) in conn.execute("SELECT id FROM people WHERE nhs_number = ?", (values["nhs_number"],)):
                found.setdefault(pid, []).append("same NHS number")
        if values.get("name") and values.get("date_of_birth"):
            key = ids.name_key(values["name"])
            for (pid,) in conn.execute(
                "SELECT id FROM people WHERE name_key = ? AND date_of_birth = ?",
                (key, values["date_of_birth"].isoformat()),
            ):
                found.setdefault(pid, []).append("same name and date of birth")
        if values.get("phone"):
            for (pid,) in conn.execute("SELECT id FROM people WHERE phone = ?", (values["phone"],)):
                found.setdefault(pid, []).append("same phone")
        found.pop(exclude, None)  # type: ignore[arg-type]
        if not found:
            return []
        # A withheld person's reference, name, role or which detail matched would each
        # confirm the typed detail belongs to them: they are one anonymous entry, last.
        hidden = self._withheld_ids(conn, list(found))
        matches = [
            DuplicateMatch(self._load_person(conn, pid), reasons)
            for pid, reasons in sorted(found.items())
            if pid not in hidden
        ]
        if hidden:
            matches.append(DuplicateMatch(None, [WITHHELD_MATCH_TEXT], withheld=True))
        return matches

    def _insert_person(self, conn: Any, values: dict[str, Any]) -> int:
        dob = values.get("date_of_birth")
        person_id, ref = self._insert_with_ref(
            conn,
            RefKind.PERSON,
            PEOPLE,
            {
                **{name: values.get(name) for name in PEOPLE.details},
                "name_key": ids.name_key(values["name"]),
                "date_of_birth": dob.isoformat() if dob else None,
            },
        )
        self._index_person(conn, person_id, values)
        self._audit(conn, "person.add", [ref])
        return person_id

    def _index_person(self, conn: Any, person_id: int, values: dict[str, Any] | None) -> None:
        """Replace the person's search entry (None: remove it, e.g. for marked people).

        The old entry is deleted with the exact text it was indexed with (kept in
        ``people.search_terms``); with secure-delete on, its tokens are erased at once.
        """
        search_index.set_entry(conn, person_id, search_terms(values) if values is not None else None)

    def resolve_person(
        self,
        conn: Any,
        person: PersonInput | None,
        *,
        person_ref: str | None = None,
        link: str | None = None,
        new_person: bool = False,
    ) -> int:
        """The person a new case or contact is about: an existing one, or a new record.

        With details that match someone already stored, the caller must choose:
        ``link`` (that person's reference) or ``new_person``; otherwise Conflict lists the
        matches so the CLI can ask.
        """
        if person_ref:
            return self._person_id(conn, person_ref)
        if link:
            return self._person_id(conn, link)
        if person is None or person.is_empty():
            raise ValidationError(
                "person", "is required", expected="--person P-... or the person's details (--name ...)"
            )
        values = self.validate_person(person)
        matches = self._duplicates(conn, values)
        if matches and not new_person:
            listed = ", ".join(m.person.ref if m.person else WITHHELD_MATCH_TEXT for m in matches)
            link = "link to one with --link P-... or " if any(m.person for m in matches) else ""
            raise DuplicatePerson(
                matches, f"this person may already be in the store ({listed}); {link}add anyway with --new-person"
            )
        person_id = self._insert_person(conn, values)
        if any(m.withheld for m in matches):
            ref = conn.execute("SELECT ref FROM people WHERE id = ?", (person_id,)).fetchone()[0]
            self._audit(
                conn,
                WITHHELD_MATCH_ACTION,
                [ref],
                "details matched a record the tracer may not see; added as a new person",
            )
        return person_id

    def update_person(self, ref: str, changes: PersonInput) -> Person:
        values = validated({k: v for k, v in changes.raw().items() if v is not None}, PERSON_VALIDATORS, self.today)
        if not values:
            raise ValidationError("changes", "none given", expected="at least one field to change")
        with self.store.transaction() as conn:
            person_id = self._person_id(conn, ref)
            assignments = []
            params: list[Any] = []
            for name, value in values.items():
                assignments.append(f"{name} = ?")
                params.append(value.isoformat() if isinstance(value, date) else value)
            if "name" in values:
                assignments.append("name_key = ?")
                params.append(ids.name_key(values["name"]))
            before = self._load_person(conn, person_id, raw=True)
            conn.execute(
                f"UPDATE people SET {', '.join(assignments)}, updated_at = ? WHERE id = ?",
                (*params, utcnow(), person_id),
            )
            full = self._load_person(conn, person_id, raw=True)
            remember_former_details(conn, person_id, before, full)
            self._index_person(conn, person_id, None if full.role else full.__dict__)
            self._audit(conn, "person.update", [full.ref], None)
            return self._load_person(conn, person_id)

    def search_people(
        self, text: str, limit: int = 20, *, offset: int = 0, include_marked: bool = False
    ) -> list[Person]:
        """People whose name, phone, NHS number or postcode contains ``text``, newest first.

        People in sensitive roles are not in the index (their entries are removed when
        they are marked), so a search by their details finds nothing. With
        ``include_marked`` (after :meth:`reveal_search`), they are matched by a scan of
        the marked people only, which is small.
        """
        return self.search_page(text, limit, offset=offset, include_marked=include_marked).items

    def search_page(self, text: str, limit: int = 20, *, offset: int = 0, include_marked: bool = False) -> Page:
        """:meth:`search_people` as a page: the matches are not counted (``total`` None);
        ``more`` says whether more follow (one more match than the page is looked for)."""
        query = self._checked_search(text)
        conn = self.store.conn
        limit, offset = _limit(limit), max(0, offset)
        wanted = offset + limit + 1
        window = wanted
        while True:
            rows = list(self._search_rows(conn, text, query, window))
            # A protected person the index still holds (sensitive by association, or another
            # record of a marked person: same NHS number, or name and date of birth) is left
            # out: a masked row would tie the searched details to their reference. When
            # some were left out, look further for a full page.
            found = [person for person in map(self._visible_person, rows) if not person.masked]
            if len(found) >= wanted or len(rows) < window:
                break
            window *= 2
        if include_marked:
            found.extend(self._search_marked(conn, text))
        return Page(found[offset : offset + limit], None, limit, offset, more=len(found) > offset + limit)

    def _visible_person(self, row: dict[str, Any]) -> Person:
        """A person as any view shows them: masked if marked (unless revealed), and with
        what they share with a protected person withheld, or masked whole when they are
        another record of one (tracekit.records.association)."""
        return self._shared_withheld(_person(row, self._reveal))

    def iter_search_people(self, text: str, *, offset: int = 0) -> Iterator[Person]:
        """Every match of :meth:`search_people` from ``offset`` on, newest first, read one
        at a time (for streaming; protected people left out as there)."""
        rows = self._search_rows(self.store.conn, text, self._checked_search(text), None)
        visible = (person for person in map(self._visible_person, rows) if not person.masked)
        return itertools.islice(visible, max(0, offset), None)

    @staticmethod
    def _checked_search(text: str) -> str:
        query = _search_query(text)
        if query is None:
            raise ValidationError("search", "is too short", expected="at least 3 letters or digits")
        return query

    @staticmethod
    def _search_rows(conn: Any, text: str, query: str, limit: int | None) -> Iterable[dict[str, Any]]:
        """The newest ``limit`` people the index matches (all with None: a cursor read as
        it goes), newest first."""
        phone = _full_phone(text)
        if phone is not None:
            # A whole phone number: an exact index lookup (the trigram index is for parts).
            return _stream_rows(
                conn,
                PERSON_VIEW,
                "FROM people p WHERE p.phone = ? AND p.search_terms IS NOT NULL ORDER BY p.id DESC LIMIT ?",
                (phone, -1 if limit is None else limit),
            )
        if limit is None:
            return _stream_rows(
                conn,
                PERSON_VIEW,
                "FROM people_fts f JOIN people p ON p.id = f.rowid WHERE people_fts MATCH ? ORDER BY f.rowid DESC",
                (query,),
            )
        ids = _newest_matches(conn, query, limit)
        marks = ", ".join("?" * len(ids))
        return _fetch(conn, PERSON_VIEW, f"FROM people p WHERE p.id IN ({marks}) ORDER BY p.id DESC", ids)

    def _search_marked(self, conn: Any, text: str) -> list[Person]:
        needles = {v.lower() for v in _search_query(text).replace('"', " ").split(" OR ")}  # type: ignore[union-attr]
        needles = {n.strip() for n in needles if n.strip()}
        matches = []
        for row in _fetch(
            conn, PERSON_VIEW, "FROM person_roles r JOIN people p ON p.id = r.person_id WHERE p.referral_id IS NULL"
        ):
            full = _person(row, REVEAL_ALL)
            haystack = search_terms(full.__dict__).lower()
            if any(n in haystack for n in needles):
                matches.append(_person(row, self._reveal))
        return matches

    def merge_people(self, keep_ref: str, other_ref: str) -> Person:
        """Merge ``other`` into ``keep``: cases and exposures move, the other reference
        stays valid as an alias, and details ``keep`` lacks are taken from ``other``."""
        with self.store.transaction() as conn:
            keep_id = self._person_id(conn, keep_ref)
            other_id = self._person_id(conn, other_ref)
            if keep_id == other_id:
                raise Conflict("both references are the same person")
            keep = self._load_person(conn, keep_id, raw=True)
            other = self._load_person(conn, other_id, raw=True)
            if keep.referral_ref or other.referral_ref:
                raise Conflict("a referred person's record is sealed and cannot be merged")
            shared = conn.execute(
                "SELECT count(*) FROM exposures a JOIN exposures b ON a.case_id = b.case_id "
                "WHERE a.person_id = ? AND b.person_id = ?",
                (keep_id, other_id),
            ).fetchone()[0]
            if shared:
                raise Conflict(
                    f"{keep.ref} and {other.ref} are both contacts of the same case; remove one exposure first"
                )
            own = conn.execute(
                "SELECT count(*) FROM exposures e JOIN cases c ON c.id = e.case_id "
                "WHERE (e.person_id = ? AND c.person_id = ?) OR (e.person_id = ? AND c.person_id = ?)",
                (keep_id, other_id, other_id, keep_id),
            ).fetchone()[0]
            if own:
                raise Conflict(
                    f"{keep.ref} and {other.ref} are a case and a contact of that case; "
                    "merging would make the person their own contact"
                )
            fill = {
                name: getattr(other, name)
                for name in PERSON_DETAILS_BESIDES_NAME
                if getattr(keep, name) in (None, "") and getattr(other, name) not in (None, "")
            }
            if fill:
                assignments = ", ".join(f"{k} = ?" for k in fill)
                conn.execute(
                    f"UPDATE people SET {assignments}, updated_at = ? WHERE id = ?",
                    (*[v.isoformat() if isinstance(v, date) else v for v in fill.values()], utcnow(), keep_id),
                )
            conn.execute("UPDATE cases SET person_id = ? WHERE person_id = ?", (keep_id, other_id))
            conn.execute("UPDATE exposures SET person_id = ? WHERE person_id = ?", (keep_id, other_id))
            conn.execute("UPDATE person_aliases SET person_id = ? WHERE person_id = ?", (keep_id, other_id))
            self._index_person(conn, other_id, None)
            # Before the other record goes: deleting it would cascade its mark away.
            self._merge_marks(conn, keep, other)
            _merge_received(conn, keep_id, other_id)
            conn.execute(
                "INSERT OR IGNORE INTO person_former_details(person_id, field, value) "
                "SELECT ?, field, value FROM person_former_details WHERE person_id = ?",
                (keep_id, other_id),
            )
            conn.execute("DELETE FROM people WHERE id = ?", (other_id,))
            conn.execute("INSERT INTO person_aliases(ref, person_id) VALUES(?, ?)", (other.ref, keep_id))
            merged = self._load_person(conn, keep_id, raw=True)
            # What the other record carried and the merged one does not (its own phone, say).
            remember_former_details(conn, keep_id, other, merged)
            self._index_person(conn, keep_id, None if merged.role else merged.__dict__)
            self._audit(conn, "person.merge", [merged.ref, other.ref])
            result = self._load_person(conn, keep_id)
        self.forget_marks()  # the merged person's details may now all be a marked person's
        return result

    def _merge_marks(self, conn: Any, keep: Person, other: Person) -> None:
        """Keep the strongest protection of two people being merged (``other`` into ``keep``).

        A mark on either record applies to the merged person, whichever way round the
        merge is made, with a ``role.merge`` audit entry when it comes from ``other``. When
        both are marked, ``keep``'s role stays the role, and ``other``'s role and reason are
        added to the stored mark reason (it goes into a referral), so neither fact is lost.
        Association follows by itself: cases and exposures move to ``keep``; referred
        people are never merged.
        """
        if not other.role:
            return
        if not keep.role:
            conn.execute("UPDATE person_roles SET person_id = ? WHERE person_id = ?", (keep.id, other.id))
            self._audit(conn, "role.merge", [keep.ref, other.ref], f"{other.role}: carried over from {other.ref}")
            return
        other_reason = conn.execute("SELECT reason FROM person_roles WHERE person_id = ?", (other.id,)).fetchone()[0]
        conn.execute(
            "UPDATE person_roles SET reason = reason || ? WHERE person_id = ?",
            (f"; {other.ref} (merged in) was marked {other.role}: {other_reason}", keep.id),
        )
        self._audit(
            conn, "role.merge", [keep.ref, other.ref], f"{keep.role} kept; {other.role} recorded from {other.ref}"
        )

    # -- cases ---------------------------------------------------------------------------
    def _case_id(self, conn: Any, ref_text: str) -> int:
        ref = parse_ref(ref_text, RefKind.CASE)
        row = conn.execute("SELECT id FROM cases WHERE ref = ?", (ref,)).fetchone()
        if row is None:
            raise NotFound(f"no case {ref}")
        return int(row[0])

    def _load_case(self, conn: Any, case_id: int, *, raw: bool = False) -> Case:
        (row,) = _fetch(conn, CASE_VIEW, "FROM cases c JOIN people p ON p.id = c.person_id WHERE c.id = ?", (case_id,))
        return self._case_view(row, raw)

    def get_case(self, ref: str) -> Case:
        conn = self.store.conn
        return self._load_case(conn, self._case_id(conn, ref))

    def _case_rule_values(self, test_date: date, onset: date | None, rs: rules.RuleSet | None = None) -> dict[str, str]:
        return derived.case_values(test_date, onset, rs or self.ruleset_for(onset or test_date))

    def _check_case_dates(self, test_date: date, onset: date | None, dob: date | None = None) -> None:
        if onset and onset > test_date + timedelta(days=30):
            raise ValidationError(
                "symptom_onset", "is more than 30 days after the test date", expected="the date symptoms started"
            )
        if dob and test_date < dob:
            raise ValidationError(
                "test_date", "is before the date of birth", expected="a date after the person was born"
            )

    def add_case(
        self,
        *,
        person: PersonInput | None = None,
        person_ref: str | None = None,
        link: str | None = None,
        new_person: bool = False,
        test_date: str | date,
        test_type: str = "pcr",
        test_result: str = "positive",
        symptom_onset: str | date | None = None,
        asymptomatic: bool = False,
        notes: str | None = None,
        source_exposure_id: int | None = None,
    ) -> Case:
        values = validated(
            {
                "test_date": test_date,
                "test_type": test_type,
                "test_result": test_result,
                "symptom_onset": symptom_onset,
                "notes": notes,
            },
            CASE_VALIDATORS,
            self.today,
        )
        if "test_date" not in values:
            raise ValidationError("test_date", "is required", expected="the date of the positive test")
        onset = values.get("symptom_onset")
        if onset is None and not asymptomatic:
            raise ValidationError(
                "symptom_onset", "is required", expected="the date symptoms started, or --asymptomatic"
            )
        if onset is not None and asymptomatic:
            raise ValidationError(
                "symptom_onset", "was given for an asymptomatic case", expected="either an onset date or --asymptomatic"
            )
        self._check_case_dates(values["test_date"], onset)
        with self._withheld_match_audited(), self.store.transaction() as conn:
            person_id = self.resolve_person(conn, person, person_ref=person_ref, link=link, new_person=new_person)
            dob = conn.execute("SELECT date_of_birth FROM people WHERE id = ?", (person_id,)).fetchone()[0]
            self._check_case_dates(values["test_date"], onset, _date(dob))
            case_id, ref = self._insert_with_ref(
                conn,
                RefKind.CASE,
                CASES,
                {
                    **new_case_values(values, self._case_rule_values(values["test_date"], onset)),
                    "person_id": person_id,
                    "source_exposure_id": source_exposure_id,
                },
            )
            person_ref_now = self._load_person(conn, person_id).ref
            self._audit(conn, "case.add", [ref, person_ref_now])
            return self._load_case(conn, case_id)

    def list_cases(
        self,
        *,
        status: str | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """A page of cases, most recent test first, with the count of every match."""
        clause, params = self._case_filter(status, since, until)
        total = self.store.conn.execute(f"SELECT count(*) FROM cases c {clause}", params).fetchone()[0]
        items = list(self._cases(clause, params, offset, _limit(limit)))
        return Page(items, total, _limit(limit), max(0, offset))

    def iter_cases(
        self,
        *,
        status: str | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
        offset: int = 0,
    ) -> Iterator[Case]:
        """Every matching case from ``offset`` on, in the order of :meth:`list_cases`, read
        one at a time (for streaming: nothing is collected). The filters are checked now."""
        clause, params = self._case_filter(status, since, until)
        return self._cases(clause, params, offset, None)

    def _case_filter(
        self, status: str | None, since: str | date | None, until: str | date | None
    ) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if status:
            where.append("c.status = ?")
            params.append(validated({"status": status}, CASE_VALIDATORS, self.today)["status"])
        if since:
            where.append("c.test_date >= ?")
            params.append(ids.parse_date(str(since), "since").isoformat())
        if until:
            where.append("c.test_date <= ?")
            params.append(ids.parse_date(str(until), "until").isoformat())
        return ("WHERE " + " AND ".join(where)) if where else "", params

    def _cases(self, clause: str, params: list[Any], offset: int, limit: int | None) -> Iterator[Case]:
        rows = _stream_rows(
            self.store.conn,
            CASE_VIEW,
            f"FROM cases c JOIN people p ON p.id = c.person_id {clause} ORDER BY c.test_date DESC, c.id DESC LIMIT ? OFFSET ?",
            (*params, -1 if limit is None else limit, max(0, offset)),
        )
        for row in rows:
            yield self._case_view(row)

    def update_case(
        self,
        ref: str,
        *,
        test_date: str | date | None = None,
        test_type: str | None = None,
        test_result: str | None = None,
        symptom_onset: str | date | None = None,
        asymptomatic: bool = False,
        notes: str | None = None,
    ) -> Case:
        values = validated(
            {
                "test_date": test_date,
                "test_type": test_type,
                "test_result": test_result,
                "symptom_onset": symptom_onset,
                "notes": notes,
            },
            CASE_VALIDATORS,
            self.today,
        )
        if not values and not asymptomatic:
            raise ValidationError("changes", "none given", expected="at least one field to change")
        if asymptomatic and "symptom_onset" in values:
            raise ValidationError(
                "symptom_onset", "was given for an asymptomatic case", expected="either an onset date or --asymptomatic"
            )
        with self.store.transaction() as conn:
            case_id = self._case_id(conn, ref)
            current = self._load_case(conn, case_id)
            if current.status is CaseStatus.REFERRED:
                raise Conflict(f"{current.ref} has been referred; its record is sealed")
            new_test = values.get("test_date", current.test_date)
            new_onset = None if asymptomatic else values.get("symptom_onset", current.symptom_onset)
            self._check_case_dates(new_test, new_onset)
            columns = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in values.items()}
            columns["symptom_onset"] = new_onset.isoformat() if new_onset else None
            columns.update(self._case_rule_values(new_test, new_onset))
            assignments = ", ".join(f"{k} = ?" for k in columns)
            conn.execute(
                f"UPDATE cases SET {assignments}, updated_at = ? WHERE id = ?", (*columns.values(), utcnow(), case_id)
            )
            self._audit(conn, "case.update", [current.ref])
            return self._load_case(conn, case_id)

    def close_case(self, ref: str, *, reason: str | None = None) -> Case:
        from tracekit.records.identity import check_reason

        with self.store.transaction() as conn:
            case_id = self._case_id(conn, ref)
            current = self._load_case(conn, case_id)
            reason = check_reason(reason, [self._load_case(conn, case_id, raw=True).person], required=False)
            if current.status is not CaseStatus.OPEN:
                raise Conflict(f"{current.ref} is {current.status}, not open")
            now = utcnow()
            conn.execute(
                "UPDATE cases SET status = ?, closed_at = ?, updated_at = ? WHERE id = ?",
                (CaseStatus.CLOSED.value, now, now, case_id),
            )
            self._audit(conn, "case.close", [current.ref], reason)
            return self._load_case(conn, case_id)

    def _exposure_id(self, conn: Any, ref_text: str) -> int:
        ref = parse_ref(ref_text, RefKind.EXPOSURE)
        row = conn.execute("SELECT id FROM exposures WHERE ref = ?", (ref,)).fetchone()
        if row is None:
            raise NotFound(f"no contact {ref}")
        return int(row[0])

    def _load_exposure(self, conn: Any, exposure_id: int, *, with_calls: bool = True, raw: bool = False) -> Exposure:
        (row,) = _fetch(
            conn, EXPOSURE_VIEW, "FROM exposures e JOIN people p ON p.id = e.person_id WHERE e.id = ?", (exposure_id,)
        )
        exposure = self._exposure_view(row, raw)
        if with_calls:
            exposure.calls = [
                CallAttempt(at, CallOutcome(outcome), note if raw else self._scrub(note))
                for at, outcome, note in conn.execute(
                    "SELECT at, outcome, note FROM call_attempts WHERE exposure_id = ? ORDER BY id", (exposure_id,)
                )
            ]
        return exposure

    def get_contact(self, ref: str) -> Exposure:
        conn = self.store.conn
        return self._load_exposure(conn, self._exposure_id(conn, ref))

    def _exposure_rule_values(self, values: dict[str, Any], rs: rules.RuleSet | None = None) -> dict[str, Any]:
        return derived.exposure_values(values, rs or self.ruleset_for(values["last_exposure"]))

    def explain_contact(self, exposure: Exposure) -> rules.Closeness:
        """Which rule and clause made this contact close (or not). For a withheld contact
        only the stored yes/no: the clause would reveal the withheld setting."""
        rs = rules.get_ruleset(exposure.ruleset_id)
        if exposure.withheld:
            return rules.Closeness(
                is_close=exposure.close_contact,
                clause=None,
                explanation="withheld: sensitive by association",
                ruleset_id=rs.id,
            )
        return rules.classify_exposure(
            rs,
            setting=exposure.setting,
            proximity_m=exposure.proximity_m,
            duration_min=exposure.duration_min,
            face_to_face=exposure.face_to_face,
            direct_contact=exposure.direct_contact,
        )

    def exposure_warnings(self, case: Case, last_exposure: date) -> list[str]:
        if not case.infectious_start <= last_exposure <= case.infectious_end:
            return [
                f"the exposure on {last_exposure.isoformat()} is outside {case.ref}'s infectious period "
                f"({case.infectious_start.isoformat()} to {case.infectious_end.isoformat()}); recorded anyway"
            ]
        return []

    def add_contact(
        self,
        case_ref: str,
        *,
        person: PersonInput | None = None,
        person_ref: str | None = None,
        link: str | None = None,
        new_person: bool = False,
        last_exposure: str | date,
        setting: str,
        proximity_m: str | float | None = None,
        duration_min: str | float | None = None,
        face_to_face: bool = False,
        direct_contact: bool = False,
        notes: str | None = None,
    ) -> tuple[Exposure, list[str]]:
        """Record a contact of a case. Returns the exposure and any warnings."""
        values = validated(
            {
                "last_exposure": last_exposure,
                "setting": setting,
                "proximity_m": proximity_m,
                "duration_min": duration_min,
                "face_to_face": face_to_face,
                "direct_contact": direct_contact,
                "notes": notes,
            },
            EXPOSURE_VALIDATORS,
            self.today,
        )
        for required, expected in (("last_exposure", "the date of last contact"), ("setting", "where it happened")):
            if required not in values:
                raise ValidationError(required, "is required", expected=expected)
        with self._withheld_match_audited(), self.store.transaction() as conn:
            case_id = self._case_id(conn, case_ref)
            case = self._load_case(conn, case_id)
            if case.status is CaseStatus.REFERRED:
                raise Conflict(f"{case.ref} has been referred; add its contacts through the vetted team")
            person_id = self.resolve_person(conn, person, person_ref=person_ref, link=link, new_person=new_person)
            if person_id == case.person.id:
                raise Conflict(f"a case cannot be its own contact ({case.person.ref})")
            existing = conn.execute(
                "SELECT ref FROM exposures WHERE case_id = ? AND person_id = ?", (case_id, person_id)
            ).fetchone()
            if existing:
                raise Conflict(
                    f"this person is already a contact of {case.ref} ({existing[0]}); use 'contact update {existing[0]}'"
                )
            exposure_id, ref = self._insert_with_ref(
                conn,
                RefKind.EXPOSURE,
                EXPOSURES,
                {
                    **new_exposure_values(values, self._exposure_rule_values(values)),
                    "case_id": case_id,
                    "person_id": person_id,
                },
            )
            exposure = self._load_exposure(conn, exposure_id)
            self._audit(conn, "contact.add", [ref, case.ref, exposure.contact.ref])
        return exposure, self.exposure_warnings(case, values["last_exposure"])

    def list_contacts(
        self,
        *,
        case_ref: str | None = None,
        status: str | None = None,
        setting: str | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
        close_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> Page:
        """A page of contacts, most recent exposure first, with the count of every match."""
        clause, params = self._contact_filter(case_ref, status, setting, since, until, close_only)
        total = self.store.conn.execute(f"SELECT count(*) FROM exposures e {clause}", params).fetchone()[0]
        items = list(self._contacts(clause, params, offset, _limit(limit)))
        return Page(items, total, _limit(limit), max(0, offset))

    def iter_contacts(
        self,
        *,
        case_ref: str | None = None,
        status: str | None = None,
        setting: str | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
        close_only: bool = False,
        offset: int = 0,
    ) -> Iterator[Exposure]:
        """Every matching contact from ``offset`` on, in the order of :meth:`list_contacts`,
        read one at a time (for streaming). The filters are checked now."""
        clause, params = self._contact_filter(case_ref, status, setting, since, until, close_only)
        return self._contacts(clause, params, offset, None)

    def _contact_filter(
        self,
        case_ref: str | None,
        status: str | None,
        setting: str | None,
        since: str | date | None,
        until: str | date | None,
        close_only: bool,
    ) -> tuple[str, list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if case_ref:
            where.append("e.case_id = ?")
            params.append(self._case_id(self.store.conn, case_ref))
        if status:
            where.append("e.trace_status = ?")
            params.append(validated({"trace_status": status}, EXPOSURE_VALIDATORS, self.today)["trace_status"])
        if setting:
            where.append("e.setting = ?")
            params.append(validated({"setting": setting}, EXPOSURE_VALIDATORS, self.today)["setting"])
        if since:
            where.append("e.last_exposure >= ?")
            params.append(ids.parse_date(str(since), "since").isoformat())
        if until:
            where.append("e.last_exposure <= ?")
            params.append(ids.parse_date(str(until), "until").isoformat())
        if close_only:
            where.append("e.close_contact = 1")
        return ("WHERE " + " AND ".join(where)) if where else "", params

    def _contacts(self, clause: str, params: list[Any], offset: int, limit: int | None) -> Iterator[Exposure]:
        rows = _stream_rows(
            self.store.conn,
            EXPOSURE_VIEW,
            f"FROM exposures e JOIN people p ON p.id = e.person_id {clause} "
            "ORDER BY e.last_exposure DESC, e.id DESC LIMIT ? OFFSET ?",
            (*params, -1 if limit is None else limit, max(0, offset)),
        )
        for row in rows:
            yield self._exposure_view(row)

    def update_contact(
        self,
        ref: str,
        *,
        last_exposure: str | date | None = None,
        setting: str | None = None,
        proximity_m: str | float | None = None,
        duration_min: str | float | None = None,
        face_to_face: bool | None = None,
        direct_contact: bool | None = None,
        trace_status: str | None = None,
        notes: str | None = None,
    ) -> tuple[Exposure, list[str]]:
        values = validated(
            {
                "last_exposure": last_exposure,
                "setting": setting,
                "proximity_m": proximity_m,
                "duration_min": duration_min,
                "face_to_face": face_to_face,
                "direct_contact": direct_contact,
                "trace_status": trace_status,
                "notes": notes,
            },
            EXPOSURE_VALIDATORS,
            self.today,
        )
        if not values:
            raise ValidationError("changes", "none given", expected="at least one field to change")
        with self.store.transaction() as conn:
            exposure_id = self._exposure_id(conn, ref)
            current = self._load_exposure(conn, exposure_id, with_calls=False, raw=True)
            merged = {
                "last_exposure": current.last_exposure,
                "setting": current.setting,
                "proximity_m": current.proximity_m,
                "duration_min": current.duration_min,
                "face_to_face": current.face_to_face,
                "direct_contact": current.direct_contact,
                **values,
            }
            columns = {
                k: (v.isoformat() if isinstance(v, date) else (int(v) if isinstance(v, bool) else v))
                for k, v in values.items()
            }
            columns.update(self._exposure_rule_values(merged))
            assignments = ", ".join(f"{k} = ?" for k in columns)
            conn.execute(
                f"UPDATE exposures SET {assignments}, updated_at = ? WHERE id = ?",
                (*columns.values(), utcnow(), exposure_id),
            )
            exposure = self._load_exposure(conn, exposure_id)
            case = self._load_case(conn, self._case_id(conn, exposure.case_ref))
            self._audit(conn, "contact.update", [exposure.ref])
        warnings = self.exposure_warnings(case, exposure.last_exposure) if "last_exposure" in values else []
        return exposure, warnings

    def log_call(self, ref: str, outcome: str, note: str | None = None) -> Exposure:
        try:
            parsed = CallOutcome(str(outcome).strip().lower().replace("_", "-").replace(" ", "-"))
        except ValueError:
            raise ValidationError(
                "outcome", "is not a known call outcome", expected="one of " + ", ".join(o.value for o in CallOutcome)
            ) from None
        note_value = validated({"notes": note}, EXPOSURE_VALIDATORS, self.today).get("notes") if note else None
        with self.store.transaction() as conn:
            exposure_id = self._exposure_id(conn, ref)
            now = utcnow()
            conn.execute(
                "INSERT INTO call_attempts(exposure_id, at, outcome, note) VALUES(?, ?, ?, ?)",
                (exposure_id, now, parsed.value, note_value),
            )
            new_status = OUTCOME_STATUS[parsed]
            if new_status is not None:
                conn.execute(
                    "UPDATE exposures SET trace_status = ?, updated_at = ? WHERE id = ?",
                    (new_status.value, now, exposure_id),
                )
            exposure = self._load_exposure(conn, exposure_id)
            self._audit(conn, "contact.call", [exposure.ref], parsed.value)
        return exposure

    def _promotion_source(self, conn: Any, ref_text: str, source: str | None) -> tuple[int, int]:
        """The person to promote and the exposure to record as how they were infected.

        ``ref_text`` is the person (P-) or one of their contacts (E-: that exposure is the
        source). ``source`` names the exposure when promoting by P-; without it the
        person's most recent exposure is taken."""
        kind = RefKind(parse_ref(ref_text)[0])
        if kind is RefKind.EXPOSURE:
            exposure_id = self._exposure_id(conn, ref_text)
            if source is not None and self._exposure_id(conn, source) != exposure_id:
                raise ValidationError(
                    "source",
                    "names another exposure than the one being promoted",
                    expected="no --source when promoting by an exposure (E-) reference",
                )
            return int(
                conn.execute("SELECT person_id FROM exposures WHERE id = ?", (exposure_id,)).fetchone()[0]
            ), exposure_id
        if kind is not RefKind.PERSON:
            raise ValidationError(
                "reference",
                f"is {kind.a_noun} reference, not a person or exposure reference",
                expected=f"a reference like {RefKind.PERSON.example} or {RefKind.EXPOSURE.example}",
            )
        person_id = self._person_id(conn, ref_text)
        person_ref = self._load_person(conn, person_id).ref
        if source is not None:
            exposure_id = self._exposure_id(conn, source)
            owner = conn.execute("SELECT person_id FROM exposures WHERE id = ?", (exposure_id,)).fetchone()[0]
            if owner != person_id:
                raise Conflict(f"{parse_ref(source, RefKind.EXPOSURE)} is not an exposure of {person_ref}")
            return person_id, exposure_id
        row = conn.execute(
            "SELECT id FROM exposures WHERE person_id = ? ORDER BY last_exposure DESC, id DESC LIMIT 1", (person_id,)
        ).fetchone()
        if row is None:
            raise Conflict(f"{person_ref} is not a contact of any case; use 'case add --person'")
        return person_id, int(row[0])

    def promotion_source(self, ref: str, *, source: str | None = None) -> Exposure:
        """The exposure :meth:`promote_contact` would record as the source (checks the
        references before any question is asked)."""
        conn = self.store.conn
        _person_id, exposure_id = self._promotion_source(conn, ref, source)
        return self._load_exposure(conn, exposure_id, with_calls=False)

    def promote_contact(
        self,
        ref: str,
        *,
        test_date: str | date,
        test_type: str = "pcr",
        symptom_onset: str | date | None = None,
        asymptomatic: bool = False,
        notes: str | None = None,
        source: str | None = None,
    ) -> Case:
        """Make a contact a case, keeping the chain: the new case records the exposure
        through which the person was infected.

        ``ref`` is the person (P-) or the exposure (E-) through which they were infected.
        By P-, ``source`` names that exposure (E-); without it the person's most recent
        exposure is recorded."""
        conn = self.store.conn
        person_id, exposure_id = self._promotion_source(conn, ref, source)
        open_case = conn.execute(
            "SELECT ref FROM cases WHERE person_id = ? AND status = 'open'", (person_id,)
        ).fetchone()
        if open_case:
            raise Conflict(f"this person already has an open case ({open_case[0]})")
        return self.add_case(
            person_ref=self._load_person(conn, person_id).ref,
            test_date=test_date,
            test_type=test_type,
            symptom_onset=symptom_onset,
            asymptomatic=asymptomatic,
            notes=notes,
            source_exposure_id=exposure_id,
        )

    def case_tree(self, ref: str) -> tuple[TreeNode, int]:
        """The transmission chain containing a case: from its earliest known ancestor down.

        Returns the root node and the id of the case asked about (to highlight it).
        """
        conn = self.store.conn
        case_id = self._case_id(conn, ref)
        root_id, seen = case_id, {case_id}
        while True:
            parent = conn.execute(
                "SELECT e.case_id FROM cases c JOIN exposures e ON e.id = c.source_exposure_id WHERE c.id = ?",
                (root_id,),
            ).fetchone()
            if parent is None or parent[0] in seen:
                break
            root_id = parent[0]
            seen.add(root_id)
        return self._subtree(conn, root_id, None, set()), case_id

    def _subtree(self, conn: Any, case_id: int, via: Exposure | None, visited: set[int]) -> TreeNode:
        visited.add(case_id)
        node = TreeNode(self._load_case(conn, case_id), via)
        for (exposure_id,) in conn.execute(
            "SELECT id FROM exposures WHERE case_id = ? ORDER BY last_exposure, id", (case_id,)
        ).fetchall():
            exposure = self._load_exposure(conn, exposure_id, with_calls=False)
            child_cases = conn.execute(
                "SELECT id FROM cases WHERE source_exposure_id = ? ORDER BY id", (exposure_id,)
            ).fetchall()
            if not child_cases:
                node.uncased_contacts.append(exposure)
            for (child_id,) in child_cases:
                if child_id not in visited:
                    node.children.append(self._subtree(conn, child_id, exposure, visited))
        return node

    # -- the worklist ----------------------------------------------------------------------
    def worklist(
        self,
        day: date | None = None,
        limit: int = 50,
        *,
        offset: int = 0,
        count_up_to: int | None = None,
    ) -> Worklist:
        """Contacts to call on ``day`` (exposed on or before it, not yet reached, still
        within their isolation period, not a case by then), highest risk and most recent
        exposure first; and close contacts whose isolation ends on ``day``. A contact who
        is not close has no isolation; they stay on the list for as long as a close
        contact would isolate (the stored ``isolation_end``). A past ``day`` shows
        that day's list: nothing exposed or tested after it. Both lists are the page of
        at most ``limit`` from ``offset`` on.

        ``count_up_to``: count the contacts to call only up to this many (the total is
        then marked capped when there are more), and the isolation ends not at all. Counting
        a backlog of tens of thousands exactly costs tens of milliseconds, which the day's
        view does not need."""
        day = day or self.today
        conn = self.store.conn
        pending, params = self._pending(day)
        capped = False
        if count_up_to is None:
            to_call_total = conn.execute(f"SELECT count(*) FROM exposures e WHERE {pending}", params).fetchone()[0]
        else:
            cap = max(int(count_up_to), 0)
            to_call_total = conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM exposures e WHERE {pending} LIMIT ?)", (*params, cap + 1)
            ).fetchone()[0]
            if to_call_total > cap:
                to_call_total, capped = cap, True
        # Many waiting: walk the worklist index in call order and stop at the limit. Few
        # (the usual day, or a day after the data): find them by isolation end and sort
        # them; walking the worklist index would read every contact not yet reached
        # (seconds on millions of contacts when none of them is still isolating).
        index = "exposures_worklist" if capped or to_call_total > _SORT_WAITING_UP_TO else "exposures_pending"
        to_call = list(self._to_call(day, index, offset, _limit(limit)))
        ending_where = "WHERE e.isolation_end = ? AND e.close_contact = 1"
        ending_total = (
            None
            if count_up_to is not None
            # the day's view shows them without a count
            else (conn.execute(f"SELECT count(*) FROM exposures e {ending_where}", (day.isoformat(),)).fetchone()[0])
        )
        ending = _fetch(
            conn,
            EXPOSURE_VIEW,
            f"FROM exposures e JOIN people p ON p.id = e.person_id {ending_where} ORDER BY e.risk_rank, e.id LIMIT ? OFFSET ?",
            (day.isoformat(), _limit(limit), max(0, offset)),
        )
        return Worklist(
            day,
            to_call,
            [self._exposure_view(r) for r in ending],
            to_call_total,
            capped,
            isolation_ends_total=ending_total,
            limit=_limit(limit),
            offset=max(0, offset),
        )

    def iter_to_call(self, day: date | None = None, *, offset: int = 0) -> Iterator[Exposure]:
        """Every contact to call on ``day`` from ``offset`` on, in the order of
        :meth:`worklist`, read one at a time (for streaming): the worklist index is
        walked in call order, so nothing is sorted or collected."""
        return self._to_call(day or self.today, "exposures_worklist", offset, None)

    @staticmethod
    def _pending(day: date) -> tuple[str, tuple[Any, ...]]:
        # Still worth a call: exposed by then, not reached yet, isolation not over, and
        # not a case themselves (tested by then).
        pending = (
            "e.trace_status = ? AND e.isolation_end >= ? AND e.last_exposure <= ? AND NOT EXISTS "
            "(SELECT 1 FROM cases oc INDEXED BY cases_person WHERE oc.person_id = e.person_id AND oc.status = 'open' "
            "AND oc.test_date <= ?)"
        )
        return pending, (TraceStatus.NOT_YET_REACHED.value, day.isoformat(), day.isoformat(), day.isoformat())

    def _to_call(self, day: date, index: str, offset: int, limit: int | None) -> Iterator[Exposure]:
        pending, params = self._pending(day)
        rows = _stream_rows(
            self.store.conn,
            EXPOSURE_VIEW,
            f"FROM exposures e INDEXED BY {index} JOIN people p ON p.id = e.person_id "
            f"WHERE {pending} ORDER BY e.risk_rank, e.last_exposure DESC, e.id LIMIT ? OFFSET ?",
            (*params, -1 if limit is None else limit, max(0, offset)),
        )
        for row in rows:
            yield self._exposure_view(row)


def _merge_received(conn: Any, keep_id: int, other_id: int) -> None:
    """A merged person came in a referral if either record did (tracekit.records.receive):
    the link to the referral moves to ``keep``, so the merged person still never goes
    back to central. Protection is monotone."""
    conn.execute("UPDATE received_referrals SET person_id = ? WHERE person_id = ?", (keep_id, other_id))
    conn.execute(
        "INSERT OR IGNORE INTO received_records(kind, record_id, received_id, source_ref) "
        "SELECT kind, ?, received_id, source_ref FROM received_records WHERE kind = 'person' AND record_id = ?",
        (keep_id, other_id),
    )
    conn.execute("DELETE FROM received_records WHERE kind = 'person' AND record_id = ?", (other_id,))


#: The audit action for typed details that matched a record the tracer may not see.
WITHHELD_MATCH_ACTION = "duplicate.withheld-match"


class DuplicatePerson(Conflict):
    """The details match people already stored; ``matches`` lists them."""

    def __init__(self, matches: list[DuplicateMatch], message: str) -> None:
        super().__init__(message)
        self.matches = matches


def _limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))


def _full_phone(text: str) -> str | None:
    """The E.164 form if ``text`` is a complete phone number (and nothing else), else None."""
    if sum(ch.isdigit() for ch in text) < 10 or any(ch.isalpha() for ch in text):
        return None
    try:
        return ids.normalise_phone(text)
    except ValidationError:
        return None


#: Up to this many contacts waiting, the worklist finds them all and sorts them.
_SORT_WAITING_UP_TO = 1000

#: The newest people a search looks among first (see _newest_matches).
_SEARCH_WINDOW = 2048


def _newest_matches(conn: Any, query: str, limit: int) -> list[int]:
    """The ids of the newest ``limit`` people matching the FTS5 ``query``, newest first.

    FTS5 reads a phrase's matches in descending rowid order slowly (it loads every
    trigram's whole list: 15-30 ms for a common surname in a million people), but seeks a
    rowid range quickly. So look among the newest ids first and widen the range until
    enough are found or it covers everyone: the answer is exactly that of ``ORDER BY
    rowid DESC LIMIT n``, usually in one step of about a millisecond. The next range is
    sized from how many the last one found (a rare surname: 1 match in 2,048 people asks
    for about 60,000 next, rather than four steps of 4x), and at least four times wider.
    """
    top = conn.execute("SELECT max(id) FROM people").fetchone()[0] or 0
    window = _SEARCH_WINDOW
    while True:
        low = top - window
        ids = [
            rowid
            for (rowid,) in conn.execute(
                "SELECT rowid FROM people_fts WHERE people_fts MATCH ? AND rowid > ?", (query, low)
            )
        ]
        if len(ids) >= limit or low <= 0:
            ids.sort(reverse=True)
            return ids[:limit]
        window = max(window * 4, window * limit * 3 // 2 // len(ids)) if ids else window * 16


def _search_query(text: str) -> str | None:
    """An FTS5 query: each variant of the text as a quoted trigram phrase, OR-ed."""
    text = " ".join(text.split())
    if not text:
        return None
    variants = {ids.name_key(text)}
    compact = "".join(ch for ch in text if ch.isalnum())
    if compact:
        variants.add(compact.upper() if any(c.isalpha() for c in compact) else compact)
        variants.add(compact.lower())
    if sum(ch.isdigit() for ch in text) >= 7:
        try:
            variants.add(ids.normalise_phone(text))
        except ValidationError:
            pass
    # The trigram tokenizer folds case, so variants differing only in case are one.
    variants = {v.lower() for v in variants if len(v) >= 3}
    if not variants:
        return None
    return " OR ".join('"' + v.replace('"', '""') + '"' for v in sorted(variants))
