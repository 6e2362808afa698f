"""The receiving side: decrypt, check the signature, every hash and the counts; open.

Needs no store and no passphrase, only the recipient's age identity file. A bundle is
hostile until its signature has been checked against the tracer's key, so:

* the file is decrypted as a stream (a thread feeds a pipe) and its tar is read by
  :mod:`tracekit.bundle.tarstream`, which accepts only regular files in plain ustar
  headers and reads nothing beyond the size a header declares;
* member names must be ones tracekit writes (``records/cases-00001.jsonl``...), so no
  name can point outside the folder a bundle is opened into;
* the manifest is parsed strictly and validated against its schema
  (:mod:`tracekit.bundle.manifest`) before any field is used;
* ``open`` writes nothing until a first pass has verified the signature, the signer,
  every member's size and hash and the counts. A second pass then extracts into a
  private temporary folder, streaming each member against the size and hash the
  verified manifest lists (so a file swapped between the passes is caught), and the
  folder is moved into place only when that pass has verified too.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from tracekit import files
from tracekit.bundle.manifest import (
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    MAX_MEMBER_BYTES,
    MAX_MEMBERS,
    MAX_SIGNATURE_BYTES,
    MEMBER_NAME,
    SIGNATURE_NAME,
    FileEntry,
    Manifest,
    parse_manifest,
)
from tracekit.bundle.signers import (
    Signer,
    SignerCheck,
    parse_signer,  # noqa: F401  (callers import it from here too)
    resolve_signer,
)
from tracekit.bundle.tarstream import TarStream
from tracekit.errors import BundleInvalid, PassphraseError, StoreExists, ValidationError, WriteFailed
from tracekit.files import describe_os_error

#: An identity or signer file is a few lines; anything larger is not one.
MAX_KEY_FILE_BYTES = 64 * 1024
_AGE_MAGIC = (b"age-encryption.org/v1\n", b"-----BEGIN AGE ENCRYPTED FILE-----")


@dataclass
class Verified:
    """A bundle whose signature, hashes and counts all checked out."""

    model: Manifest
    manifest: dict[str, Any]  # the validated manifest as plain JSON (for --json output)
    signer: Signer
    files: list[str] = field(default_factory=list)
    line_counts: dict[str, int] = field(default_factory=dict)
    manifest_bytes: bytes = b""
    signature_hex: str = ""

    @property
    def signer_fingerprint(self) -> str:
        return self.signer.fingerprint

    @property
    def signer_checked(self) -> bool:
        """Whether the signer was pinned (``--signer`` or the trusted signers file)."""
        return self.signer.pinned

    def to_json(self) -> dict[str, Any]:
        m = self.model
        return {
            "ok": True,
            "bundle_id": m.bundle_id,
            "created_at": m.created_at,
            "recipient": {"name": m.recipient.name, "role": m.recipient.role},
            "policy": m.policy.name,
            "policy_sha256": m.policy.sha256,
            "record_counts": dict(m.record_counts),
            "changes": {"since": m.changes.since, "until": m.changes.until},
            "signer_fingerprint": self.signer_fingerprint,
            "signer_checked": self.signer_checked,
            "signer_pinned_by": self.signer.pinned_by,
            "signer_name": self.signer.name,
            "files": self.files,
            "audit_head": m.audit_head,
        }


# ---------------------------------------------------------------------------- input files


def _open_regular(path: Path, what: str, expected: str) -> BinaryIO:
    """A file named from outside, opened for reading: a regular file, or a validation error (never a hang)."""
    return files.open_regular_file(
        path, what=what, error=lambda message: ValidationError(what, message, expected=expected)
    )


def _read_key_file(path: Path, what: str, expected: str) -> tuple[str, os.stat_result]:
    with _open_regular(path, what, expected) as handle:
        info = os.fstat(handle.fileno())
        data = handle.read(MAX_KEY_FILE_BYTES + 1)
    if len(data) > MAX_KEY_FILE_BYTES:
        raise ValidationError(what, f"{path} is larger than {files.format_size(MAX_KEY_FILE_BYTES)}", expected=expected)
    return data.decode("utf-8", errors="replace"), info


def load_identities(path: Path) -> list[Any]:
    """age X25519 identities from a key file (as written by age-keygen); must be private."""
    from pyrage import IdentityError, x25519

    path = Path(path).expanduser()
    expected = "an age identity file (AGE-SECRET-KEY-1...)"
    text, info = _read_key_file(path, "identity", expected)
    if info.st_mode & 0o077:
        raise PassphraseError(f"the identity file {path} is readable by others; run chmod 600 {path}")
    identities = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                identities.append(x25519.Identity.from_str(line))
            except (IdentityError, ValueError):
                raise ValidationError(
                    "identity", f"{path} holds a malformed key", expected="AGE-SECRET-KEY-1..."
                ) from None
    if not identities:
        raise ValidationError("identity", f"{path} holds no age identity", expected="a line AGE-SECRET-KEY-1...")
    return identities


# ---------------------------------------------------------------------------- decryption


class _Decryptor:
    """age-decrypt ``source`` in a thread, into a pipe whose reading end is ``stream``."""

    def __init__(self, source: BinaryIO, identities: list[Any]) -> None:
        from pyrage import decrypt_io

        read_fd, write_fd = os.pipe()
        self.stream = os.fdopen(read_fd, "rb", buffering=1 << 20)
        self._source = source
        self._error: BaseException | None = None
        sink = os.fdopen(write_fd, "wb")

        def run() -> None:
            try:
                decrypt_io(source, sink, identities)
            except BaseException as exc:
                self._error = exc
            finally:
                try:
                    sink.close()
                except OSError:
                    pass  # the reader closed its end first (abandon)

        self._thread = threading.Thread(target=run, name="tracekit-age-decrypt", daemon=True)
        self._thread.start()

    def finish(self) -> None:
        """After the whole archive was read: the stream must end here, and have decrypted cleanly."""
        try:
            if self.stream.read(1):
                raise BundleInvalid("the bundle holds data after the end of its archive; it was altered")
        finally:
            self.stream.close()
            self._thread.join()
        if self._error is not None:
            raise _decrypt_failure(self._error)

    def abandon(self) -> BundleInvalid | None:
        """Stop early and say whether decryption itself had failed.

        An error the thread met before we stopped reading is the bundle's (it closed the
        pipe, which is why the archive ended early); one it meets after is our doing. The
        thread is stopped by closing its source, not the pipe: writing into a pipe nobody
        reads would end the process by SIGPIPE (the CLI keeps SIGPIPE's default so that
        ``tracekit ... | head`` ends quietly). What it had written already is drained.
        """
        genuine = self._error
        self._source.close()  # the thread's next read fails, so it stops and closes the pipe
        try:
            while self.stream.read(1 << 20):
                pass
        except (OSError, ValueError):
            pass
        self.stream.close()
        self._thread.join()
        return _decrypt_failure(genuine) if genuine is not None else None


def _decrypt_failure(error: BaseException) -> BundleInvalid:
    text = str(error).lower()
    if "no matching keys" in text or "identity" in text:
        return BundleInvalid(
            "this bundle is not encrypted to the given identity (wrong key, or re-encrypted by someone else)"
        )
    if "header" in text and "parse" in text:
        return BundleInvalid("this is not an age-encrypted bundle, or its header is damaged")
    return BundleInvalid(
        "the bundle failed decryption: it was altered, truncated or extended after it was made "
        f"({type(error).__name__})"
    )


# ---------------------------------------------------------------------------- reading


@dataclass
class _Scan:
    """What one pass over the archive found."""

    order: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    manifest_bytes: bytes | None = None
    signature_text: str | None = None
    #: the members the caller asked to keep (``collect``), in memory; to be trusted only
    #: once :func:`_verify` has checked their hashes against the signed manifest
    collected: dict[str, bytes] = field(default_factory=dict)


@contextmanager
def _writing(directory: Path) -> Iterator[None]:
    """Our own disk failing (full, read-only, a file size limit) is a write failure, not a bad bundle."""
    try:
        yield
    except OSError as exc:
        raise WriteFailed(f"cannot write the opened bundle into {directory}: {describe_os_error(exc)}") from None


def _check_age_file(source: BinaryIO, path: Path) -> None:
    head = source.read(64)
    source.seek(0)
    if not head:
        raise BundleInvalid(f"{path} is empty: it is not a bundle (was the copy interrupted?)")
    if not head.startswith(_AGE_MAGIC):
        raise BundleInvalid(f"{path} is not an age-encrypted file, so not a tracekit bundle")


#: Which members to keep in memory while scanning: called with each member's name and
#: size before its data is read (it may raise to refuse a member too large to keep).
Collect = Callable[[str, int], bool]


class MemberSink(Protocol):
    """Where a member's bytes go as they pass (a file being extracted, a database load)."""

    def write(self, block: bytes, /) -> Any: ...

    def close(self) -> None: ...


