"""The referral payload as hostile input: parsed strictly before any value is used
(the round trip through stores is in tests/cli/test_cli_receive.py)."""

from __future__ import annotations

import json

import pytest

from tracekit.crypto.signing import fingerprint
from tracekit.errors import BundleInvalid, PolicyError
from tracekit.records.receive import MAX_CASES, check_signer, parse_payload

SIGNER = "ab" * 32


def _payload(**changes) -> dict:
    payload = {
        "referral": "R-7K2M9Q",
        "created_at": "2020-10-15T09:00:00+00:00",
        "tracekit_version": "0.1.0",
        "tracer_key": {"algorithm": "ed25519", "public_key": SIGNER, "fingerprint": fingerprint(SIGNER)},
        "role": "protected-witness",
        "mark_reason": "court order",
        "referral_reason": None,
        "person": {"ref": "P-7K2M9Q", "masked": False, "name": "Jo Witness"},
        "cases": [],
        "exposures_as_contact": [],
    }
    payload.update(changes)
    return payload


def _parse(payload) -> object:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return parse_payload(data, SIGNER, "R-7K2M9Q.age")


def test_a_well_formed_payload_parses():
    assert _parse(_payload()).referral == "R-7K2M9Q"


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (b'{"referral": "R-7K2M9Q", "referral": "R-000000"}', "names the key 'referral' twice"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"\xff\xfe", "not UTF-8"),
        (b"{not json", "not JSON"),
        (_payload(extra="x"), "extra: Extra inputs are not permitted"),
        (_payload(role="spy"), "role: Input should be"),
        (_payload(cases="none"), "cases: Input should be a valid list"),
        (_payload(cases=[{"ref": "C-7K2M9Q"}] * (MAX_CASES + 1)), "cases: List should have at most"),
        (_payload(person={"ref": "../etc", "name": "x"}), "person.ref: String should match pattern"),
        (_payload(person={"ref": "P-7K2M9Q", "name": "x" * 600}), "person.name: String should have at most"),
        (
            _payload(
                tracer_key={"algorithm": "ed25519", "public_key": "cd" * 32, "fingerprint": fingerprint("cd" * 32)}
            ),
            "different tracer key than the one that signed it",
        ),
    ],
)
def test_malformed_payloads_are_refused_by_where_not_by_value(payload, named):
    with pytest.raises(BundleInvalid) as refused:
        _parse(payload)
    assert named in refused.value.message
    assert refused.value.message.startswith("R-7K2M9Q.age: ")


def test_signer_check():
    from tracekit.bundle.signers import UntrustedSigner, resolve_signer

    pinned = resolve_signer([SIGNER], allow_unpinned=False)
    assert check_signer(fingerprint(SIGNER), pinned, what="f") is True
    with pytest.raises(UntrustedSigner, match="different key") as refused:
        check_signer(fingerprint("cd" * 32), resolve_signer([SIGNER], allow_unpinned=True), what="f")
    assert refused.value.message.startswith("f: ") and "nothing was received" in refused.value.message
    with pytest.raises(PolicyError, match="no --signer"):
        check_signer(fingerprint(SIGNER), resolve_signer(None, allow_unpinned=False), what="f")
    assert check_signer(fingerprint(SIGNER), resolve_signer(None, allow_unpinned=True), what="f") is False
    # the team's trusted signers (a registry mapping here) decide as --signer does
    registry = resolve_signer(None, trusted={SIGNER: "Tracer One"}, allow_unpinned=False)
    assert check_signer(fingerprint(SIGNER), registry, what="f") is True
    with pytest.raises(UntrustedSigner, match="not in your trusted signers"):
        check_signer(fingerprint("cd" * 32), registry, what="f")
