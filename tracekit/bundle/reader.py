"""The receiving side: decrypt, check the signature, every hash and the counts; open.

Needs no store and no passphrase, only the recipient's age identity file. The bundle
is decrypted as a stream (a thread feeds a pipe) and the tar is read sequentially, so
only the manifest and signature are held whole. ``open`` extracts into a private
temporary directory and moves it into place only when everything has verified.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from tracekit.errors import BundleInvalid, PassphraseError, StoreExists, ValidationError, WriteFailed
from tracekit import files
from tracekit.files import describe_os_error

MAX_MANIFEST_BYTES = 64 * 1024 * 1024


@dataclass
class Verified:
    manifest: dict[str, Any]
    signer_fingerprint: str
    signer_checked: bool
    files: list[str] = field(default_factory=list)
    line_counts: dict[str, int] = field(default_factory=dict)
    manifest_bytes: bytes = b""
    signature_hex: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "bundle_id": self.manifest["bundle_id"],
            "created_at": self.manifest["created_at"],
            "recipient": self.manifest["recipient"],
            "policy": self.manifest["policy"]["name"],
            "policy_sha256": self.manifest["policy"]["sha256"],
            "record_counts": self.manifest["record_counts"],
            "changes": self.manifest["changes"],
            "signer_fingerprint": self.signer_fingerprint,
            "signer_checked": self.signer_checked,
            "files": self.files,
            "audit_head": self.manifest.get("audit_head"),
        }


def load_identities(path: Path) -> list[Any]:
    """age X25519 identities from a key file (as written by age-keygen); must be private."""
    from pyrage import IdentityError, x25519

    path = Path(path).expanduser()
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ValidationError("identity", f"{path} does not exist", expected="an age identity file (AGE-SECRET-KEY-1...)") from None
    if st.st_mode & 0o077:
        raise PassphraseError(f"the identity file {path} is readable by others; run chmod 600 {path}")
    identities = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                identities.append(x25519.Identity.from_str(line))
            except (IdentityError, ValueError):
                raise ValidationError("identity", f"{path} holds a malformed key", expected="AGE-SECRET-KEY-1...") from None
    if not identities:
        raise ValidationError("identity", f"{path} holds no age identity", expected="a line AGE-SECRET-KEY-1...")
    return identities


def parse_signer(text: str | None) -> str | None:
    """An expected signer: 64 hex digits of public key, or a file holding them."""
    if not text:
        return None
    candidate = text.strip()
    path = Path(candidate).expanduser()
    if len(candidate) != 64 and path.is_file():
        candidate = path.read_text().strip().split()[0]
    candidate = candidate.lower()
    if len(candidate) != 64 or any(c not in "0123456789abcdef" for c in candidate):
        raise ValidationError("signer", "is not an Ed25519 public key", expected="64 hex digits, as printed by tracekit keys show")
    return candidate


class _Decryptor:
    def __init__(self, path: Path, identities: list[Any]) -> None:
        from pyrage import decrypt_io

        read_fd, write_fd = os.pipe()
        self.stream = os.fdopen(read_fd, "rb", buffering=1 << 20)
        self._error: BaseException | None = None
        sink = os.fdopen(write_fd, "wb")

        def run() -> None:
            try:
                with open(path, "rb") as source:
                    decrypt_io(source, sink, identities)
            except BaseException as exc:
                self._error = exc
            finally:
                sink.close()

        self._thread = threading.Thread(target=run, name="tracekit-age-decrypt", daemon=True)
        self._thread.start()

    def finish(self) -> None:
        try:
            self.stream.read()  # drain so the decrypting thread can finish
        finally:
            self.stream.close()
        self._thread.join()
        if self._error is not None:
            raise _decrypt_failure(self._error)


def _decrypt_failure(error: BaseException) -> BundleInvalid:
    text = str(error).lower()
    if "no matching keys" in text or "identity" in text:
        return BundleInvalid("this bundle is not encrypted to the given identity (wrong key, or re-encrypted by someone else)")
    if "header" in text and "parse" in text:
        return BundleInvalid("this is not an age-encrypted bundle, or its header is damaged")
    return BundleInvalid(
        "the bundle failed decryption: it was altered, truncated or extended after it was made "
        f"({type(error).__name__})"
    )


@contextmanager
def _writing(directory: Path) -> Iterator[None]:
    """Our own disk failing (full, read-only, a file size limit) is a write failure, not a bad bundle."""
    try:
        yield
    except OSError as exc:
        raise WriteFailed(f"cannot write the opened bundle into {directory}: {describe_os_error(exc)}") from None


def _safe_member_name(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BundleInvalid(f"the bundle holds an unsafe path: {name!r}")
    return str(path)


def read_bundle(path: Path, identities: list[Any], *, signer: str | None = None, extract_to: Path | None = None) -> Verified:
    """Decrypt and verify; optionally extract into ``extract_to`` (an empty directory)."""
    from tracekit.crypto import signing

    path = Path(path).expanduser()
    if not path.is_file():
        raise ValidationError("bundle", f"{path} does not exist", expected="a .tar.age bundle file")
    decryptor = _Decryptor(path, identities)
    seen: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    lines: dict[str, int] = {}
    manifest_bytes = signature_text = None
    names_seen: set[str] = set()
    failure: BaseException | None = None
    try:
        with tarfile.open(fileobj=decryptor.stream, mode="r|") as tar:
            for member in tar:
                name = _safe_member_name(member.name)
                if not member.isfile():
                    raise BundleInvalid(f"the bundle holds something that is not a file: {name!r}")
                if name in names_seen:
                    raise BundleInvalid(f"the bundle holds {name!r} twice")
                names_seen.add(name)
                handle = tar.extractfile(member)
                assert handle is not None
                if name in ("manifest.json", "manifest.sig"):
                    data = handle.read(MAX_MANIFEST_BYTES + 1)
                    if len(data) > MAX_MANIFEST_BYTES:
                        raise BundleInvalid("the manifest is implausibly large")
                    if name == "manifest.json":
                        manifest_bytes = data
                    else:
                        signature_text = data.decode("ascii", errors="replace").strip()
                    continue
                if manifest_bytes is not None:
                    raise BundleInvalid(f"{name!r} comes after the manifest; the bundle was altered")
                digest = hashlib.sha256()
                size = count = 0
                target = None
                if extract_to is not None:
                    target_path = extract_to / name
                    with _writing(extract_to):
                        target_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                        target = open(os.open(target_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb")
                try:
                    while True:
                        block = handle.read(1 << 20)
                        if not block:
                            break
                        digest.update(block)
                        size += len(block)
                        count += block.count(b"\n")
                        if target is not None:
                            with _writing(extract_to):
                                target.write(block)
                finally:
                    if target is not None:
                        with _writing(extract_to):
                            target.close()
                seen[name] = {"sha256": digest.hexdigest(), "bytes": size}
                order.append(name)
                lines[name] = count
    except (BundleInvalid, WriteFailed) as exc:
        failure = exc
    except (tarfile.TarError, OSError, EOFError) as exc:
        failure = exc
    try:
        decryptor.finish()
    except BundleInvalid as exc:
        raise exc from None
    if failure is not None:
        if isinstance(failure, (BundleInvalid, WriteFailed)):
            raise failure
        raise BundleInvalid(f"the bundle's contents are damaged ({type(failure).__name__})") from None
    if manifest_bytes is None or signature_text is None:
        raise BundleInvalid("the bundle has no manifest or no signature (truncated or altered)")
    try:
        manifest = json.loads(manifest_bytes)
        signer_key = manifest["tracer_key"]["public_key"]
        signature = bytes.fromhex(signature_text)
    except (ValueError, KeyError, TypeError):
        raise BundleInvalid("the manifest or signature is malformed") from None
    if manifest.get("format") != "tracekit-bundle":
        raise BundleInvalid("this is not a tracekit bundle")
    if manifest.get("version") != 1:
        raise BundleInvalid(f"bundle format version {manifest.get('version')} is not supported by this tracekit")
    if not signing.verify(signer_key, manifest_bytes, signature):
        raise BundleInvalid("the manifest's signature does not verify: the bundle was altered or the signature swapped")
    if signer is not None and signer_key != signer:
        raise BundleInvalid(
            f"signed by a different key (fingerprint {signing.fingerprint(signer_key)}) "
            f"than the expected tracer ({signing.fingerprint(signer)})"
        )
    listed = {entry["path"]: entry for entry in manifest.get("files", [])}
    for name, entry in listed.items():
        actual = seen.get(name)
        if actual is None:
            raise BundleInvalid(f"{name} is listed in the manifest but missing from the bundle")
        if actual["sha256"] != entry.get("sha256") or actual["bytes"] != entry.get("bytes"):
            raise BundleInvalid(f"{name} does not match its hash in the manifest: it was altered")
    extra = [name for name in order if name not in listed]
    if extra:
        raise BundleInvalid(f"{extra[0]} is in the bundle but not in the manifest: it was added")
    counts = manifest.get("record_counts", {})
    for record_type in ("case", "contact"):
        records = sum(n for name, n in lines.items() if name.startswith(f"records/{record_type}s-") and name.endswith(".jsonl"))
        if any(name.startswith(f"records/{record_type}s-") for name in order) and records != counts.get(f"{record_type}s"):
            raise BundleInvalid(f"the bundle holds {records} {record_type} records but its manifest says {counts.get(record_type + 's')}")
    return Verified(
        manifest, signing.fingerprint(signer_key), signer is not None, order, lines, manifest_bytes, signature_text
    )


def open_bundle(path: Path, identities: list[Any], out_dir: Path, *, signer: str | None = None) -> tuple[Verified, Path]:
    """Verify while extracting into a private temporary directory; publish it only if valid.

    On any failure (a bundle that does not verify, a full disk) the temporary directory
    and everything extracted into it are removed; ``out_dir`` itself, if this call
    created it, stays (empty).
    """
    out_dir = Path(out_dir).expanduser()
    temp = files.temp_dir_in(out_dir, "open")
    with _writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        files.remove_leftovers(out_dir)
        temp.mkdir(mode=0o700)
    try:
        verified = read_bundle(path, identities, signer=signer, extract_to=temp)
        final = out_dir / verified.manifest["bundle_id"]
        if final.exists():
            raise StoreExists(f"{final} already exists; tracekit never overwrites")
        with _writing(out_dir):
            # The exact signed bytes, so the opened copy can be checked again later.
            for name, data in (("manifest.json", verified.manifest_bytes), ("manifest.sig", verified.signature_hex.encode() + b"\n")):
                with open(os.open(temp / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb") as handle:
                    handle.write(data)
            os.rename(temp, final)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return verified, final
