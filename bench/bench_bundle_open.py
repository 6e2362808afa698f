"""Opening a large bundle: tracekit's verify-then-extract (two passes) beside a bare
``age -d | tar -x`` of the same file (one pass, nothing checked), alternated in one run.

    python bench/bench_bundle_open.py [--records 400000] [--rounds 5]

The bundle is made here, in the format tracekit writes (records in chunks of 20,000 lines,
a signed manifest last), with a throwaway signing key and age identity; its records are
synthetic lines of about 200 bytes. The baseline is the fastest way to get the same files
onto disk with standard tools, and it checks nothing: no signature, no hashes, no names.
tracekit decrypts the file twice (a first pass verifies everything and writes nothing;
the second extracts against the verified manifest), so the expected ratio is about 2.
Needs the ``age`` command (Debian package age) for the baseline.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import machine  # noqa: E402

CHUNK = 20_000


def make_bundle(folder: Path, records: int) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from pyrage import encrypt_io, x25519

    from tracekit.crypto import signing

    identity = x25519.Identity.generate()
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    members: list[tuple[str, bytes]] = []
    for chunk, start in enumerate(range(0, records, CHUNK), 1):
        lines = b"".join(
            b'{"ref":"C-%06d","name":"Person %d","test_date":"2020-10-20","status":"open","withheld":false,"pad":"%s"}\n'
            % (i, i, b"x" * 100)
            for i in range(start, min(records, start + CHUNK))
        )
        members.append((f"records/cases-{chunk:05d}.jsonl", lines))
    manifest = {
        "format": "tracekit-bundle",
        "version": 1,
        "bundle_id": "0123456789abcdef0123456789abcdef",
        "created_at": "2020-11-01T09:00:00+00:00",
        "tracekit_version": "0.1.0",
        "tracer_key": {"algorithm": "ed25519", "public_key": public, "fingerprint": signing.fingerprint(public)},
        "recipient": {"name": "Bench", "role": "central-team"},
        "policy": {
            "name": "central-handover",
            "sha256": "0" * 64,
            "kind": "records",
            "definition": {
                "name": "central-handover",
                "description": "bench",
                "kind": "records",
                "recipient_roles": ["central-team"],
                "fields": {"case": ["ref"]},
                "scope": "standard",
                "role_category": False,
                "statistics": [],
            },
        },
        "changes": {"since": None, "until": "2020-11-01T09:00:00+00:00"},
        "record_counts": {"cases": records, "contacts": 0, "referrals": 0},
        "files": [{"path": n, "sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)} for n, d in members],
        "audit_head": None,
    }
    body = json.dumps(manifest).encode()
    members += [("manifest.json", body), ("manifest.sig", key.sign(body).hex().encode() + b"\n")]
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    plain.seek(0)
    bundle = folder / "bench.tar.age"
    with open(bundle, "wb") as out:
        encrypt_io(plain, out, [identity.to_public()])
    key_file = folder / "identity.key"
    key_file.write_text(f"{identity}\n")
    os.chmod(key_file, 0o600)
    return bundle, key_file


def timed(command: list[str] | str, *, shell: bool = False) -> float:
    started = time.perf_counter()
    subprocess.run(command, shell=shell, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("age") is None:
        sys.exit("the baseline needs the age command (apt-get install age)")
    print(f"Machine: {machine()}")
    with tempfile.TemporaryDirectory(dir=HERE / "out" if (HERE / "out").is_dir() else None) as work:
        folder = Path(work)
        bundle, key = make_bundle(folder, args.records)
        print(f"bundle: {args.records:,} records, {bundle.stat().st_size / 2**20:.0f} MiB")
        ours, bare = [], []
        for round_number in range(args.rounds + 1):  # the first round warms the page cache
            out_a, out_b = folder / f"a{round_number}", folder / f"b{round_number}"
            out_b.mkdir()
            a = timed(
                [sys.executable, "-m", "tracekit", "bundle", "open", str(bundle), "-i", str(key), "--out", str(out_a)]
            )
            b = timed(f"age -d -i {key} {bundle} | tar -x -C {out_b}", shell=True)
            shutil.rmtree(out_a), shutil.rmtree(out_b)
            if round_number:
                ours.append(a)
                bare.append(b)
        ratios = sorted(a / b for a, b in zip(ours, bare))
        print(f"tracekit bundle open (verify, then extract): median {statistics.median(ours):.2f} s")
        print(f"age -d | tar -x (one pass, nothing checked):  median {statistics.median(bare):.2f} s")
        print(f"ratio per round: median {statistics.median(ratios):.2f} (min {ratios[0]:.2f}, max {ratios[-1]:.2f})")


if __name__ == "__main__":
    main()