#: Given a member's name, where its bytes go (or None: only hash and count it).
MemberConsumer = Callable[[str], MemberSink | None]


def _scan(
    path: Path,
    identities: list[Any],
    *,
    expected: dict[str, FileEntry] | None = None,
    consume: MemberConsumer | None = None,
    collect: Collect | None = None,
) -> _Scan:
    """One pass: decrypt, read every member; check against ``expected``, hand each member to
    ``consume`` and keep the ones ``collect`` chooses, if given."""
    with _open_regular(path, "bundle", "a .tar.age bundle file") as source:
        _check_age_file(source, path)
        decryptor = _Decryptor(source, identities)
        try:
            scan = _walk(TarStream(decryptor.stream), expected, consume, collect)
        except BaseException:
            failure = decryptor.abandon()
            if failure is not None:
                raise failure from None  # decryption failing is the real cause of a damaged archive
            raise
        decryptor.finish()
    return scan


def _walk(
    tar: TarStream,
    expected: dict[str, FileEntry] | None,
    consume: MemberConsumer | None,
    collect: Collect | None = None,
) -> _Scan:
    scan = _Scan()
    for member in tar.members():
        name = member.name
        if (
            name in scan.sizes
            or (name == MANIFEST_NAME and scan.manifest_bytes is not None)
            or (name == SIGNATURE_NAME and scan.signature_text is not None)
        ):
            raise BundleInvalid(f"the bundle holds {name!r} twice")
        if name in (MANIFEST_NAME, SIGNATURE_NAME):
            limit = MAX_MANIFEST_BYTES if name == MANIFEST_NAME else MAX_SIGNATURE_BYTES
            if member.size > limit:
                raise BundleInvalid(f"the bundle's {name} is {member.size:,} bytes; at most {limit:,} are allowed")
            data = b"".join(tar.read_data(member))
            if name == MANIFEST_NAME:
                scan.manifest_bytes = data
            else:
                scan.signature_text = data.decode("ascii", errors="replace").strip()
            continue
        if scan.manifest_bytes is not None or scan.signature_text is not None:
            raise BundleInvalid(f"{name!r} comes after the manifest; the bundle was altered")
        if not MEMBER_NAME.fullmatch(name):
            raise BundleInvalid(f"the bundle holds a file tracekit never writes: {name!r}")
        if len(scan.order) >= MAX_MEMBERS:
            raise BundleInvalid(f"the bundle holds more than {MAX_MEMBERS:,} files")
        if member.size > MAX_MEMBER_BYTES:
            raise BundleInvalid(f"{name} is {member.size:,} bytes; at most {MAX_MEMBER_BYTES:,} are allowed")
        entry = None
        if expected is not None:
            entry = expected.get(name)
            if entry is None:
                raise BundleInvalid(f"{name} is in the bundle but not in the manifest: it was added")
            if member.size != entry.bytes:
                raise BundleInvalid(
                    f"{name} is {member.size:,} bytes but its manifest says {entry.bytes:,}: it was altered"
                )
        target = consume(name) if consume is not None else None
        kept: list[bytes] | None = [] if collect is not None and collect(name, member.size) else None
        if expected is not None and target is None and kept is None:
            # A second pass over a verified bundle, and nobody takes this member: it is passed
            # over unhashed (nothing of it is used; the verified pass hashed it).
            scan.order.append(name)
            scan.sizes[name] = member.size
            continue
        digest = hashlib.sha256()
        lines = 0
        try:
            for block in tar.read_data(member):
                digest.update(block)
                lines += block.count(b"\n")
                if kept is not None:
                    kept.append(block)
                if target is not None:
                    target.write(block)
        finally:
            if target is not None:
                target.close()
        scan.order.append(name)
        scan.sizes[name] = member.size
        scan.hashes[name] = digest.hexdigest()
        scan.lines[name] = lines
        if kept is not None:
            scan.collected[name] = b"".join(kept)
        if entry is not None and scan.hashes[name] != entry.sha256:
            raise BundleInvalid(f"{name} does not match its hash in the manifest: it was altered")
    return scan


