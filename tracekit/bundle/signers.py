"""Whose signature tracekit accepts on what it receives: the one place that decides.

Anyone who knows a team's age public key can make a bundle (or a sealed referral) for it
and sign it with a key of their own; the signature only proves who signed when the
signer's key is one the team knows. Two ways to say which keys those are:

* ``--signer KEY-OR-FINGERPRINT`` (repeatable): this run accepts exactly these tracers.
  The value is the tracer's Ed25519 public key (64 hex digits, as ``tracekit keys show``
  prints), its fingerprint (``xxxx:xxxx:...`` as ``bundle verify`` and ``keys show``
  print, with or without the colons, any case), or a file holding either;
* a **trusted signers file** (``--trusted-signers FILE`` or ``$TRACEKIT_TRUSTED_SIGNERS``),
  kept by the receiving team like SSH's ``allowed_signers``: one tracer a line, the key
  or fingerprint then the tracer's name; ``#`` starts a comment. When one is given,
  anything signed by a key not in it is refused. It holds public keys only (nothing
  secret), but whoever can write it decides whom the team trusts, so tracekit refuses a
  file that others may write to.

Both together: the signer must be pinned by ``--signer`` *and* be in the file. With
neither, the signer is *unpinned*: :func:`resolve_signer` with ``allow_unpinned=True``
accepts it (``bundle verify/inspect/open``, which then warn loudly with
:func:`unpinned_warning`), with ``allow_unpinned=False`` refuses it (taking records into
a store: ``referrals receive``, ``central ingest``).

Contract, for every command that receives signed material::

    check = resolve_signer(signer_args, trusted=path_or_None, allow_unpinned=False)
    # ... after the signature itself has verified with the embedded public key:
    signer = check.accept(signing.fingerprint(public_key_hex))  # or raises UntrustedSigner
    signer.pinned, signer.name, signer.fingerprint  # for output and the audit entry

``resolve_signer`` does all the parsing up front (a bad ``--signer`` value or trusted
signers file fails with a ValidationError, exit 11, before any bundle is read);
``accept`` never reads a file and raises :class:`UntrustedSigner` (exit 19) naming the
fingerprint it saw and how to pin it.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tracekit import files
from tracekit.domain.text import has_control_characters
from tracekit.errors import BundleInvalid, ValidationError

#: The environment variable that names the team's trusted signers file.
TRUSTED_SIGNERS_ENV = "TRACEKIT_TRUSTED_SIGNERS"
#: A signer file or a trusted signers file is a few lines; anything larger is not one.
MAX_SIGNER_FILE_BYTES = 1 << 20
MAX_NAME_LENGTH = 100

_FINGERPRINT = re.compile(r"[0-9a-f]{4}(:?[0-9a-f]{4}){7}")
_PUBLIC_KEY = re.compile(r"[0-9a-f]{64}")
_EXPECTED = "the tracer's public key (64 hex digits) or its fingerprint (xxxx:xxxx:... as bundle verify prints)"


class UntrustedSigner(BundleInvalid):
    """Signed by a key this run does not accept (not the pinned one, not in the trusted
    signers file, or unpinned where a pin is required). Exit 19, as any bundle or
    referral that fails verification; ``--json`` names it ``untrusted-signer``."""

    code = "untrusted-signer"


@dataclass(frozen=True)
class Signer:
    """The accepted signer of one bundle or referral."""

    fingerprint: str
    #: what it was checked against: ``"--signer"``, ``"trusted signers"``, both joined by
    #: ``" and "``; None when it was not checked (unpinned, accepted)
    pinned_by: str | None
    #: the tracer's name from the trusted signers file (or registry), if it gives one
    name: str | None = None

    @property
    def pinned(self) -> bool:
        return self.pinned_by is not None


@dataclass(frozen=True)
class SignerCheck:
    """What one run accepts; made by :func:`resolve_signer`."""

    #: fingerprints given with ``--signer`` (any of them); empty: none given
    pinned: frozenset[str] = frozenset()
    #: fingerprint -> tracer's name from the trusted signers file; None: no file given
    trusted: Mapping[str, str] | None = None
    #: where ``trusted`` came from, for messages
    trusted_source: str | None = None
    allow_unpinned: bool = True

    @property
    def any_pin(self) -> bool:
        return bool(self.pinned) or self.trusted is not None

    def accept(self, fingerprint: str) -> Signer:
        """The signer, if this run accepts ``fingerprint``; else :class:`UntrustedSigner`."""
        if self.pinned and fingerprint not in self.pinned:
            expected = ", ".join(sorted(self.pinned))
            raise UntrustedSigner(
                f"signed by a different key (fingerprint {fingerprint}) than the expected tracer ({expected})",
                hint="a bundle signed by anyone else is refused; ask the tracer for their fingerprint if it changed",
            )
        if self.trusted is not None and fingerprint not in self.trusted:
            raise UntrustedSigner(
                f"signed by {fingerprint}, which is not in your trusted signers file {self.trusted_source}",
                hint=(
                    "if this is a new tracer, compare the fingerprint with the one they gave you over a channel "
                    f"you trust, then add the line '{fingerprint} Their Name' to {self.trusted_source}"
                ),
            )
        if not self.any_pin and not self.allow_unpinned:
            raise UntrustedSigner(
                f"signed by {fingerprint}, but no signer is pinned, so anyone could have made it",
                hint=(
                    f"compare the fingerprint with the one the tracer gave you, then pass --signer {fingerprint}, "
                    f"or list your tracers in a trusted signers file (--trusted-signers or ${TRUSTED_SIGNERS_ENV})"
                ),
            )
        by = [
            label for label, used in (("--signer", self.pinned), ("trusted signers", self.trusted is not None)) if used
        ]
        name = self.trusted.get(fingerprint) if self.trusted is not None else None
        return Signer(fingerprint, " and ".join(by) or None, name or None)


def unpinned_warning(fingerprint: str) -> str:
    """What to say (loudly) when a bundle was accepted without a pinned signer."""
    return (
        f"signer not checked: this was signed by the key with fingerprint {fingerprint}, and anyone "
        "who knows your age public key can make and sign a bundle. Compare that fingerprint with the one "
        f"the tracer gave you, then pin it: --signer {fingerprint}, or add it to a trusted signers file "
        f"(--trusted-signers FILE or ${TRUSTED_SIGNERS_ENV}) to refuse every other signer."
    )


def fingerprint_of(text: str) -> str | None:
    """The fingerprint ``text`` names (a public key or a fingerprint), normalised; None if neither."""
    from tracekit.crypto import signing

    candidate = text.strip().lower()
    if _PUBLIC_KEY.fullmatch(candidate):
        return signing.fingerprint(candidate)
    if _FINGERPRINT.fullmatch(candidate):
        digits = candidate.replace(":", "")
        return ":".join(digits[i : i + 4] for i in range(0, 32, 4))
    return None


def _read_text(path: Path, what: str) -> tuple[str, os.stat_result]:
    def error(message: str) -> ValidationError:
        return ValidationError(what, message, expected=_EXPECTED)

    with files.open_regular_file(path, what=what, error=error) as handle:
        info = os.fstat(handle.fileno())
        data = handle.read(MAX_SIGNER_FILE_BYTES + 1)
    if len(data) > MAX_SIGNER_FILE_BYTES:
        raise error(f"{path} is larger than {files.format_size(MAX_SIGNER_FILE_BYTES)}")
    return data.decode("utf-8", errors="replace"), info


def parse_signer(text: str | None) -> str | None:
    """One ``--signer`` value as the fingerprint of its key (``xxxx:xxxx:...``); None for none.

    Accepts the tracer's public key (64 hex digits), its fingerprint (with or without the
    colons), or a file holding either as its first word.
    """
    if not text:
        return None
    found = fingerprint_of(text)
    if found is None:
        path = Path(text.strip()).expanduser()
        if not path.exists():
            raise ValidationError("signer", "is neither a key, a fingerprint nor a file", expected=_EXPECTED)
        content, _ = _read_text(path, "signer")
        words = content.split()
        found = fingerprint_of(words[0]) if words else None
        if found is None:
            raise ValidationError("signer", f"{path} holds no Ed25519 public key or fingerprint", expected=_EXPECTED)
    return found


def load_trusted_signers(path: str | os.PathLike[str]) -> dict[str, str]:
    """A trusted signers file: fingerprint -> tracer's name (may be empty).

    One tracer a line: key or fingerprint, then optionally the name; blank lines and
    lines starting with ``#`` are skipped. Every problem names the file and line. The file
    must not be writable by anyone but its owner (whoever can write it decides whom the
    team trusts) and must list at least one signer.
    """
    path = Path(path).expanduser()
    text, info = _read_text(path, "trusted signers file")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ValidationError(
            "trusted signers file",
            f"{path} may be written by others, who could add their own key",
            expected=f"a file only you can write (chmod go-w {path})",
        )
    trusted: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        key, *rest = line.split(None, 1)
        name = rest[0].strip() if rest else ""
        where = f"{path}, line {number}"
        fingerprint = fingerprint_of(key)
        if fingerprint is None:
            raise ValidationError(
                "trusted signers file", f"{where} does not start with a key or fingerprint", expected=_EXPECTED
            )
        if has_control_characters(name) or len(name) > MAX_NAME_LENGTH:
            raise ValidationError(
                "trusted signers file",
                f"{where}: the name has control characters or is too long",
                expected=f"a name of at most {MAX_NAME_LENGTH} printable characters",
            )
        if fingerprint in trusted and trusted[fingerprint] != name:
            raise ValidationError(
                "trusted signers file",
                f"{where} lists {fingerprint} again under another name",
                expected="each tracer once",
            )
        trusted[fingerprint] = name
    if not trusted:
        raise ValidationError(
            "trusted signers file", f"{path} lists no signers", expected="lines '<fingerprint> <name>'"
        )
    return trusted


def resolve_signer(
    signer_args: str | Iterable[str] | None,
    *,
    trusted: str | os.PathLike[str] | Mapping[str, str] | None = None,
    allow_unpinned: bool = True,
) -> SignerCheck:
    """What this run accepts, from ``--signer`` values and a trusted signers file.

    ``signer_args``: ``--signer`` values (one string, several, or None). ``trusted``: a
    trusted signers file's path, or an already loaded mapping of fingerprint -> name (a
    central team's tracer registry), or None. ``allow_unpinned``: whether a signer may be
    accepted with neither. Raises ValidationError for a bad value or file.
    """
    values = [signer_args] if isinstance(signer_args, str) else list(signer_args or ())
    pinned = frozenset(f for f in (parse_signer(v) for v in values) if f)
    if trusted is None:
        return SignerCheck(pinned, None, None, allow_unpinned)
    if isinstance(trusted, Mapping):
        normalised = {}
        for key, name in trusted.items():
            fingerprint = fingerprint_of(key)
            if fingerprint is None:
                raise ValidationError("trusted signers", f"{key!r} is not a key or fingerprint", expected=_EXPECTED)
            normalised[fingerprint] = name
        return SignerCheck(pinned, normalised, "(the tracer registry)", allow_unpinned)
    return SignerCheck(pinned, load_trusted_signers(trusted), str(Path(trusted).expanduser()), allow_unpinned)
