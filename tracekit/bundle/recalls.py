"""Records handed over in clear, and recall requests when their person is marked later.

A standard handover (to a central team) carries ordinary people in clear. When one of
them is marked in a sensitive role afterwards, nothing sent to the central team can take
that back, and nothing sent to it may say so: "this earlier person is now withheld" is
itself the disclosure. So:

* each standard bundle's clear records are remembered (``handover_records``: runs of
  row ids, no content);
* marking someone looks up which bundles carried their records in clear (their cases,
  the exposures where they are a contact, and the contacts of their cases, which become
  withheld by association), tells the tracer, and writes a *recall request*;
* recall requests travel only to the vetted team, as ``recalls/<id>.json`` members of
  vetted-team bundles (docs/bundle-format.md), which can then take it up with the
  central team through its own channel.
"""

from __future__ import annotations

import json
import uuid
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

RECALL_FORMAT = "tracekit-recall"
RECALL_VERSION = 1


@dataclass
class ClearHandover:
    """One earlier bundle that carried some of a person's records in clear."""

    bundle_id: str
    recipient: str
    created_at: str
    file_name: str
    refs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "bundle_id": self.bundle_id,
            "recipient": self.recipient,
            "created_at": self.created_at,
            "file_name": self.file_name,
            "records": self.refs,
        }


class ClearRecords:
    """The records one bundle carries in clear, as runs of consecutive row ids per record
    type. Records stream in id order, so a full export is a handful of runs; memory and
    storage grow only with the number of breaks (a stub, an unchanged record)."""

    def __init__(self) -> None:
        self._runs: dict[str, array[int]] = {}  # kind -> first, last, first, last, ...

    def add_run(self, kind: str, first_id: int, last_id: int) -> None:
        """Records ``first_id`` to ``last_id`` (inclusive) went in clear. The writer finds
        the runs itself, as it streams: a call per record would cost a second a million."""
        self._runs.setdefault(kind, array("q")).extend((first_id, last_id))

    def remember(self, txn: Any, handover_id: int) -> None:
        """Store the runs for bundle ``handover_id`` (in the transaction that records it)."""
        for kind, runs in self._runs.items():
            txn.executemany(
                "INSERT INTO handover_records(handover_id, kind, first_id, last_id) VALUES(?, ?, ?, ?)",
                ((handover_id, kind, runs[i], runs[i + 1]) for i in range(0, len(runs), 2)),
            )


#: The bundles whose runs of ``kind`` (?1) hold record id ?2: per bundle, the one run that
#: may hold it is the last starting at or below it (runs of a bundle never overlap).
_BUNDLES_HOLDING = (
    "SELECT h.id, h.bundle_id, h.recipient, h.created_at, h.file_name FROM handovers h "
    "JOIN handover_records r ON r.handover_id = h.id AND r.kind = ?1 AND r.first_id = "
    "(SELECT max(first_id) FROM handover_records WHERE handover_id = h.id AND kind = ?1 AND first_id <= ?2) "
    "WHERE r.last_id >= ?2"
)


def handed_over_in_clear(conn: Any, person_id: int) -> list[ClearHandover]:
    """The bundles that carried, in clear, a record that marking this person withholds:
    their cases, the exposures where they are the contact, the contacts of their cases.
    Oldest first."""
    records = conn.execute(
        "SELECT 'case', id, ref FROM cases WHERE person_id = ?1 "
        "UNION SELECT 'contact', id, ref FROM exposures WHERE person_id = ?1 "
        "UNION SELECT 'contact', e.id, e.ref FROM exposures e JOIN cases c ON c.id = e.case_id WHERE c.person_id = ?1 "
        "ORDER BY 3",
        (person_id,),
    ).fetchall()
    found: dict[int, ClearHandover] = {}
    for kind, record_id, ref in records:
        for handover_id, bundle_id, recipient, created_at, file_name in conn.execute(
            _BUNDLES_HOLDING, (kind, record_id)
        ):
            found.setdefault(handover_id, ClearHandover(bundle_id, recipient, created_at, file_name)).refs.append(ref)
    return [found[key] for key in sorted(found)]


def create_recall(conn: Any, person_ref: str, role: str, handovers: list[ClearHandover], now: str) -> str:
    """Write a recall request for the vetted team; returns its id."""
    recall_id = uuid.uuid4().hex
    content = {
        "format": RECALL_FORMAT,
        "version": RECALL_VERSION,
        "recall": recall_id,
        "created_at": now,
        "person": person_ref,
        "role": role,
        "bundles": [h.to_json() for h in handovers],
        "note": (
            "These bundles carried the person's records (or their contacts') in clear before the "
            "person was marked. The central team has not been told; ask it to restrict or delete them."
        ),
    }
    conn.execute(
        "INSERT INTO recalls(recall_id, person_ref, created_at, content) VALUES(?, ?, ?, ?)",
        (recall_id, person_ref, now, json.dumps(content, indent=1, sort_keys=True)),
    )
    return recall_id


def recall_members(conn: Any, since: str | None) -> Iterator[tuple[str, str, bytes]]:
    """(recall id, member name, content) of the recall requests written since ``since``
    (all if None), for a vetted-team bundle: the same window as its referrals."""
    where, params = ("WHERE created_at >= ?", (since,)) if since else ("", ())
    for recall_id, content in conn.execute(f"SELECT recall_id, content FROM recalls {where} ORDER BY id", params):
        yield recall_id, f"recalls/{recall_id}.json", content.encode("utf-8")
