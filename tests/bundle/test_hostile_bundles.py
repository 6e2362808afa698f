"""A bundle is attacker-controlled until its signer is pinned and checked (issue 12, items 1-5 and 11).

Every bundle here is signed by a key the attacker holds (tests/bundle/hostile.py), so
each one gets as far into the reader as a real attack would. The rules checked:
nothing is written outside ``--out`` (or anywhere, until the bundle has verified),
no input makes the reader use more than the bundle's own size, no manifest crashes
it (exit 19, never 1), and nothing from the bundle reaches the terminal raw.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.bundle import hostile
from tracekit.bundle import reader
from tracekit.bundle.reader import open_bundle, read_bundle
from tracekit.errors import BundleInvalid, ExitCode, ValidationError


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "central.key"
    path.write_text(f"{hostile.IDENTITY}\n")
    os.chmod(path, 0o600)
    return path


def _cli(*args: str):
    from tracekit.cli import app

    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _write(tmp_path: Path, data: bytes, name: str = "hostile.tar.age") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- item 1: bundle_id picks a path ---------------------------------------------------------


@pytest.mark.parametrize("bundle_id", ["../../x", "../escape", "ABSOLUTE", "a/b", ".ssh", "", "0" * 31 + "/"])
def test_bundle_id_never_names_a_path(tmp_path, key_file, bundle_id):
    manifest = hostile.valid_manifest({"records/cases-00001.jsonl": hostile.RECORD})
    manifest["bundle_id"] = str(tmp_path / "absolute-target") if bundle_id == "ABSOLUTE" else bundle_id
    path = _write(tmp_path, hostile.bundle(manifest=manifest))
    work = tmp_path / "work"
    (work / "out").mkdir(parents=True)
    before = _tree(tmp_path)
    result = _cli("bundle", "open", str(path), "-i", str(key_file), "--out", str(work / "out"))
    assert result.exit_code == ExitCode.BUNDLE_INVALID, result.output
    assert "bundle_id" in result.stderr
    assert _tree(tmp_path) == before


def test_a_valid_bundle_opens_into_its_id_folder_only(tmp_path, key_file):
    path = _write(tmp_path, hostile.bundle())
    result = _cli("bundle", "open", str(path), "-i", str(key_file), "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert _tree(tmp_path / "out") == {
        "0123456789abcdef0123456789abcdef",
        "0123456789abcdef0123456789abcdef/records",
        "0123456789abcdef0123456789abcdef/records/cases-00001.jsonl",
        "0123456789abcdef0123456789abcdef/manifest.json",
        "0123456789abcdef0123456789abcdef/manifest.sig",
    }
    assert "not checked" in result.output  # no --signer: said out loud


# --- item 2: sizes -----------------------------------------------------------------------------


def test_a_sparse_member_is_refused_before_any_data_is_read(tmp_path, key_file):
    """A GNU sparse header of 5 GiB in a bundle of a few KB: refused at its header."""
    tar = hostile.raw_header("records/cases-00001.jsonl", 5 * 1024**3, b"S") + bytes(512 * 4)
    path = _write(tmp_path, hostile.seal(tar))
    started = time.monotonic()
    with pytest.raises(BundleInvalid, match="GNU sparse file"):
        open_bundle(path, [hostile.IDENTITY], tmp_path / "out")
    assert time.monotonic() - started < 5
    assert _tree(tmp_path / "out") == set()


def test_a_member_over_the_size_cap_is_refused_at_its_header(tmp_path):
    tar = hostile.raw_header("records/cases-00001.jsonl", 5 * 1024**3) + b"x" * 1024
    path = _write(tmp_path, hostile.seal(tar))
    with pytest.raises(BundleInvalid, match="at most 4,294,967,296 are allowed"):
        open_bundle(path, [hostile.IDENTITY], tmp_path / "out")
    assert _tree(tmp_path / "out") == set()


def test_a_header_claiming_more_than_the_bundle_holds_is_truncation(tmp_path):
    tar = hostile.raw_header("records/cases-00001.jsonl", 3 * 1024**3) + b"x" * 1024
    path = _write(tmp_path, hostile.seal(tar))
    with pytest.raises(BundleInvalid, match="truncated"):
        open_bundle(path, [hostile.IDENTITY], tmp_path / "out")
    assert _tree(tmp_path / "out") == set()


def test_nothing_is_written_for_a_bundle_from_the_wrong_signer(tmp_path, key_file, monkeypatch):
    """Before: about 4 GB were extracted before the signer check said no."""
    members = {"records/cases-00001.jsonl": hostile.RECORD * 20_000}
    path = _write(tmp_path, hostile.bundle(members))
    created: list[str] = []
    real_create = reader._ExtractedMember
    monkeypatch.setattr(reader, "_ExtractedMember", lambda d, n: created.append(n) or real_create(d, n))
    result = _cli(
        "bundle", "open", str(path), "-i", str(key_file), "--out", str(tmp_path / "out"), "--signer", "ab" * 32
    )
    assert result.exit_code == ExitCode.BUNDLE_INVALID
    assert "signed by a different key" in result.stderr
    assert created == [] and _tree(tmp_path / "out") == set()


def test_a_member_bigger_than_its_manifest_says_is_caught_while_streaming(tmp_path, monkeypatch):
    """The second pass checks each member against the verified manifest as it streams."""
    small = hostile.bundle({"records/cases-00001.jsonl": hostile.RECORD})
    large_members = {"records/cases-00001.jsonl": hostile.RECORD * 1000}
    large = hostile.seal(
        hostile.tar_bytes(
            hostile.signed_members(large_members, hostile.valid_manifest({"records/cases-00001.jsonl": hostile.RECORD}))
        )
    )
    path = _write(tmp_path, small)
    real_scan = reader._scan
    calls = []

    def swap_between_passes(p, identities, **kwargs):
        calls.append(kwargs)
        if kwargs.get("expected") is not None:
            p.write_bytes(large)  # the file changes after the first pass verified it
        return real_scan(p, identities, **kwargs)

    monkeypatch.setattr(reader, "_scan", swap_between_passes)
    with pytest.raises(BundleInvalid, match="bytes but its manifest says"):
        open_bundle(path, [hostile.IDENTITY], tmp_path / "out")
    assert len(calls) == 2 and _tree(tmp_path / "out") == set()


def test_data_after_the_end_of_the_archive_is_refused(tmp_path):
    tar = hostile.tar_bytes(hostile.signed_members({"records/cases-00001.jsonl": hostile.RECORD}))
    path = _write(tmp_path, hostile.seal(tar + b"\0" * 512 * 2 + b"smuggled" + bytes(1 << 17)))
    with pytest.raises(BundleInvalid, match="after the end of its archive"):
        read_bundle(path, [hostile.IDENTITY])


# --- item 3: malformed manifests --------------------------------------------------------------


def _mutate(change):
    manifest = hostile.valid_manifest({"records/cases-00001.jsonl": hostile.RECORD})
    return change(manifest) or manifest


MALFORMED = {
    "files-ints": lambda m: m.update(files=[1]),
    "files-null": lambda m: m.update(files=None),
    "files-dict": lambda m: m.update(files={"a": 1}),
    "files-no-path": lambda m: m["files"][0].pop("path"),
    "record-counts-list": lambda m: m.update(record_counts=[1, 2]),
    "bundle-id-missing": lambda m: m.pop("bundle_id"),
    "bundle-id-int": lambda m: m.update(bundle_id=5),
    "recipient-string": lambda m: m.update(recipient="PHE"),
    "changes-null": lambda m: m.update(changes=None),
    "created-at-missing": lambda m: m.pop("created_at"),
    "policy-missing": lambda m: m.pop("policy"),
    "public-key-int": lambda m: m["tracer_key"].update(public_key=5),
    "count-negative": lambda m: m["record_counts"].update(cases=-1),
    "count-bool": lambda m: m["record_counts"].update(cases=True),
    "unknown-key": lambda m: m.update(surprise=1),
    "created-at-not-a-time": lambda m: m.update(created_at="yesterday"),
    "hash-uppercase": lambda m: m["files"][0].update(sha256="A" * 64),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
@pytest.mark.parametrize("command", ["verify", "inspect", "open"])
def test_malformed_manifests_are_exit_19_with_the_field_named(tmp_path, key_file, name, command):
    path = _write(tmp_path, hostile.bundle(manifest=_mutate(MALFORMED[name])))
    extra = ["--out", str(tmp_path / "out")] if command == "open" else []
    result = _cli("bundle", command, str(path), "-i", str(key_file), *extra)
    assert result.exit_code == ExitCode.BUNDLE_INVALID, (result.output, result.stderr)
    assert "manifest" in result.stderr
    assert not (tmp_path / "out").exists() or _tree(tmp_path / "out") == set()


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"null",
    ],
)
def test_unparseable_manifests_are_exit_19(tmp_path, key_file, body):
    path = _write(tmp_path, hostile.bundle(manifest=body))
    result = _cli("bundle", "verify", str(path), "-i", str(key_file), "--signer", hostile.SIGNER_PUBLIC)
    assert result.exit_code == ExitCode.BUNDLE_INVALID, result.stderr
    assert "manifest" in result.stderr


def test_a_duplicated_manifest_key_is_refused(tmp_path):
    manifest = json.dumps(hostile.valid_manifest({"records/cases-00001.jsonl": hostile.RECORD}))
    body = ('{"bundle_id": "ffffffffffffffffffffffffffffffff", ' + manifest[1:]).encode()
    path = _write(tmp_path, hostile.bundle(manifest=body))
    with pytest.raises(BundleInvalid, match="names the key 'bundle_id' twice"):
        read_bundle(path, [hostile.IDENTITY])


def test_a_fingerprint_that_is_not_the_key_s_is_refused(tmp_path):
    manifest = _mutate(lambda m: m["tracer_key"].update(fingerprint="0000:" * 7 + "0000"))
    with pytest.raises(BundleInvalid, match="fingerprint does not belong"):
        read_bundle(_write(tmp_path, hostile.bundle(manifest=manifest)), [hostile.IDENTITY])


# --- item 4: terminal injection -----------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("bundle_id", "\x1b[2J\x1b[Hsigner verified"),
        ("recipient", "PHE\x1b[2J"),
        ("recipient", "PHE\u202eevil"),
        ("policy", "central\rsigned by: trusted"),
    ],
)
def test_control_sequences_in_printed_fields_are_refused(tmp_path, key_file, field, value):
    def change(m):
        if field == "recipient":
            m["recipient"]["name"] = value
        elif field == "policy":
            m["policy"]["name"] = value
        else:
            m[field] = value

    path = _write(tmp_path, hostile.bundle(manifest=_mutate(change)))
    result = _cli("bundle", "verify", str(path), "-i", str(key_file))
    assert result.exit_code == ExitCode.BUNDLE_INVALID
    assert "\x1b" not in result.output + result.stderr and "\u202e" not in result.output + result.stderr


def test_rich_markup_in_bundle_fields_is_shown_as_typed(tmp_path, key_file):
    def change(m):
        m["policy"]["name"] = "[/x][bold red]central"
        m["policy"]["definition"]["name"] = "[/x]"

    path = _write(tmp_path, hostile.bundle(manifest=_mutate(change)))
    result = _cli("bundle", "verify", str(path), "-i", str(key_file))
    assert result.exit_code == 0, result.output
    assert "[/x][bold red]central" in result.output


def test_markup_in_a_member_name_cannot_reach_the_terminal(tmp_path, key_file):
    members = {"records/[/x]-00001.jsonl": hostile.RECORD}
    path = _write(tmp_path, hostile.seal(hostile.tar_bytes(hostile.signed_members(members))))
    result = _cli("bundle", "inspect", str(path), "-i", str(key_file))
    assert result.exit_code == ExitCode.BUNDLE_INVALID
    assert "'records/[/x]-00001.jsonl'" in result.stderr


# --- item 5: nested member names ----------------------------------------------------------------


def test_a_file_and_a_folder_of_the_same_name_are_refused_by_verify_too(tmp_path, key_file):
    members = {"records/a": b"x", "records/a/b": b"y"}
    path = _write(tmp_path, hostile.seal(hostile.tar_bytes(hostile.signed_members(members))))
    for command in ("verify", "open"):
        extra = ["--out", str(tmp_path / "out")] if command == "open" else []
        result = _cli("bundle", command, str(path), "-i", str(key_file), *extra)
        assert result.exit_code == ExitCode.BUNDLE_INVALID
        assert "never writes: 'records/a'" in result.stderr


@pytest.mark.parametrize(
    "name", ["records/cases-00001.jsonl/x", "records/../cases-00001.jsonl", "./manifest.json", "referrals/R-UUUUUU.age"]
)
def test_only_names_tracekit_writes_are_accepted(tmp_path, name):
    path = _write(tmp_path, hostile.seal(hostile.tar_bytes(hostile.signed_members({name: b"{}\n"}))))
    with pytest.raises(BundleInvalid, match="never writes"):
        read_bundle(path, [hostile.IDENTITY])


@pytest.mark.parametrize(
    "typeflag,kind",
    [(b"2", "symbolic link"), (b"1", "hard link"), (b"5", "directory"), (b"x", "pax"), (b"L", "GNU long name")],
)
def test_only_regular_files_are_accepted(tmp_path, typeflag, kind):
    path = _write(tmp_path, hostile.seal(hostile.raw_header("records/cases-00001.jsonl", 0, typeflag) + bytes(1024)))
    with pytest.raises(BundleInvalid, match=kind):
        read_bundle(path, [hostile.IDENTITY])


# --- item 11: messages that name the real problem -----------------------------------------------


def test_an_empty_file_is_called_empty(tmp_path, key_file):
    result = _cli("bundle", "verify", str(_write(tmp_path, b"")), "-i", str(key_file))
    assert result.exit_code == ExitCode.BUNDLE_INVALID and "is empty" in result.stderr


def test_a_file_that_is_not_age_is_called_that(tmp_path, key_file):
    result = _cli("bundle", "verify", str(_write(tmp_path, b"PK\x03\x04 a zip file")), "-i", str(key_file))
    assert result.exit_code == ExitCode.BUNDLE_INVALID and "not an age-encrypted file" in result.stderr
    assert "altered" not in result.stderr


def test_a_version_given_as_text_is_called_text(tmp_path):
    manifest = _mutate(lambda m: m.update(version="1"))
    with pytest.raises(BundleInvalid, match="version is a JSON string; it must be a whole number"):
        read_bundle(_write(tmp_path, hostile.bundle(manifest=manifest)), [hostile.IDENTITY])
    manifest = _mutate(lambda m: m.update(version=3))
    with pytest.raises(BundleInvalid, match="version 3 is not supported .* reads versions 1, 2"):
        read_bundle(_write(tmp_path, hostile.bundle(manifest=manifest)), [hostile.IDENTITY])
    for readable in (1, 2):  # 2 changed only the CSV members, which the reader passes through
        manifest = _mutate(lambda m: m.update(version=readable))
        assert (
            read_bundle(_write(tmp_path, hostile.bundle(manifest=manifest)), [hostile.IDENTITY]).model.version
            == readable
        )


# --- files named from outside ---------------------------------------------------------------------


def test_an_identity_that_is_a_directory_is_a_validation_error(tmp_path):
    path = _write(tmp_path, hostile.bundle())
    result = _cli("bundle", "verify", str(path), "-i", str(tmp_path))
    assert result.exit_code == ExitCode.VALIDATION and "is a directory" in result.stderr


def test_a_fifo_bundle_or_identity_does_not_hang(tmp_path, key_file):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(ValidationError, match="FIFO"):
        read_bundle(fifo, [hostile.IDENTITY])
    with pytest.raises(ValidationError, match="FIFO"):
        reader.load_identities(fifo)
    assert time.monotonic() - started < 5


# --- --signer takes what people are given ---------------------------------------------------------


def test_signer_as_key_fingerprint_or_file(tmp_path, key_file):
    from tracekit.crypto import signing

    path = _write(tmp_path, hostile.bundle())
    fingerprint = signing.fingerprint(hostile.SIGNER_PUBLIC)
    pin_file = tmp_path / "tracer.pub"
    pin_file.write_text(fingerprint + "\n")
    for pin in (hostile.SIGNER_PUBLIC, fingerprint, fingerprint.replace(":", ""), fingerprint.upper(), str(pin_file)):
        result = _cli("bundle", "verify", str(path), "-i", str(key_file), "--signer", pin)
        assert result.exit_code == 0, (pin, result.stderr)
        assert "matches --signer" in result.output
    wrong = _cli("bundle", "verify", str(path), "-i", str(key_file), "--signer", "0000:" * 7 + "0000")
    assert wrong.exit_code == ExitCode.BUNDLE_INVALID
    nonsense = _cli("bundle", "verify", str(path), "-i", str(key_file), "--signer", "not-a-key")
    assert nonsense.exit_code == ExitCode.VALIDATION


def test_stopping_early_on_a_large_bundle_exits_19_in_a_real_process(tmp_path, key_file):
    """The decrypting thread is still writing when the reader stops at a bad first member:
    closing the pipe under it used to end the CLI by SIGPIPE (exit -13), not exit 19."""
    import subprocess
    import sys

    members = [("records/unexpected.jsonl", b"x" * (4 << 20)), ("records/cases-00001.jsonl", hostile.RECORD * 50_000)]
    path = _write(tmp_path, hostile.seal(hostile.tar_bytes(members)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEKIT_")}
    for command in ("verify", "open"):
        extra = ["--out", str(tmp_path / "out")] if command == "open" else []
        done = subprocess.run(
            [sys.executable, "-m", "tracekit", "bundle", command, str(path), "-i", str(key_file), *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == ExitCode.BUNDLE_INVALID, (done.returncode, done.stderr)
        assert "never writes: 'records/unexpected.jsonl'" in done.stderr
