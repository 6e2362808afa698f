"""The vetted team's side of a referral: sealed referrals into the team's own case book.

``tracekit referrals receive FILE... --identity KEY --signer KEY`` takes referral files
(``R-XXXXXX.age``) and vetted-team bundles (whose ``referrals/`` members are referrals).
A referral file is hostile input until proven otherwise, so (docs/vetted-guide.md):

* every file is read whole into memory within a size limit, decrypted in memory (no
  plaintext ever touches the disk), its signature checked, its signer checked against
  the pinned tracer keys (:func:`check_signer`), and its payload parsed strictly and every
  value validated as a typed entry would be, for *every* file before anything is written;
* each file then goes in as one transaction: the person arrives marked with their role
  (masked in every output, reveal to see them), their cases and the cases' contacts as
  ordinary records the team traces (``today``, ``case show``, ``contact call``), linked to
  the referral and the tracer's key (``received_referrals``, ``received_records``), and
  audited by reference only;
* a referral already received (same tracer key, same reference, same content) changes
  nothing; the same reference with different content is a conflict;
* received people never go back to central: a standard handover from this store leaves
  their records out entirely (:mod:`tracekit.redaction.apply`), and statistics leave them
  out of every table.

Infectious periods, closeness and isolation ends are worked out again by this store's
rules (as for any record entered here); the trace status, notes and call log are kept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic import ValidationError as SchemaError

from tracekit import files
from tracekit.bundle.signers import SignerCheck, UntrustedSigner
from tracekit.domain.refs import RefKind, parse_ref
from tracekit.errors import (
    BundleInvalid,
    Conflict,
    PolicyError,
    TracekitError,
    ValidationError,
)
from tracekit.records.casebook import Casebook, new_case_values, new_exposure_values, utcnow
from tracekit.records.identity import WITHHELD_IN_TEXT, identity_matcher
from tracekit.records.inputs import (
    CASE_VALIDATORS,
    EXPOSURE_VALIDATORS,
    PERSON_VALIDATORS,
    validated,
)
from tracekit.records.models import CallOutcome, CaseStatus, TraceStatus
from tracekit.records.sensitive import ROLES, open_envelope_bytes
from tracekit.records.tables import CASES, EXPOSURES, PEOPLE

#: A referral file is one person's record with their cases' contacts: far below this.
MAX_REFERRAL_BYTES = 16 * 1024 * 1024
#: All the referrals kept in memory from one vetted-team bundle.
MAX_BUNDLE_REFERRAL_BYTES = 256 * 1024 * 1024
MAX_CASES = 100
MAX_CONTACTS = 5_000
MAX_CALLS = 1_000
MAX_EXPOSURES_AS_CONTACT = 1_000

RECEIVE_ACTION = "referral.receive"


# -- the signer -----------------------------------------------------------------------------


def check_signer(fingerprint: str, signers: SignerCheck, *, what: str) -> bool:
    """Whether ``what``'s signer was checked against a pinned tracer key.

    ``signers``: what :func:`tracekit.bundle.signers.resolve_signer` made of ``--signer``
    and the trusted signers file (the one place that decides whom a team trusts). A
    signer it does not accept is refused (exit 19); with nothing pinned, the signer is
    refused unless ``--allow-unpinned-signer`` (then it is taken unchecked, and the
    caller warns).
    """
    if not signers.any_pin and not signers.allow_unpinned:
        raise PolicyError(
            f"{what} is signed by tracer key {fingerprint}, but no --signer was given to check it against; nothing was received",
            hint="pass --signer with the tracer's registered key or fingerprint (or --trusted-signers FILE); "
            "--allow-unpinned-signer takes it unchecked",
        )
    try:
        return signers.accept(fingerprint).pinned
    except UntrustedSigner as exc:
        raise UntrustedSigner(f"{what}: {exc.message}; nothing was received", hint=exc.hint) from None


# -- the payload, parsed strictly -------------------------------------------------------------

_Text = Annotated[str, StringConstraints(max_length=10_000)]
_Short = Annotated[str, StringConstraints(max_length=500)]
_Ref = Annotated[str, StringConstraints(pattern=r"^[A-Z]-[0-9A-HJKMNP-TV-Z]{6}$")]


class _Loose(BaseModel):
    """A JSON shape of docs/json.md: strict types for what is read, other keys ignored
    (the shapes may gain fields without a new envelope version)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _Person(_Loose):
    ref: _Ref
    masked: bool = False
    name: Annotated[str, StringConstraints(max_length=500)] | None = None
    date_of_birth: _Short | None = None
    nhs_number: _Short | None = None
    phone: _Short | None = None
    email: _Short | None = None
    address: _Short | None = None
    postcode: _Short | None = None
    occupation: _Short | None = None

    @model_validator(mode="before")
    @classmethod
    def _masked_has_no_details(cls, data: Any) -> Any:
        # A contact the tracer had referred earlier travels masked: their details are gone.
        if isinstance(data, dict) and data.get("masked") is True:
            return {"ref": data.get("ref"), "masked": True}
        return data


