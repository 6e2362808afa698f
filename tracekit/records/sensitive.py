"""People in sensitive roles: marking, releasing contacts, recipients and sealed referral.

What marking does (see docs/sensitive-roles.md):

* the person's identity is masked in every result of :class:`Casebook` unless revealed
  (``Casebook.reveal``, audited with a reason), and they leave the search index;
* the exposures of their cases are withheld ("sensitive by association") unless the
  tracer releases one with a reason;
* if earlier handovers carried their records (or their contacts') in clear, ``mark`` says
  which, and writes a recall request for the vetted team (:mod:`tracekit.bundle.recalls`);
* :meth:`SensitiveRoles.refer` seals their full record, their exposures and the
  associated contacts' details to the vetted team's age keys, and purges the plaintext
  from the store, leaving a stub (reference, role category, dates, status "referred").

Reasons are stored and audited, so a reason that contains the person's own details
(name, phone, NHS number, email, address, postcode, date of birth, in any written form
:mod:`tracekit.records.identity` knows) is refused.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tracekit.bundle.recalls import ClearHandover, create_recall, handed_over_in_clear
from tracekit.domain.refs import RefKind, new_ref, parse_ref
from tracekit.errors import Conflict, NotFound, PolicyError, ValidationError
from tracekit.records.casebook import Casebook, utcnow
from tracekit.records.identity import (
    WITHHELD_IN_TEXT,
    check_reason,
    identifier_keys,
    identity_matcher,
)
from tracekit.records.models import CaseStatus, Person
from tracekit.records.tables import PEOPLE, PERSON_DETAILS_BESIDES_NAME
from tracekit.store import search_index

ROLES: dict[str, str] = {
    "undercover-officer": "undercover police officer",
    "counter-terrorism": "counter-terrorism officer",
    "protected-witness": "protected witness",
    "victim": "victim of crime (e.g. living in a refuge)",
    "other": "other sensitive role (say why in the reason)",
}

RECIPIENT_ROLES = ("vetted-team", "central-team")
ENVELOPE_FORMAT = "tracekit-referral"
ENVELOPE_VERSION = 1


@dataclass
class RoleMark:
    person_ref: str
    role: str
    marked_at: str
    referral_ref: str | None
    #: (``mark`` only) earlier bundles that carried the person's records in clear, and the
    #: recall request written for the vetted team because of them
    handed_over_in_clear: list[ClearHandover] = field(default_factory=list)
    recall: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "person": self.person_ref,
            "role": self.role,
            "marked_at": self.marked_at,
            "referral": self.referral_ref,
        }
        if self.handed_over_in_clear or self.recall:
            out["handed_over_in_clear"] = [h.to_json() for h in self.handed_over_in_clear]
            out["recall"] = self.recall
        return out


@dataclass
class Recipient:
    name: str
    role: str
    public_key: str
    added_at: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "public_key": self.public_key, "added_at": self.added_at}


@dataclass
class ReferralPreview:
    """What :meth:`SensitiveRoles.refer` would seal and purge, by reference and count only
    (shown before the tracer confirms a referral)."""

    person_ref: str
    role: str
    recipients: list[str]
    case_refs: list[str]
    contacts_of_cases: int
    exposures_as_contact: int


@dataclass
class Referral:
    ref: str
    role: str
    created_at: str
    recipients: list[str]
    exported_at: str | None
    size: int

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "role": self.role,
            "created_at": self.created_at,
            "recipients": self.recipients,
            "exported_at": self.exported_at,
            "size_bytes": self.size,
        }


def parse_recipient_key(text: str) -> str:
    """An age X25519 recipient (``age1...``), checked by pyrage."""
    from pyrage import RecipientError, x25519

    key = text.strip()
    try:
        x25519.Recipient.from_str(key)
    except (RecipientError, ValueError):
        raise ValidationError(
            "public_key", "is not an age public key", expected="an age X25519 recipient such as age1..."
        ) from None
    return key


class SensitiveRoles:
    """Marking, releasing, recipients and referral, on top of a :class:`Casebook`."""

    def __init__(self, casebook: Casebook) -> None:
        self.casebook = casebook
        self.store = casebook.store

    # -- marking -------------------------------------------------------------------------
    def mark(self, person_ref: str, role: str, reason: str) -> RoleMark:
        role_key = str(role).strip().lower()
        if role_key not in ROLES:
            raise ValidationError("role", "is not a sensitive role", expected="one of " + ", ".join(ROLES))
        cb = self.casebook
        with self.store.transaction() as conn:
            person_id = cb._person_id(conn, person_ref)
            person = cb._load_person(conn, person_id, raw=True)
            if person.role:
                raise Conflict(f"{person.ref} is already marked ({person.role}); unmark first to change the role")
            text = check_reason(reason, [person])
            now = utcnow()
            conn.execute(
                "INSERT INTO person_roles(person_id, role, reason, marked_at) VALUES(?, ?, ?, ?)",
                (person_id, role_key, text, now),
            )
            cb._index_person(conn, person_id, None)  # not findable by their details any more
            cb._audit(conn, "role.mark", [person.ref], f"{role_key}: {text}")
            # Bundles already sent cannot be taken back, and the central team must not be
            # told (that would be the disclosure): the vetted team gets a recall request.
            earlier = handed_over_in_clear(conn, person_id)
            recall = create_recall(conn, person.ref, role_key, earlier, now) if earlier else None
            if recall:
                cb._audit(
                    conn,
                    "recall.create",
                    [person.ref],
                    f"recall {recall}: in clear in bundle(s) {', '.join(h.bundle_id for h in earlier)}",
                )
        cb.forget_marks()
        return RoleMark(person.ref, role_key, now, None, earlier, recall)

    def unmark(self, person_ref: str, reason: str) -> None:
        cb = self.casebook
        with self.store.transaction() as conn:
            person_id = cb._person_id(conn, person_ref)
            person = cb._load_person(conn, person_id, raw=True)
            if not person.role:
                raise Conflict(f"{person.ref} is not marked")
            if person.referral_ref:
                raise Conflict(f"{person.ref} has been referred ({person.referral_ref}); the record is sealed")
            text = check_reason(reason, [person])
            conn.execute("DELETE FROM person_roles WHERE person_id = ?", (person_id,))
            conn.execute(
                "DELETE FROM released_exposures WHERE exposure_id IN "
                "(SELECT e.id FROM exposures e JOIN cases c ON c.id = e.case_id WHERE c.person_id = ?)",
                (person_id,),
            )
            cb._index_person(conn, person_id, person.__dict__)
            cb._audit(conn, "role.unmark", [person.ref], text)
        cb.forget_marks()

    def list_marks(self) -> list[RoleMark]:
        rows = self.store.query(
            "SELECT p.ref, r.role, r.marked_at, (SELECT ref FROM referrals WHERE id = r.referral_id) "
            "FROM person_roles r JOIN people p ON p.id = r.person_id ORDER BY r.marked_at, p.ref"
        )
        return [RoleMark(*row) for row in rows]

    def release_contact(self, exposure_ref: str, reason: str) -> None:
        """Show one contact of a marked case in standard outputs (plainly unrelated)."""
        cb = self.casebook
        with self.store.transaction() as conn:
            exposure_id = cb._exposure_id(conn, exposure_ref)
            exposure = cb._load_exposure(conn, exposure_id, raw=True, with_calls=False)
            case = cb._load_case(conn, cb._case_id(conn, exposure.case_ref), raw=True)
            if not case.person.role:
                raise Conflict(f"{exposure.ref} is a contact of an ordinary case; nothing is withheld")
            if case.person.referral_ref:
                raise Conflict(f"{exposure.ref} belongs to a referred case; it is sealed")
            if conn.execute("SELECT 1 FROM released_exposures WHERE exposure_id = ?", (exposure_id,)).fetchone():
                raise Conflict(f"{exposure.ref} is already released")
            text = check_reason(reason, [case.person, exposure.contact])
            conn.execute(
                "INSERT INTO released_exposures(exposure_id, reason, released_at) VALUES(?, ?, ?)",
                (exposure_id, text, utcnow()),
            )
            cb._audit(conn, "contact.release", [exposure.ref, case.ref], text)

    # -- recipients ----------------------------------------------------------------------
    def add_recipient(self, name: str, public_key: str, role: str) -> Recipient:
        clean = " ".join(str(name).split())
        if not clean or len(clean) > 100 or not re.fullmatch(r"[\w .@-]+", clean):
            raise ValidationError(
                "name", "is not a usable recipient name", expected="1 to 100 letters, digits, spaces, . @ - _"
            )
        role_key = str(role).strip().lower()
        if role_key not in RECIPIENT_ROLES:
            raise ValidationError("role", "is not a recipient role", expected="one of " + ", ".join(RECIPIENT_ROLES))
        key = parse_recipient_key(public_key)
        now = utcnow()
        with self.store.transaction() as conn:
            if conn.execute("SELECT 1 FROM recipients WHERE name = ?", (clean,)).fetchone():
                raise Conflict(f"a recipient named {clean!r} already exists")
            conn.execute(
                "INSERT INTO recipients(name, role, public_key, added_at) VALUES(?, ?, ?, ?)",
                (clean, role_key, key, now),
            )
            self.casebook._audit(conn, "recipient.add", [], f"{clean} ({role_key}) {key}")
        return Recipient(clean, role_key, key, now)

    def remove_recipient(self, name: str) -> None:
        with self.store.transaction() as conn:
            cursor = conn.execute("DELETE FROM recipients WHERE name = ?", (name,))
            if cursor.rowcount == 0:
                raise NotFound(f"no recipient named {name!r}")
            self.casebook._audit(conn, "recipient.remove", [], name)

    def recipients(self, role: str | None = None) -> list[Recipient]:
        if role:
            rows = self.store.query(
                "SELECT name, role, public_key, added_at FROM recipients WHERE role = ? ORDER BY name", (role,)
            )
        else:
            rows = self.store.query("SELECT name, role, public_key, added_at FROM recipients ORDER BY role, name")
        return [Recipient(*r) for r in rows]

    # -- referral ------------------------------------------------------------------------
    def _vetted_recipients(self) -> list[Recipient]:
        vetted = self.recipients("vetted-team")
        if not vetted:
            raise PolicyError(
                "no vetted-team recipient is configured, so nothing can be sealed; nothing was changed",
                hint="add the vetted team's age key: tracekit recipients add NAME age1... --role vetted-team",
            )
        return vetted

    def _referable(self, conn: Any, person_ref: str) -> tuple[int, Person]:
        """The person to refer (id, unmasked): marked and not yet referred."""
        cb = self.casebook
        person_id = cb._person_id(conn, person_ref)
        person = cb._load_person(conn, person_id, raw=True)
        if not person.role:
            raise Conflict(f"{person.ref} is not marked; mark the person first (tracekit role mark)")
        if person.referral_ref:
            raise Conflict(f"{person.ref} has already been referred ({person.referral_ref})")
        return person_id, person

    def referral_preview(self, person_ref: str) -> ReferralPreview:
        """What referring ``person_ref`` would seal and purge; refuses as :meth:`refer`
        would (no vetted team, not marked, already referred) without changing anything."""
        vetted = self._vetted_recipients()
        conn = self.store.conn
        person_id, person = self._referable(conn, person_ref)
        case_refs = [
            ref for (ref,) in conn.execute("SELECT ref FROM cases WHERE person_id = ? ORDER BY id", (person_id,))
        ]
        contacts = conn.execute(
            "SELECT count(*) FROM exposures e JOIN cases c ON c.id = e.case_id WHERE c.person_id = ?", (person_id,)
        ).fetchone()[0]
        as_contact = conn.execute("SELECT count(*) FROM exposures WHERE person_id = ?", (person_id,)).fetchone()[0]
        return ReferralPreview(person.ref, person.role or "", [r.name for r in vetted], case_refs, contacts, as_contact)

    def refer(self, person_ref: str, reason: str | None = None) -> Referral:
        """Seal a marked person's record to the vetted team and purge it from the store."""
        from pyrage import encrypt, x25519

        from tracekit import __version__
        from tracekit.crypto import signing

        vetted = self._vetted_recipients()
        cb = self.casebook
        with self.store.transaction() as conn:
            person_id, person = self._referable(conn, person_ref)
            text = check_reason(reason, [person], required=False)
            mark_reason = conn.execute("SELECT reason FROM person_roles WHERE person_id = ?", (person_id,)).fetchone()[
                0
            ]
            referral_ref = self._new_referral_ref(conn)
            payload = self._envelope_payload(conn, person_id, referral_ref, mark_reason, text, __version__)
            payload_bytes = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
            signature = signing.sign(conn, payload_bytes)
            envelope = json.dumps(
                {
                    "format": ENVELOPE_FORMAT,
                    "version": ENVELOPE_VERSION,
                    "signer": signing.public_key_hex(conn),
                    "payload": base64.b64encode(payload_bytes).decode("ascii"),
                    "signature": base64.b64encode(signature).decode("ascii"),
                },
                sort_keys=True,
            ).encode("utf-8")
            sealed = encrypt(envelope, [x25519.Recipient.from_str(r.public_key) for r in vetted])
            now = utcnow()
            cursor = conn.execute(
                "INSERT INTO referrals(ref, role, created_at, recipients, envelope) VALUES(?, ?, ?, ?, ?)",
                (referral_ref, person.role, now, json.dumps([r.name for r in vetted]), sealed),
            )
            referral_id = int(cursor.lastrowid)
            self._purge(conn, person_id, referral_id)
            cb._audit(conn, "referral.create", [referral_ref, person.ref], text)
        cb.forget_marks()
        return Referral(referral_ref, person.role or "", now, [r.name for r in vetted], None, len(sealed))

    def _new_referral_ref(self, conn: Any) -> str:
        for _ in range(20):
            ref = new_ref(RefKind.REFERRAL)
            if not conn.execute("SELECT 1 FROM referrals WHERE ref = ?", (ref,)).fetchone():
                return ref
        raise Conflict("could not draw an unused referral reference")  # pragma: no cover

    def _envelope_payload(
        self, conn: Any, person_id: int, referral_ref: str, mark_reason: str | None, reason: str | None, version: str
    ) -> dict[str, Any]:
        from tracekit.crypto import signing

        cb = self.casebook
        person = cb._load_person(conn, person_id, raw=True)
        cases = []
        for (case_id,) in conn.execute("SELECT id FROM cases WHERE person_id = ? ORDER BY id", (person_id,)).fetchall():
            case = cb._load_case(conn, case_id, raw=True).to_json()
            case["contacts"] = [
                cb._load_exposure(conn, exposure_id, raw=True).to_json()
                for (exposure_id,) in conn.execute(
                    "SELECT id FROM exposures WHERE case_id = ? ORDER BY id", (case_id,)
                ).fetchall()
            ]
            cases.append(case)
        as_contact = [
            cb._load_exposure(conn, exposure_id, raw=True).to_json()
            for (exposure_id,) in conn.execute(
                "SELECT id FROM exposures WHERE person_id = ? ORDER BY id", (person_id,)
            ).fetchall()
        ]
        public_hex = signing.public_key_hex(conn)
        return {
            "referral": referral_ref,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "tracekit_version": version,
            "tracer_key": {
                "algorithm": "ed25519",
                "public_key": public_hex,
                "fingerprint": signing.fingerprint(public_hex),
            },
            "role": person.role,
            "mark_reason": mark_reason,
            "referral_reason": reason,
            "person": person.to_json(),
            "cases": cases,
            "exposures_as_contact": as_contact,
        }

    def _purge(self, conn: Any, person_id: int, referral_id: int) -> None:
        """Remove the referred person's and their associates' details, leaving stubs.

        Kept: references, role category, dates (tests, onset, infectious period,
        exposures, isolation ends), close-contact yes/no, trace status. Gone: identity
        and contact details, notes, settings and circumstances, call notes, and the link
        between the referred case and any contact who is also known elsewhere.
        """
        cb = self.casebook
        # Every detail of the person spec goes (a field added there is purged too).
        stub_identity = ", ".join(
            ["name = ''", "name_key = ''", *(f"{name} = NULL" for name in PERSON_DETAILS_BESIDES_NAME)]
        )
        now = utcnow()
        case_ids = [r[0] for r in conn.execute("SELECT id FROM cases WHERE person_id = ?", (person_id,)).fetchall()]
        for case_id in case_ids:
            for exposure_id, contact_id in conn.execute(
                "SELECT id, person_id FROM exposures WHERE case_id = ?", (case_id,)
            ).fetchall():
                linked_elsewhere = conn.execute(
                    "SELECT (SELECT count(*) FROM exposures WHERE person_id = ? AND case_id NOT IN "
                    f"({','.join('?' * len(case_ids))})) + (SELECT count(*) FROM cases WHERE person_id = ?)",
                    (contact_id, *case_ids, contact_id),
                ).fetchone()[0]
                if linked_elsewhere:
                    # Known elsewhere: keep them, but cut the link to the referred case.
                    stub_id, _ = cb._insert_with_ref(
                        conn, RefKind.PERSON, PEOPLE, {"name": "", "name_key": "", "referral_id": referral_id}
                    )
                    conn.execute("UPDATE exposures SET person_id = ? WHERE id = ?", (stub_id, exposure_id))
                else:
                    cb._index_person(conn, contact_id, None)
                    conn.execute(
                        f"UPDATE people SET {stub_identity}, referral_id = ?, updated_at = ? WHERE id = ?",
                        (referral_id, now, contact_id),
                    )
                    conn.execute("DELETE FROM person_aliases WHERE person_id = ?", (contact_id,))
                conn.execute(
                    "UPDATE exposures SET setting = 'withheld', proximity_m = NULL, duration_min = NULL, "
                    "face_to_face = 0, direct_contact = 0, notes = NULL, clause = NULL, updated_at = ? WHERE id = ?",
                    (now, exposure_id),
                )
                conn.execute("DELETE FROM call_attempts WHERE exposure_id = ?", (exposure_id,))
                conn.execute("DELETE FROM released_exposures WHERE exposure_id = ?", (exposure_id,))
            conn.execute(
                "UPDATE cases SET status = ?, notes = NULL, updated_at = ? WHERE id = ?",
                (CaseStatus.REFERRED.value, now, case_id),
            )
        # Where the referred person was a contact of ordinary cases: keep the dates only.
        for (exposure_id,) in conn.execute("SELECT id FROM exposures WHERE person_id = ?", (person_id,)).fetchall():
            conn.execute("UPDATE exposures SET notes = NULL, updated_at = ? WHERE id = ?", (now, exposure_id))
            conn.execute("UPDATE call_attempts SET note = NULL WHERE exposure_id = ?", (exposure_id,))
            # Kept only as a withheld link: the date and the close-contact yes/no.
            conn.execute(
                "UPDATE exposures SET setting = 'withheld', proximity_m = NULL, duration_min = NULL, "
                "face_to_face = 0, direct_contact = 0, clause = NULL WHERE id = ?",
                (exposure_id,),
            )
            conn.execute("DELETE FROM released_exposures WHERE exposure_id = ?", (exposure_id,))
        person = cb._load_person(conn, person_id, raw=True)
        self._purge_traces(conn, person, person_id, case_ids, referral_id, now)
        conn.execute("DELETE FROM person_former_details WHERE person_id = ?", (person_id,))
        cb._index_person(conn, person_id, None)
        conn.execute(
            f"UPDATE people SET {stub_identity}, referral_id = ?, updated_at = ? WHERE id = ?",
            (referral_id, now, person_id),
        )
        conn.execute(
            "UPDATE person_roles SET reason = NULL, referral_id = ? WHERE person_id = ?", (referral_id, person_id)
        )
        # Entries a bulk import took out by delete markers may still be in the index's
        # pages, this person's among them: merge them away before the purge commits.
        search_index.clear_residue(conn)

    def _purge_traces(
        self, conn: Any, person: Person, person_id: int, case_ids: list[int], referral_id: int, now: str
    ) -> None:
        """What names the referred person or shares an identifier with them, elsewhere in
        the store: their identifiers become tombstones (keyed digests, to recognise a later
        import of them), notes anywhere that mention them are rewritten with the withheld
        marker, another record of them (same NHS number, or name and date of birth) is
        purged like theirs, other people's copies of their phone, email or address are
        removed, and the external ids that would link a re-import to their records go."""
        from tracekit.records import association
        from tracekit.records.casebook import former_details

        cb = self.casebook
        everyone = [person, *former_details(conn, [person])]  # with what a merge or update replaced
        keys = set().union(*(identifier_keys(p) for p in everyone))
        association.write_tombstones(conn, keys, referral_id)
        matcher = identity_matcher(everyone)
        if matcher is not None:
            for table, column in (("cases", "notes"), ("exposures", "notes")):
                for row_id, text in conn.execute(
                    f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL"
                ).fetchall():
                    scrubbed = matcher.scrub(text, WITHHELD_IN_TEXT)
                    if scrubbed != text:
                        conn.execute(
                            f"UPDATE {table} SET {column} = ?, updated_at = ? WHERE id = ?", (scrubbed, now, row_id)
                        )
            for row_id, text in conn.execute("SELECT id, note FROM call_attempts WHERE note IS NOT NULL").fetchall():
                scrubbed = matcher.scrub(text, WITHHELD_IN_TEXT)
                if scrubbed != text:
                    conn.execute("UPDATE call_attempts SET note = ? WHERE id = ?", (scrubbed, row_id))
        protected = association.ProtectedKeys(conn, marked=everyone)
        for other_id in sorted({i for p in everyone for i in self._sharing_people(conn, p, person_id)}):
            other = cb._load_person(conn, other_id, raw=True)
            whole, fields = protected.withheld_fields(other, own_id=other_id)
            if whole:  # another record of the referred person
                cb._index_person(conn, other_id, None)
                conn.execute(
                    "UPDATE people SET name = '', name_key = '', date_of_birth = NULL, nhs_number = NULL, phone = NULL, "
                    "email = NULL, address = NULL, postcode = NULL, occupation = NULL, referral_id = ?, updated_at = ? "
                    "WHERE id = ?",
                    (referral_id, now, other_id),
                )
                continue
            fields = fields - {"name"}  # a namesake keeps their name (scrubbed from notes all the same)
            if not fields:
                continue
            conn.execute(
                f"UPDATE people SET {', '.join(f'{f} = NULL' for f in sorted(fields))}, updated_at = ? WHERE id = ?",
                (now, other_id),
            )
            kept = {
                f: (None if f in fields else getattr(other, f)) for f in ("name", "phone", "nhs_number", "postcode")
            }
            cb._index_person(conn, other_id, None if other.role else kept)
        exposure_ids = [r[0] for r in conn.execute("SELECT id FROM exposures WHERE person_id = ?", (person_id,))]
        for kind, ids in (("person", [person_id]), ("case", case_ids), ("contact", exposure_ids)):
            for record_id in ids:
                conn.execute("DELETE FROM external_ids WHERE kind = ? AND record_id = ?", (kind, record_id))

    @staticmethod
    def _sharing_people(conn: Any, person: Person, person_id: int) -> list[int]:
        """Other people (not referred) who may share an identifier with ``person``; the
        caller checks each with the normalised keys."""
        found: set[int] = set()
        checks = [
            ("phone = ?", person.phone),
            ("nhs_number = ?", person.nhs_number),
            ("lower(email) = lower(?)", person.email),
            ("postcode = ?", person.postcode),
        ]
        if person.date_of_birth:
            checks.append(("date_of_birth = ?", person.date_of_birth.isoformat()))
        for condition, value in checks:
            if value:
                found.update(
                    pid
                    for (pid,) in conn.execute(
                        f"SELECT id FROM people WHERE {condition} AND referral_id IS NULL AND id != ?",
                        (value, person_id),
                    )
                )
        return sorted(found)

    def referrals(self) -> list[Referral]:
        rows = self.store.query(
            "SELECT ref, role, created_at, recipients, exported_at, length(envelope) FROM referrals ORDER BY created_at, ref"
        )
        return [Referral(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    def referral_envelope(self, ref: str) -> bytes:
        canonical = parse_ref(ref, RefKind.REFERRAL)
        rows = self.store.query("SELECT envelope FROM referrals WHERE ref = ?", (canonical,))
        if not rows:
            raise NotFound(f"no referral {canonical}")
        return bytes(rows[0][0])

    def export_referrals(self, out_dir: Path, refs: list[str] | None = None) -> list[Path]:
        """Write sealed envelopes as ``R-XXXXXX.age`` files (atomic, 0600); audited."""
        from tracekit import files
        from tracekit.errors import WriteFailed

        out_dir = Path(out_dir).expanduser()
        if out_dir.exists() and not out_dir.is_dir():
            raise WriteFailed(f"{out_dir} is not a directory")
        files.ensure_private_dir(out_dir)
        chosen = [r.ref for r in self.referrals()] if not refs else [parse_ref(r, RefKind.REFERRAL) for r in refs]
        written = []
        for ref in chosen:
            dest = out_dir / f"{ref}.age"
            with files.atomic_output(dest) as handle:
                handle.write(self.referral_envelope(ref))
            written.append(dest)
        if chosen:
            with self.store.transaction() as conn:
                conn.execute(
                    f"UPDATE referrals SET exported_at = ? WHERE ref IN ({','.join('?' * len(chosen))})",
                    (utcnow(), *chosen),
                )
                self.casebook._audit(conn, "referral.export", chosen, str(out_dir))
        return written


def open_envelope(sealed: bytes, identities: list[Any]) -> dict[str, Any]:
    """Decrypt and verify a referral envelope (vetted-team side). Returns the payload."""
    payload, _ = open_envelope_bytes(sealed, identities)
    return dict(json.loads(payload))


#: The signed envelope's keys, exactly (docs/referral-format.md).
_ENVELOPE_KEYS = frozenset({"format", "version", "signer", "payload", "signature"})


def open_envelope_bytes(sealed: bytes, identities: list[Any]) -> tuple[bytes, str]:
    """Decrypt a referral and check its signature: (the signed payload bytes, the signer's
    public key as 64 hex digits). Everything before the signature check is the sender's
    choice, so the envelope is read strictly: a JSON object with exactly the documented
    keys, format and version checked, a 64-hex signer, base64 that decodes cleanly, and
    a valid Ed25519 signature over exactly the payload bytes. Whether the signer is the
    expected tracer is the caller's to check."""
    from pyrage import DecryptError, decrypt

    from tracekit.crypto import signing
    from tracekit.errors import BundleInvalid

    try:
        plain = decrypt(sealed, identities)
    except DecryptError:
        raise BundleInvalid(
            "this referral cannot be decrypted with the given identity (not sealed to it, or damaged)"
        ) from None
    try:
        outer = json.loads(plain.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BundleInvalid(
            "the referral envelope is not a JSON object (is this a bundle? bundles end in .tar.age)"
        ) from None
    if not isinstance(outer, dict) or set(outer) != _ENVELOPE_KEYS:
        raise BundleInvalid(
            "the referral envelope does not have the documented keys (format, version, signer, payload, signature)"
        )
    if outer["format"] != ENVELOPE_FORMAT:
        raise BundleInvalid(f"this is not a tracekit referral: its envelope does not say format {ENVELOPE_FORMAT!r}")
    if type(outer["version"]) is not int or outer["version"] != ENVELOPE_VERSION:
        raise BundleInvalid(
            f"referral envelope version {str(outer['version'])[:20]!r} is not supported (this tracekit reads {ENVELOPE_VERSION})"
        )
    signer = outer["signer"]
    if not isinstance(signer, str) or not re.fullmatch(r"[0-9a-f]{64}", signer):
        raise BundleInvalid("the referral's signer is not an Ed25519 public key (64 hex digits)")
    try:
        payload = base64.b64decode(outer["payload"], validate=True)
        signature = base64.b64decode(outer["signature"], validate=True)
    except (ValueError, TypeError):
        raise BundleInvalid("the referral's payload or signature is not base64") from None
    if not signing.verify(signer, payload, signature):
        raise BundleInvalid("the referral's signature does not verify: it was altered, or the signature swapped")
    return payload, signer