class _ExtractedMember:
    """A member being written into the folder a bundle is opened into."""

    def __init__(self, directory: Path, name: str) -> None:
        self._directory = directory
        target = directory / name  # name matched MEMBER_NAME: at most one plain folder deep
        with _writing(directory):
            target.parent.mkdir(exist_ok=True, mode=0o700)
            fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600)
            self._file = os.fdopen(fd, "wb")

    def write(self, block: bytes, /) -> None:
        with _writing(self._directory):
            self._file.write(block)

    def close(self) -> None:
        with _writing(self._directory):
            self._file.close()


def _verify(scan: _Scan, signers: SignerCheck) -> Verified:
    from tracekit.crypto import signing

    if scan.manifest_bytes is None or scan.signature_text is None:
        raise BundleInvalid("the bundle has no manifest or no signature (truncated or altered)")
    model, raw = parse_manifest(scan.manifest_bytes)
    if not re.fullmatch(r"[0-9a-f]{128}", scan.signature_text):
        raise BundleInvalid("manifest.sig is not an Ed25519 signature (128 hex digits)")
    public_key = model.tracer_key.public_key
    fingerprint = signing.fingerprint(public_key)
    if not signing.verify(public_key, scan.manifest_bytes, bytes.fromhex(scan.signature_text)):
        raise BundleInvalid("the manifest's signature does not verify: the bundle was altered or the signature swapped")
    if model.tracer_key.fingerprint != fingerprint:
        raise BundleInvalid("the manifest's tracer fingerprint does not belong to its tracer key")
    signer = signers.accept(fingerprint)
    listed = {entry.path: entry for entry in model.files}
    for name, entry in listed.items():
        if name not in scan.hashes:
            raise BundleInvalid(f"{name} is listed in the manifest but missing from the bundle")
        if scan.hashes[name] != entry.sha256 or scan.sizes[name] != entry.bytes:
            raise BundleInvalid(f"{name} does not match its hash in the manifest: it was altered")
    extra = [name for name in scan.order if name not in listed]
    if extra:
        raise BundleInvalid(f"{extra[0]} is in the bundle but not in the manifest: it was added")
    counts = model.record_counts
    for record_type in ("case", "contact"):
        chunks = [
            name for name in scan.order if name.startswith(f"records/{record_type}s-") and name.endswith(".jsonl")
        ]
        records = sum(scan.lines[name] for name in chunks)
        stated = counts.get(f"{record_type}s")
        if chunks and records != stated:
            raise BundleInvalid(f"the bundle holds {records} {record_type} records but its manifest says {stated}")
    return Verified(model, raw, signer, scan.order, scan.lines, scan.manifest_bytes, scan.signature_text)