class _Call(_Loose):
    at: _Short
    outcome: _Short
    note: _Text | None = None


class _Exposure(_Loose):
    ref: _Ref
    contact: _Person
    last_exposure: _Short
    setting: _Short
    proximity_m: float | None = None
    duration_min: float | None = None
    face_to_face: bool = False
    direct_contact: bool = False
    trace_status: _Short
    notes: _Text | None = None
    calls: Annotated[list[_Call], Field(max_length=MAX_CALLS)] = []


class _Case(_Loose):
    ref: _Ref
    test_date: _Short
    test_type: _Short
    test_result: _Short
    symptom_onset: _Short | None = None
    status: _Short
    notes: _Text | None = None
    source_exposure: _Ref | None = None
    closed_at: _Short | None = None
    contacts: Annotated[list[_Exposure], Field(max_length=MAX_CONTACTS)] = []


class _TracerKey(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    algorithm: Literal["ed25519"]
    public_key: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    fingerprint: _Short


class _Payload(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    referral: _Ref
    created_at: _Short
    tracekit_version: _Short
    tracer_key: _TracerKey
    role: Literal[tuple(ROLES)]  # type: ignore[valid-type]
    mark_reason: _Text | None
    referral_reason: _Text | None
    person: _Person
    cases: Annotated[list[_Case], Field(max_length=MAX_CASES)]
    exposures_as_contact: Annotated[list[dict[str, Any]], Field(max_length=MAX_EXPOSURES_AS_CONTACT)]


@dataclass
class IncomingReferral:
    """A referral whose signature, signer and payload have all been checked."""

    source: str  # the file (and bundle member) it came from, for messages
    ref: str
    signer: str  # the tracer's public key, 64 hex digits
    fingerprint: str
    signer_pinned: bool
    payload_sha256: str
    payload: _Payload


@dataclass
class IncomingFile:
    path: Path
    referrals: list[IncomingReferral]
    bundle_id: str | None = None


def parse_payload(data: bytes, signer: str, source: str) -> _Payload:
    """The signed payload, checked against its schema and its own signer."""
    from tracekit.bundle.manifest import first_problem, no_duplicate_keys
    from tracekit.crypto import signing

    try:
        raw = json.loads(data.decode("utf-8"), object_pairs_hook=no_duplicate_keys(f"{source}: the referral's payload"))
        payload = _Payload.model_validate(raw)
    except UnicodeDecodeError:
        raise BundleInvalid(f"{source}: the referral's payload is not UTF-8 text") from None
    except RecursionError:
        raise BundleInvalid(f"{source}: the referral's payload is nested too deeply") from None
    except SchemaError as exc:
        raise BundleInvalid(f"{source}: the referral's payload is malformed: {first_problem(exc)}") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise BundleInvalid(
            f"{source}: the referral's payload is not JSON ({getattr(exc, 'msg', 'unreadable')})"
        ) from None
    key = payload.tracer_key
    if key.public_key != signer or key.fingerprint != signing.fingerprint(signer):
        raise BundleInvalid(
            f"{source}: the referral's payload names a different tracer key than the one that signed it"
        )
    return payload


def _incoming(
    sealed: bytes, identities: list[Any], source: str, signers: SignerCheck, expected_signer: str | None = None
) -> IncomingReferral:
    from tracekit.crypto import signing

    try:
        payload_bytes, signer = open_envelope_bytes(sealed, identities)
    except BundleInvalid as exc:
        raise BundleInvalid(f"{source}: {exc.message}") from None
    fingerprint = signing.fingerprint(signer)
    if expected_signer is not None:  # inside a bundle: the bundle's own signer, already checked
        if signer != expected_signer:
            raise BundleInvalid(f"{source} is signed by a different tracer key ({fingerprint}) than its bundle")
        checked = signers.any_pin
    else:
        checked = check_signer(fingerprint, signers, what=source)
    payload = parse_payload(payload_bytes, signer, source)
    return IncomingReferral(
        source, payload.referral, signer, fingerprint, checked, hashlib.sha256(payload_bytes).hexdigest(), payload
    )


def read_referral_file(path: Path, identities: list[Any], signers: SignerCheck) -> IncomingFile:
    sealed = files.read_regular_file(
        path,
        what="referral",
        max_bytes=MAX_REFERRAL_BYTES,
        error=lambda message: ValidationError(
            "file", message, expected="a referral R-XXXXXX.age or a vetted-team bundle"
        ),
    )
    if not sealed.startswith(b"age-encryption.org/v1\n"):
        raise BundleInvalid(f"{path} is not an age-encrypted file, so not a tracekit referral")
    return IncomingFile(path, [_incoming(sealed, identities, str(path), signers)])


def read_bundle_file(path: Path, identities: list[Any], signers: SignerCheck) -> IncomingFile:
    """The referrals of a vetted-team bundle, once the whole bundle has verified."""
    from tracekit.bundle.reader import read_bundle_members

    kept = 0

    def collect(name: str, size: int) -> bool:
        nonlocal kept
        if not name.startswith("referrals/"):
            return False
        if size > MAX_REFERRAL_BYTES:
            raise BundleInvalid(f"{path}: {name} is {size:,} bytes; a referral is at most {MAX_REFERRAL_BYTES:,}")
        kept += size
        if kept > MAX_BUNDLE_REFERRAL_BYTES:
            raise BundleInvalid(
                f"{path} holds more than {files.format_size(MAX_BUNDLE_REFERRAL_BYTES)} of referrals; "
                "ask the tracer for the referral files themselves (tracekit referrals export)"
            )
        return True

    verified, members = read_bundle_members(path, identities, collect)
    if verified.model.recipient.role != "vetted-team":
        raise ValidationError(
            "file",
            f"{path} is a bundle for a {verified.model.recipient.role}, which carries no referrals",
            expected="a referral R-XXXXXX.age or a vetted-team bundle",
        )
    signer = verified.model.tracer_key.public_key
    check_signer(verified.signer_fingerprint, signers, what=str(path))
    referrals = []
    for name, sealed in sorted(members.items()):
        referral = _incoming(sealed, identities, f"{path} ({name})", signers, expected_signer=signer)
        if name != f"referrals/{referral.ref}.age":
            raise BundleInvalid(
                f"{referral.source} holds referral {referral.ref}: the member's name and its content differ"
            )
        referrals.append(referral)
    return IncomingFile(path, referrals, verified.model.bundle_id)


def read_incoming(paths: list[Path], identities: list[Any], signers: SignerCheck) -> list[IncomingFile]:
    """Every file read and checked; the first problem stops it, before anything is written.
    A name ending in ``.tar.age`` is a bundle, any other a referral file."""
    out = []
    for path in paths:
        path = Path(path).expanduser()
        read = read_bundle_file if path.name.endswith(".tar.age") else read_referral_file
        out.append(read(path, identities, signers))
    return out


# -- into the store ----------------------------------------------------------------------------


@dataclass
class ReceivedReferral:
    """What one referral became in this store (or, ``already``, that it was here before)."""

    ref: str
    source: str
    fingerprint: str
    signer_pinned: bool
    role: str
    person: str
    already: bool = False
    received_at: str = ""
    cases: dict[str, str] = field(default_factory=dict)  # tracer's reference -> this store's
    contacts: dict[str, str] = field(default_factory=dict)
    exposures_as_contact: int = 0
    #: of those, how many the tracer had not reached yet as a close contact: the vetted
    #: team calls the person about them
    exposures_as_contact_not_reached: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "referral": self.ref,
            "source": self.source,
            "signer_fingerprint": self.fingerprint,
            "signer_checked": self.signer_pinned,
            "role": self.role,
            "person": self.person,
            "already_received": self.already,
            "received_at": self.received_at,
            "cases": [{"ref": new, "tracer_ref": old} for old, new in self.cases.items()],
            "contacts": [{"ref": new, "tracer_ref": old} for old, new in self.contacts.items()],
            "exposures_as_contact": self.exposures_as_contact,
            "exposures_as_contact_not_reached": self.exposures_as_contact_not_reached,
        }


def _bad(source: str, where: str, problem: TracekitError) -> BundleInvalid:
    return BundleInvalid(f"{source}: {where}: {problem.message}")


def _ref(text: str, kind: RefKind, source: str, where: str) -> str:
    try:
        canonical = parse_ref(text, kind)
    except ValidationError as exc:
        raise _bad(source, where, exc) from None
    if canonical != text:
        raise BundleInvalid(f"{source}: {where}: reference is not in canonical form")
    return canonical


@dataclass
class _Checked:
    """A referral's values, validated as typed entries would be."""

    person: dict[str, Any]
    cases: list[
        tuple[
            str,
            dict[str, Any],
            str | None,
            str | None,
            list[tuple[str, dict[str, Any], str, list[tuple[str, str, str | None]]]],
        ]
    ]
    contact_people: dict[str, dict[str, Any] | None]  # tracer's person ref -> values (None: masked)


def _person_values(person: _Person, today: date, source: str, where: str) -> dict[str, Any] | None:
    if person.masked:
        return None
    raw = {name: getattr(person, name) for name in PERSON_VALIDATORS}
    try:
        values = validated(raw, PERSON_VALIDATORS, today)
    except ValidationError as exc:
        raise _bad(source, where, exc) from None
    if not values.get("name"):
        raise BundleInvalid(f"{source}: {where}: name: is missing (expected the person's full name)")
    return values


def _time(text: str, source: str, where: str) -> str:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BundleInvalid(f"{source}: {where}: is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise BundleInvalid(f"{source}: {where}: has no time zone")
    return parsed.isoformat()


def check_values(incoming: IncomingReferral, today: date) -> _Checked:
    """Every value of the referral through the same validators as a typed entry."""
    source, payload = incoming.source, incoming.payload
    _ref(payload.referral, RefKind.REFERRAL, source, "referral")
    _time(payload.created_at, source, "created_at")
    _ref(payload.person.ref, RefKind.PERSON, source, "person.ref")
    person = _person_values(payload.person, today, source, "person")
    if person is None:
        raise BundleInvalid(f"{source}: person: the referred person's details are missing (masked)")
    cases = []
    contact_people: dict[str, dict[str, Any] | None] = {}
    for n, case in enumerate(payload.cases, 1):
        where = f"case {n}"
        _ref(case.ref, RefKind.CASE, source, f"{where}.ref")
        try:
            values = validated(
                {
                    "test_date": case.test_date,
                    "test_type": case.test_type,
                    "test_result": case.test_result,
                    "symptom_onset": case.symptom_onset,
                    "status": case.status,
                    "notes": case.notes,
                },
                CASE_VALIDATORS,
                today,
            )
        except ValidationError as exc:
            raise _bad(source, where, exc) from None
        if values.get("status") not in (CaseStatus.OPEN.value, CaseStatus.CLOSED.value):
            raise BundleInvalid(f"{source}: {where}: status: is not open or closed")
        closed_at = _time(case.closed_at, source, f"{where}.closed_at") if case.closed_at else None
        source_exposure = (
            _ref(case.source_exposure, RefKind.EXPOSURE, source, f"{where}.source_exposure")
            if case.source_exposure
            else None
        )
        exposures = []
        for m, exposure in enumerate(case.contacts, 1):
            at = f"{where} contact {m}"
            _ref(exposure.ref, RefKind.EXPOSURE, source, f"{at}.ref")
            contact_ref = _ref(exposure.contact.ref, RefKind.PERSON, source, f"{at}.contact.ref")
            if contact_ref == payload.person.ref:
                raise BundleInvalid(f"{source}: {at}: the referred person is their own case's contact")
            contact_people[contact_ref] = _person_values(exposure.contact, today, source, f"{at}.contact")
            try:
                exposure_values = validated(
                    {
                        "last_exposure": exposure.last_exposure,
                        "setting": exposure.setting,
                        "proximity_m": exposure.proximity_m,
                        "duration_min": exposure.duration_min,
                        "face_to_face": exposure.face_to_face,
                        "direct_contact": exposure.direct_contact,
                        "trace_status": exposure.trace_status,
                        "notes": exposure.notes,
                    },
                    EXPOSURE_VALIDATORS,
                    today,
                )
            except ValidationError as exc:
                raise _bad(source, at, exc) from None
            calls = []
            for k, call in enumerate(exposure.calls, 1):
                try:
                    outcome = CallOutcome(call.outcome).value
                except ValueError:
                    raise BundleInvalid(f"{source}: {at} call {k}: outcome: is not a call outcome") from None
                try:
                    note = validated({"notes": call.note}, EXPOSURE_VALIDATORS, today).get("notes")
                except ValidationError as exc:
                    raise _bad(source, f"{at} call {k}", exc) from None
                calls.append((_time(call.at, source, f"{at} call {k}.at"), outcome, note))
            exposures.append((exposure.ref, exposure_values, contact_ref, calls))
        if len({e[2] for e in exposures}) != len(exposures):
            raise BundleInvalid(f"{source}: {where}: the same person is listed twice as a contact")
        cases.append((case.ref, values, closed_at, source_exposure, exposures))
    return _Checked(person, cases, contact_people)


class ReferralReceiver:
    """Takes checked referrals into the store of a :class:`Casebook`."""

    def __init__(self, casebook: Casebook) -> None:
        self.casebook = casebook
        self.store = casebook.store

    def _existing(self, conn: Any, incoming: IncomingReferral) -> tuple[str, str] | None:
        """(payload hash, received at) of the same referral received before, if it was."""
        row = conn.execute(
            "SELECT payload_sha256, received_at FROM received_referrals WHERE signer_public_key = ? AND ref = ?",
            (incoming.signer, incoming.ref),
        ).fetchone()
        if row is None:
            return None
        if row[0] != incoming.payload_sha256:
            raise Conflict(
                f"{incoming.source}: referral {incoming.ref} from tracer {incoming.fingerprint} was received on "
                f"{row[1]} with different content; nothing was received",
                hint="ask the tracer which one is current; tracekit never replaces a received referral",
            )
        return row[0], row[1]

    def receive(self, incoming_files: list[IncomingFile]) -> list[ReceivedReferral]:
        """Each file in one transaction; every file checked (values and conflicts) first."""
        conn = self.store.conn
        checked: dict[tuple[str, str], _Checked] = {}
        seen: dict[tuple[str, str], str] = {}
        for incoming_file in incoming_files:
            for incoming in incoming_file.referrals:
                key = (incoming.signer, incoming.ref)
                if seen.setdefault(key, incoming.payload_sha256) != incoming.payload_sha256:
                    raise Conflict(
                        f"{incoming.source}: referral {incoming.ref} comes twice with different content; nothing was received"
                    )
                if self._existing(conn, incoming) is None and key not in checked:
                    checked[key] = check_values(incoming, self.casebook.today)
        results: list[ReceivedReferral] = []
        for incoming_file in incoming_files:
            with self.store.transaction() as txn:
                for incoming in incoming_file.referrals:
                    key = (incoming.signer, incoming.ref)
                    before = self._existing(txn, incoming)
                    if before is not None:
                        results.append(self._already(txn, incoming, before[1]))
                        continue
                    results.append(self._insert(txn, incoming, checked[key]))
        self.casebook.forget_marks()
        return results

    def _already(self, conn: Any, incoming: IncomingReferral, received_at: str) -> ReceivedReferral:
        row = conn.execute(
            "SELECT r.id, p.ref, r.role FROM received_referrals r JOIN people p ON p.id = r.person_id "
            "WHERE r.signer_public_key = ? AND r.ref = ?",
            (incoming.signer, incoming.ref),
        ).fetchone()
        result = ReceivedReferral(
            incoming.ref,
            incoming.source,
            incoming.fingerprint,
            incoming.signer_pinned,
            row[2],
            row[1],
            already=True,
            received_at=received_at,
        )
        for kind, source_ref, ref in conn.execute(
            "SELECT x.kind, x.source_ref, COALESCE(c.ref, e.ref) FROM received_records x "
            "LEFT JOIN cases c ON x.kind = 'case' AND c.id = x.record_id "
            "LEFT JOIN exposures e ON x.kind = 'contact' AND e.id = x.record_id "
            "WHERE x.received_id = ? AND x.kind IN ('case', 'contact') ORDER BY x.kind, x.record_id",
            (row[0],),
        ):
            (result.cases if kind == "case" else result.contacts)[source_ref] = ref
        return result

    def _insert(self, conn: Any, incoming: IncomingReferral, checked: _Checked) -> ReceivedReferral:
        cb = self.casebook
        payload = incoming.payload
        now = utcnow()
        person_id = self._insert_person(conn, checked.person, index=False)
        contact_ids: dict[str, int] = {}
        for tracer_ref, values in checked.contact_people.items():
            contact_ids[tracer_ref] = self._insert_person(conn, values, index=True)
        everyone = [cb._load_person(conn, pid, raw=True) for pid in (person_id, *contact_ids.values())]
        # The mark reason is stored as the tracer wrote it, without the details of anyone
        # in this referral (the tracer's tracekit refuses such a reason; a hand-made one may not).
        matcher = identity_matcher(everyone)
        reason = payload.mark_reason
        if reason and matcher is not None:
            reason = matcher.scrub(reason, WITHHELD_IN_TEXT)
        conn.execute(
            "INSERT INTO person_roles(person_id, role, reason, marked_at) VALUES(?, ?, ?, ?)",
            (person_id, payload.role, reason, now),
        )
        cursor = conn.execute(
            "INSERT INTO received_referrals(ref, signer_public_key, signer_pinned, payload_sha256, role, sealed_at, "
            "received_at, person_id, exposures_as_contact) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                incoming.ref,
                incoming.signer,
                int(incoming.signer_pinned),
                incoming.payload_sha256,
                payload.role,
                payload.created_at,
                now,
                person_id,
                json.dumps(payload.exposures_as_contact, ensure_ascii=False),
            ),
        )
        received_id = int(cursor.lastrowid)
        person_ref = everyone[0].ref

        def remember(kind: str, record_id: int, source_ref: str) -> None:
            conn.execute(
                "INSERT INTO received_records(kind, record_id, received_id, source_ref) VALUES(?, ?, ?, ?)",
                (kind, record_id, received_id, source_ref),
            )

        remember("person", person_id, payload.person.ref)
        for tracer_ref, contact_id in contact_ids.items():
            remember("person", contact_id, tracer_ref)
        result = ReceivedReferral(
            incoming.ref,
            incoming.source,
            incoming.fingerprint,
            incoming.signer_pinned,
            payload.role,
            person_ref,
            received_at=now,
            exposures_as_contact=len(payload.exposures_as_contact),
            exposures_as_contact_not_reached=sum(
                e.get("close_contact") is True and e.get("trace_status") == TraceStatus.NOT_YET_REACHED.value
                for e in payload.exposures_as_contact
            ),
        )
        exposure_ids: dict[str, int] = {}
        sources: list[tuple[int, str]] = []
        for tracer_case_ref, values, closed_at, source_exposure, exposures in checked.cases:
            case_id, case_ref = self._insert_case(conn, person_id, values, closed_at, now)
            remember("case", case_id, tracer_case_ref)
            result.cases[tracer_case_ref] = case_ref
            if source_exposure:
                sources.append((case_id, source_exposure))
            for tracer_exposure_ref, exposure_values, contact_ref, calls in exposures:
                exposure_id, exposure_ref = self._insert_exposure(
                    conn, case_id, contact_ids[contact_ref], exposure_values, calls, now
                )
                remember("contact", exposure_id, tracer_exposure_ref)
                exposure_ids[tracer_exposure_ref] = exposure_id
                result.contacts[tracer_exposure_ref] = exposure_ref
        for case_id, source_exposure in sources:  # how a case was infected, when that is in the referral too
            if source_exposure in exposure_ids:
                conn.execute(
                    "UPDATE cases SET source_exposure_id = ? WHERE id = ?", (exposure_ids[source_exposure], case_id)
                )
        contact_person_refs = (
            [
                r
                for (r,) in conn.execute(
                    f"SELECT ref FROM people WHERE id IN ({','.join('?' * len(contact_ids))})",
                    list(contact_ids.values()),
                )
            ]
            if contact_ids
            else []
        )
        signer_note = "checked against --signer" if incoming.signer_pinned else "NOT checked (--allow-unpinned-signer)"
        cb._audit(
            conn,
            RECEIVE_ACTION,
            [incoming.ref, person_ref, *result.cases.values(), *result.contacts.values(), *contact_person_refs],
            f"{payload.role}; from tracer key {incoming.fingerprint}, signer {signer_note}; "
            f"{len(result.cases)} case(s), {len(result.contacts)} contact(s), "
            f"{result.exposures_as_contact} exposure(s) as a contact kept with the referral",
        )
        return result

    def _insert_person(self, conn: Any, values: dict[str, Any] | None, *, index: bool) -> int:
        cb = self.casebook
        if values is None:  # a contact the tracer had referred earlier: no details travel
            person_id, _ = cb._insert_with_ref(conn, RefKind.PERSON, PEOPLE, {"name": "", "name_key": ""})
            return person_id
        from tracekit.domain import identifiers as ids

        dob = values.get("date_of_birth")
        person_id, _ = cb._insert_with_ref(
            conn,
            RefKind.PERSON,
            PEOPLE,
            {
                **{name: values.get(name) for name in PEOPLE.details},
                "name_key": ids.name_key(values["name"]),
                "date_of_birth": dob.isoformat() if dob else None,
            },
        )
        if index:  # the referred person is marked: never in the search index
            cb._index_person(conn, person_id, values)
        return person_id

    def _insert_case(
        self, conn: Any, person_id: int, values: dict[str, Any], closed_at: str | None, now: str
    ) -> tuple[int, str]:
        cb = self.casebook
        status = values["status"]
        return cb._insert_with_ref(
            conn,
            RefKind.CASE,
            CASES,
            {
                **new_case_values(values, cb._case_rule_values(values["test_date"], values.get("symptom_onset"))),
                "person_id": person_id,
                "status": status,
                "closed_at": (closed_at or now) if status == CaseStatus.CLOSED.value else None,
            },
        )

    def _insert_exposure(
        self,
        conn: Any,
        case_id: int,
        contact_id: int,
        values: dict[str, Any],
        calls: list[tuple[str, str, str | None]],
        now: str,
    ) -> tuple[int, str]:
        cb = self.casebook
        exposure_id, ref = cb._insert_with_ref(
            conn,
            RefKind.EXPOSURE,
            EXPOSURES,
            {
                **new_exposure_values(values, cb._exposure_rule_values(values)),
                "case_id": case_id,
                "person_id": contact_id,
                "trace_status": values.get("trace_status", TraceStatus.NOT_YET_REACHED.value),
            },
        )
        conn.executemany(
            "INSERT INTO call_attempts(exposure_id, at, outcome, note) VALUES(?, ?, ?, ?)",
            [(exposure_id, at, outcome, note) for at, outcome, note in calls],
        )
        return exposure_id, ref


@dataclass
class ReceivedSummary:
    """One received referral, by reference: ``referrals received``."""

    ref: str
    fingerprint: str
    signer_pinned: bool
    role: str
    person: str
    cases: list[str]
    contacts: int
    sealed_at: str
    received_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "referral": self.ref,
            "signer_fingerprint": self.fingerprint,
            "signer_checked": self.signer_pinned,
            "role": self.role,
            "person": self.person,
            "cases": self.cases,
            "contacts": self.contacts,
            "sealed_at": self.sealed_at,
            "received_at": self.received_at,
        }


def received_referrals(store: Any) -> list[ReceivedSummary]:
    """The referrals this store has received, oldest first."""
    from tracekit.crypto import signing

    out = []
    for received_id, ref, signer, pinned, role, person, sealed_at, received_at in store.query(
        "SELECT r.id, r.ref, r.signer_public_key, r.signer_pinned, r.role, p.ref, r.sealed_at, r.received_at "
        "FROM received_referrals r JOIN people p ON p.id = r.person_id ORDER BY r.id"
    ):
        cases = [
            c
            for (c,) in store.query(
                "SELECT c.ref FROM received_records x JOIN cases c ON c.id = x.record_id "
                "WHERE x.received_id = ? AND x.kind = 'case' ORDER BY c.id",
                (received_id,),
            )
        ]
        contacts = store.query(
            "SELECT count(*) FROM received_records WHERE received_id = ? AND kind = 'contact'", (received_id,)
        )[0][0]
        out.append(
            ReceivedSummary(
                ref, signing.fingerprint(signer), bool(pinned), role, person, cases, contacts, sealed_at, received_at
            )
        )
    return out
