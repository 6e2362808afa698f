"""Whose signature a receiving team accepts (issue 15, item 1): --signer takes what tracers
hand out (the key or its fingerprint), an unpinned bundle is said out loud, and a trusted
signers file refuses everyone else. One module decides: tracekit.bundle.signers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.bundle import hostile
from tracekit.bundle.signers import UntrustedSigner, load_trusted_signers, resolve_signer
from tracekit.crypto import signing
from tracekit.errors import ExitCode, ValidationError

FINGERPRINT = signing.fingerprint(hostile.SIGNER_PUBLIC)
OTHER = "0123:4567:89ab:cdef:0123:4567:89ab:cdef"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "central.key"
    path.write_text(f"{hostile.IDENTITY}\n")
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def bundle_file(tmp_path: Path) -> Path:
    path = tmp_path / "from-alice.tar.age"
    path.write_bytes(hostile.bundle())
    return path


def _trusted(tmp_path: Path, text: str, mode: int = 0o644) -> Path:
    path = tmp_path / "trusted-signers"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def _cli(*args: str, env: dict[str, str] | None = None):
    from tracekit.cli import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False, env=env)


# --- the one decision ------------------------------------------------------------------------


def test_trusted_signers_file_accepts_its_tracers_and_names_them(tmp_path):
    path = _trusted(tmp_path, f"# our tracers\n\n{FINGERPRINT}  Alice Tracer (Leeds)\n{OTHER} Bob\n")
    check = resolve_signer(None, trusted=path, allow_unpinned=False)
    signer = check.accept(FINGERPRINT)
    assert (signer.fingerprint, signer.pinned, signer.pinned_by, signer.name) == (
        FINGERPRINT,
        True,
        "trusted signers",
        "Alice Tracer (Leeds)",
    )
    with pytest.raises(UntrustedSigner) as refused:
        check.accept("ffff:" * 7 + "ffff")
    assert "ffff:ffff" in str(refused.value) and str(path) in str(refused.value)
    assert "ffff:" * 7 + "ffff Their Name" in (refused.value.hint or "")
    assert refused.value.exit_code == ExitCode.BUNDLE_INVALID and refused.value.code == "untrusted-signer"


def test_a_public_key_in_the_file_is_its_fingerprint(tmp_path):
    path = _trusted(tmp_path, f"{hostile.SIGNER_PUBLIC.upper()}\n")
    assert load_trusted_signers(path) == {FINGERPRINT: ""}


def test_unpinned_is_accepted_only_when_allowed(tmp_path):
    assert resolve_signer(None).accept(FINGERPRINT).pinned is False
    with pytest.raises(UntrustedSigner) as refused:
        resolve_signer([], allow_unpinned=False).accept(FINGERPRINT)
    assert FINGERPRINT in str(refused.value) and f"--signer {FINGERPRINT}" in (refused.value.hint or "")


def test_signer_and_trusted_file_must_both_agree(tmp_path):
    path = _trusted(tmp_path, f"{FINGERPRINT} Alice\n{OTHER} Bob\n")
    check = resolve_signer([OTHER], trusted=path)
    with pytest.raises(UntrustedSigner, match="signed by a different key"):
        check.accept(FINGERPRINT)  # trusted, but this run pinned Bob
    assert check.accept(OTHER).pinned_by == "--signer and trusted signers"
    lone = resolve_signer([FINGERPRINT], trusted=_trusted(tmp_path, f"{OTHER} Bob\n"))
    with pytest.raises(UntrustedSigner, match="not in your trusted signers"):
        lone.accept(FINGERPRINT)  # pinned, but not one of the team's tracers


def test_several_signers_accept_any_of_them():
    check = resolve_signer([FINGERPRINT, OTHER.replace(":", "")])
    assert check.accept(FINGERPRINT).pinned and check.accept(OTHER).pinned


def test_a_registry_mapping_is_a_trusted_list():
    """How central ingest passes its tracer registry: fingerprint or key -> name."""
    check = resolve_signer(None, trusted={hostile.SIGNER_PUBLIC: "Alice"}, allow_unpinned=False)
    assert check.accept(FINGERPRINT).name == "Alice"
    with pytest.raises(UntrustedSigner):
        check.accept(OTHER)


@pytest.mark.parametrize(
    ("text", "mode", "message"),
    [
        (f"{FINGERPRINT} Alice\n", 0o666, "may be written by others"),
        (f"{FINGERPRINT} Alice\n", 0o620, "may be written by others"),
        ("# nobody yet\n\n", 0o600, "lists no signers"),
        (f"{FINGERPRINT} Alice\nnot-a-key Mallory\n", 0o600, "line 2 does not start with a key"),
        (f"{FINGERPRINT} Alice\n{FINGERPRINT} Mallory\n", 0o600, "line 2 lists"),
        (f"{FINGERPRINT} Al\x1b[2Jice\n", 0o600, "line 1: the name has control characters"),
    ],
)
def test_a_bad_trusted_signers_file_is_refused_naming_the_problem(tmp_path, text, mode, message):
    path = _trusted(tmp_path, text, mode)
    with pytest.raises(ValidationError, match=message):
        resolve_signer(None, trusted=path)


# --- the commands ------------------------------------------------------------------------------


def test_the_fingerprint_bundle_verify_prints_pins_the_signer(bundle_file, key_file):
    """The value bundle verify prints is one --signer takes (issue 12 made it so; this keeps the round trip)."""
    first = _cli("--json", "bundle", "verify", str(bundle_file), "-i", str(key_file))
    printed = json.loads(first.stdout)["signer_fingerprint"]
    assert printed == FINGERPRINT and json.loads(first.stdout)["signer_checked"] is False
    for command in ("verify", "inspect"):
        pinned = _cli("bundle", command, str(bundle_file), "-i", str(key_file), "--signer", printed)
        assert pinned.exit_code == 0, pinned.stderr
        assert f"{printed} (matches --signer)" in pinned.stdout and "warning" not in pinned.stderr


def test_opening_unpinned_warns_naming_the_fingerprint_and_how_to_pin(bundle_file, key_file, tmp_path):
    for extra in ([], ["--quiet"], ["--json"]):  # a warning: never hidden
        result = _cli(
            *extra,
            "bundle",
            "open",
            str(bundle_file),
            "-i",
            str(key_file),
            "--out",
            str(tmp_path / f"out{len(extra)}{extra}"),
        )
        assert result.exit_code == 0, result.stderr
        warning = " ".join(result.stderr.split())
        assert warning.startswith("warning: signer not checked"), warning
        assert FINGERPRINT in warning and f"--signer {FINGERPRINT}" in warning and "--trusted-signers" in warning


def test_trusted_signers_file_on_the_commands(bundle_file, key_file, tmp_path):
    listed = _trusted(tmp_path, f"{FINGERPRINT} Alice Tracer\n")
    result = _cli("bundle", "verify", str(bundle_file), "-i", str(key_file), "--trusted-signers", str(listed))
    assert result.exit_code == 0, result.stderr
    assert "in your trusted signers as Alice Tracer" in result.stdout and "warning" not in result.stderr

    others = _trusted(tmp_path, f"{OTHER} Bob\n")
    out = tmp_path / "out"
    refused = _cli(
        "bundle", "open", str(bundle_file), "-i", str(key_file), "--out", str(out), "--trusted-signers", str(others)
    )
    assert refused.exit_code == ExitCode.BUNDLE_INVALID
    assert FINGERPRINT in refused.stderr and "not in your trusted signers" in refused.stderr
    assert not out.exists() or not any(out.iterdir())  # nothing opened

    as_json = _cli(
        "--json", "bundle", "inspect", str(bundle_file), "-i", str(key_file), "--trusted-signers", str(others)
    )
    assert json.loads(as_json.stderr)["error"]["code"] == "untrusted-signer"


def test_trusted_signers_from_the_environment(bundle_file, key_file, tmp_path):
    others = _trusted(tmp_path, f"{OTHER} Bob\n")
    refused = _cli(
        "bundle", "verify", str(bundle_file), "-i", str(key_file), env={"TRACEKIT_TRUSTED_SIGNERS": str(others)}
    )
    assert refused.exit_code == ExitCode.BUNDLE_INVALID and "not in your trusted signers" in refused.stderr
    listed = _trusted(tmp_path, f"{FINGERPRINT} Alice\n")
    accepted = _cli(
        "--json",
        "bundle",
        "verify",
        str(bundle_file),
        "-i",
        str(key_file),
        env={"TRACEKIT_TRUSTED_SIGNERS": str(listed)},
    )
    data = json.loads(accepted.stdout)
    assert (data["signer_checked"], data["signer_pinned_by"], data["signer_name"]) == (True, "trusted signers", "Alice")


def test_a_bad_trusted_signers_file_fails_before_the_bundle_is_read(bundle_file, key_file, tmp_path):
    loose = _trusted(tmp_path, f"{FINGERPRINT} Alice\n", 0o666)
    result = _cli("bundle", "verify", str(bundle_file), "-i", str(key_file), "--trusted-signers", str(loose))
    assert result.exit_code == ExitCode.VALIDATION and "may be written by others" in result.stderr