def _signer_check(signer: str | SignerCheck | None) -> SignerCheck:
    return signer if isinstance(signer, SignerCheck) else resolve_signer(signer)


def read_bundle_members(
    path: Path, identities: list[Any], collect: Collect, *, signer: str | SignerCheck | None = None
) -> tuple[Verified, dict[str, bytes]]:
    """Decrypt and verify in one pass, writing nothing, keeping the members ``collect``
    chooses in memory: they are returned only once the whole bundle has verified, so each
    matches its hash in the signed manifest."""
    scan = _scan(Path(path).expanduser(), identities, collect=collect)
    verified = _verify(scan, _signer_check(signer))
    return verified, scan.collected


def read_bundle(path: Path, identities: list[Any], *, signer: str | SignerCheck | None = None) -> Verified:
    """Decrypt and verify, writing nothing.

    ``signer``: what :func:`tracekit.bundle.signers.resolve_signer` made, or simply the
    expected tracer's key or fingerprint (None: any signer, unpinned)."""
    signers = _signer_check(signer)  # a bad --signer fails before the bundle is read
    return _verify(_scan(Path(path).expanduser(), identities), signers)


def read_members(path: Path, identities: list[Any], verified: Verified, consume: MemberConsumer) -> None:
    """A second pass over a bundle ``read_bundle`` verified: each member's bytes go to
    ``consume(name)`` as they pass, each member is checked against the size and hash the
    verified manifest lists, and the whole against the verified pass (a file swapped
    between the passes is caught).

    A member's bytes reach its sink before its hash is checked at its end: a consumer must
    hold what it received as provisional (a temporary folder, an open transaction) until
    this returns, and discard it if this raises. A member ``consume`` declines (returns
    None for) is passed over without being hashed again: nothing of it is used.
    """
    expected = {entry.path: entry for entry in verified.model.files}
    second = _scan(Path(path).expanduser(), identities, expected=expected, consume=consume)
    if second.manifest_bytes != verified.manifest_bytes or second.order != verified.files:
        raise BundleInvalid("the bundle file changed while it was being read")


