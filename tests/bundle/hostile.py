"""Crafting hostile bundles for tests: any manifest, any members, any tar header, signed by a test key.

A real tracer's key is not needed: the attacker in these tests signs with their own
key, which is exactly what an unpinned ``bundle open`` would accept.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyrage import encrypt, x25519

from tracekit.crypto import signing

IDENTITY = x25519.Identity.generate()
SIGNER = Ed25519PrivateKey.generate()
SIGNER_PUBLIC = SIGNER.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()

RECORD = b'{"ref": "C-7K2M9Q", "test_date": "2020-10-20", "withheld": false}\n'


def valid_manifest(members: dict[str, bytes]) -> dict[str, Any]:
    """A manifest that tracekit's reader accepts for ``members``."""
    cases = sum(
        data.count(b"\n")
        for name, data in members.items()
        if name.startswith("records/cases-") and name.endswith(".jsonl")
    )
    contacts = sum(
        data.count(b"\n")
        for name, data in members.items()
        if name.startswith("records/contacts-") and name.endswith(".jsonl")
    )
    return {
        "format": "tracekit-bundle",
        "version": 1,
        "bundle_id": "0123456789abcdef0123456789abcdef",
        "created_at": "2020-11-01T09:00:00+00:00",
        "tracekit_version": "0.1.0",
        "tracer_key": {
            "algorithm": "ed25519",
            "public_key": SIGNER_PUBLIC,
            "fingerprint": signing.fingerprint(SIGNER_PUBLIC),
        },
        "recipient": {"name": "PHE North", "role": "central-team"},
        "policy": {
            "name": "central-handover",
            "sha256": "0" * 64,
            "kind": "records",
            "definition": {
                "name": "central-handover",
                "description": "test",
                "kind": "records",
                "recipient_roles": ["central-team"],
                "fields": {"case": ["ref"]},
                "scope": "standard",
                "role_category": False,
                "statistics": [],
            },
        },
        "changes": {"since": None, "until": "2020-11-01T09:00:00+00:00"},
        "record_counts": {"cases": cases, "contacts": contacts, "referrals": 0},
        "files": [
            {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in members.items()
        ],
        "audit_head": "3:" + "a" * 64,
    }


def manifest_bytes(manifest: Any) -> bytes:
    return manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def signed_members(members: dict[str, bytes], manifest: Any = None) -> list[tuple[str, bytes]]:
    """The members followed by a manifest (valid unless given) and its signature by the test key."""
    body = manifest_bytes(valid_manifest(members) if manifest is None else manifest)
    return [*members.items(), ("manifest.json", body), ("manifest.sig", SIGNER.sign(body).hex().encode() + b"\n")]


def seal(tar: bytes) -> bytes:
    return encrypt(tar, [IDENTITY.to_public()])


def bundle(members: dict[str, bytes] | None = None, manifest: Any = None) -> bytes:
    """An encrypted bundle signed by the test key."""
    members = {"records/cases-00001.jsonl": RECORD} if members is None else members
    return seal(tar_bytes(signed_members(members, manifest)))


def raw_header(name: str, size: int, typeflag: bytes = b"0") -> bytes:
    """A ustar header block for anything, including what tarfile would refuse to write."""
    header = bytearray(512)
    header[0 : len(name)] = name.encode()
    header[100:108] = b"0000600\0"
    header[108:116] = b"0000000\0"
    header[116:124] = b"0000000\0"
    header[124:136] = f"{size:011o}\0".encode()
    header[136:148] = b"00000000000\0"
    header[148:156] = b" " * 8
    header[156:157] = typeflag
    header[257:263] = b"ustar\0"
    header[263:265] = b"00"
    header[148:156] = f"{sum(header):06o}\0 ".encode()
    return bytes(header)
