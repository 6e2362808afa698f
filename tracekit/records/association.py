"""Association by shared identifier: records that carry a protected person's identifier.

A household member shares the marked person's landline and address; a colleague shares a
work phone. Their records are ordinary, but the shared value is the marked person's own
detail: it must not leave in a central handover nor show in a tracer's view. So every
identifier is reduced to a normalised *key* per kind (:func:`identifier_keys`), and a
record whose key equals a protected one has that field withheld ("sensitive by
association"), field by field: the rest of the household contact goes out.

Protected keys (:class:`ProtectedKeys`) are those of every marked person still in the
store, in memory only while an export or a view needs them, and, for people referred to
the vetted team (whose details were purged), *tombstones*: HMAC-SHA256 digests of their
keys under a random key kept in the store's settings (``referral_tombstones``). A
tombstone recognises a later import or entry of the referred person, or of someone sharing
their phone or address, without the store keeping the plaintext. Whoever holds the
passphrase can test guesses against the digests (an oracle: "is this phone number that of
someone referred?"); see docs/threat-model.md for why that trade-off was taken.

Kinds and the fields they withhold:

* ``nhs`` and ``name_dob`` identify the person themself (a second record of them): the
  whole record is withheld;
* ``phone``, ``email``, ``address`` (normalised postcode + address line) and ``name`` (a
  person of the same name) withhold that field only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from tracekit.records.identity import identifier_keys

TOMBSTONE_KEY_SETTING = "referral.tombstone_key"

#: Kinds that say the record is the protected person themself: the whole record is withheld.
IDENTITY_KINDS = frozenset({"nhs", "name_dob"})
#: The fields each other kind withholds.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "phone": ("phone",),
    "email": ("email",),
    "address": ("address", "postcode"),
    "name": ("name",),
}
#: What a tombstone hit on these kinds means at import: the referred person themself
#: (with a name hit, a shared phone or address is taken as the person too).
REFERRED_PERSON_KINDS = frozenset({"nhs", "name_dob", "email"})

# -- tombstones ------------------------------------------------------------------------


def _tombstone_key(conn: Any) -> bytes:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (TOMBSTONE_KEY_SETTING,)).fetchone()
    return bytes.fromhex(row[0])


def digest(key: bytes, kind: str, value: str) -> bytes:
    return hmac.new(key, f"{kind}\x00{value}".encode(), hashlib.sha256).digest()


def write_tombstones(conn: Any, keys: Iterable[tuple[str, str]], referral_id: int) -> None:
    """Remember a referred person's identifier keys as keyed digests (never the values)."""
    secret = _tombstone_key(conn)
    conn.executemany(
        "INSERT OR IGNORE INTO referral_tombstones(kind, digest, referral_id) VALUES(?, ?, ?)",
        [(kind, digest(secret, kind, value), referral_id) for kind, value in keys],
    )


class Tombstones:
    """The referred people's tombstones, read once (they are few: a handful per referral)."""

    def __init__(self, conn: Any) -> None:
        self._by_digest: dict[tuple[str, bytes], set[int]] = {}
        for kind, value, referral_id in conn.execute("SELECT kind, digest, referral_id FROM referral_tombstones"):
            self._by_digest.setdefault((str(kind), bytes(value)), set()).add(int(referral_id))
        self._secret = _tombstone_key(conn) if self._by_digest else b""

    @property
    def empty(self) -> bool:
        return not self._by_digest

    def hits(self, keys: Iterable[tuple[str, str]]) -> dict[str, set[int]]:
        """Kind -> the referrals whose tombstones these keys hit."""
        found: dict[str, set[int]] = {}
        if self.empty:
            return found
        for kind, value in keys:
            referrals = self._by_digest.get((kind, digest(self._secret, kind, value)))
            if referrals:
                found.setdefault(kind, set()).update(referrals)
        return found


def is_referred_person(hits: dict[str, set[int]]) -> bool:
    """Whether tombstone hits say the record is a referred person themself: an NHS number,
    name and date of birth, or email of theirs; or their name with their phone or address."""
    if REFERRED_PERSON_KINDS & hits.keys():
        return True
    named = hits.get("name", set())
    return any(named & hits.get(kind, set()) for kind in ("phone", "address"))


# -- the protected set -------------------------------------------------------------------


class ProtectedKeys:
    """Every key a record must not carry: marked people's (plain, in memory) and referred
    people's (as tombstone digests). Built once per export or view."""

    def __init__(self, conn: Any, *, marked: Iterable[Any]) -> None:
        """``marked``: the marked people not revealed (``casebook.marked_people``), with their details."""
        self._plain: dict[tuple[str, str], set[int]] = {}
        for person in marked:
            for key in identifier_keys(person):
                self._plain.setdefault(key, set()).add(int(person.id))
        self._tombstones = Tombstones(conn)

    @property
    def empty(self) -> bool:
        return not self._plain and self._tombstones.empty

    def shared_kinds(self, person: Any, *, own_id: int | None = None) -> set[str]:
        """The kinds of identifier ``person`` shares with a protected person (not themself)."""
        if self.empty:
            return set()
        keys = identifier_keys(person)
        kinds: set[str] = set()
        for kind, value in keys:
            owners = self._plain.get((kind, value))
            if owners and (own_id is None or owners - {own_id}):
                kinds.add(kind)
        # A referred person's name alone is not withheld from namesakes: no guard looks for
        # it (nothing of theirs is left to find), and common names would hide many people.
        return kinds | (self._tombstones.hits(keys).keys() - {"name"})

    def withheld_fields(self, person: Any, *, own_id: int | None = None) -> tuple[bool, frozenset[str]]:
        """(whole record withheld, the fields withheld) for a record of ``person``."""
        kinds = self.shared_kinds(person, own_id=own_id)
        if not kinds:
            return False, frozenset()
        if kinds & IDENTITY_KINDS:
            return True, frozenset()
        return False, frozenset(f for kind in kinds for f in KIND_FIELDS.get(kind, ()))