def open_bundle(
    path: Path, identities: list[Any], out_dir: Path, *, signer: str | SignerCheck | None = None
) -> tuple[Verified, Path]:
    """Verify, then extract into ``out_dir/<bundle_id>``; nothing is written unless it all verifies.

    On any failure (a bundle that does not verify, a full disk) the temporary folder and
    everything extracted into it are removed; ``out_dir`` itself, if this call created it,
    stays (empty).
    """
    path = Path(path).expanduser()
    out_dir = Path(out_dir).expanduser()
    verified = read_bundle(path, identities, signer=_signer_check(signer))
    final = out_dir / verified.model.bundle_id
    if os.path.lexists(final):
        raise StoreExists(f"{final} already exists; tracekit never overwrites")
    temp = files.temp_dir_in(out_dir, "open")
    with _writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        files.remove_leftovers(out_dir)
        temp.mkdir(mode=0o700)
    try:
        read_members(path, identities, verified, lambda name: _ExtractedMember(temp, name))
        with _writing(out_dir):
            # The exact signed bytes, so the opened copy can be checked again later.
            for name, data in (
                (MANIFEST_NAME, verified.manifest_bytes),
                (SIGNATURE_NAME, verified.signature_hex.encode() + b"\n"),
            ):
                with open(os.open(temp / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb") as handle:
                    handle.write(data)
            if os.path.lexists(final):
                raise StoreExists(f"{final} already exists; tracekit never overwrites")
            os.rename(temp, final)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return verified, final
