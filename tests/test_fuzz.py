"""Hostile input: the policy loader and the bundle reader give success or a tracekit error.

Never a traceback (any other exception), a hang, or a partial write. Inputs that once
broke something are kept under tests/corpus/ and replayed on every run. (The importers
are fuzzed in tests/importers/.)
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrage import encrypt, x25519

from tracekit.bundle.reader import open_bundle, read_bundle
from tracekit.crypto.header import HeaderProblem, StoreHeader
from tracekit.errors import TracekitError
from tracekit.redaction.policy import parse_policy

CORPUS = Path(__file__).parent / "corpus"
IDENTITY = x25519.Identity.generate()

toml_fragments = st.sampled_from(
    [
        'name = "x"',
        'name = ""',
        "name = 1",
        'kind = "records"',
        'kind = "statistics"',
        "kind = []",
        'recipient_roles = ["central-team"]',
        "recipient_roles = []",
        'recipient_roles = "central-team"',
        "role_category = true",
        'role_category = "yes"',
        "[fields]",
        'case = ["ref"]',
        'contact = ["ref", "name"]',
        "contact = 5",
        'case = ["ref", 3]',
        "[fields.case]",
        'statistics = ["cases_by_status"]',
        "statistics = [1]",
        'scope = "sensitive"',
        "[[fields]]",
        'name = "central-handover"',
        "\x00",
        '"""',
        "[",
        "= 1",
        "a.b.c = 1",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(toml_fragments, max_size=8).map("\n".join) | st.text(max_size=300))
def test_policy_loader_never_crashes(text):
    try:
        parse_policy(text, source="fuzz.toml")
    except TracekitError:
        pass


def _bundle_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return encrypt(buffer.getvalue(), [IDENTITY.to_public()])


member_names = st.sampled_from(
    [
        "manifest.json",
        "manifest.sig",
        "records/cases-00001.jsonl",
        "records/contacts-00001.csv",
        "redaction-report.json",
        "../escape",
        "/abs",
        "records/../../x",
        "a" * 300,
    ]
)
member_data = st.sampled_from(
    [
        b"",
        b"{}",
        b"not json",
        b'{"format": "tracekit-bundle", "version": 1}',
        b"ab" * 32,
        b"\xff\xfe",
        b'{"format": "tracekit-bundle", "version": 1, "tracer_key": {"public_key": "00"}, "files": []}',
        b'{"format": "tracekit-bundle", "version": 1, "tracer_key": {"public_key": "'
        + b"a" * 64
        + b'"}, "files": [{"path": 1}]}',
    ]
) | st.binary(max_size=200)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(member_names, member_data, max_size=5))
def test_bundle_reader_never_crashes_on_hostile_contents(tmp_path, members):
    path = tmp_path / "hostile.age"
    path.write_bytes(_bundle_bytes(members))
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    try:
        open_bundle(path, [IDENTITY], out)
    except TracekitError:
        pass
    assert not (tmp_path / "escape").exists() and not Path("/abs").exists()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_bundle_reader_never_crashes_on_random_bytes(tmp_path, data):
    path = tmp_path / "random.age"
    path.write_bytes(data)
    with pytest.raises(TracekitError):
        read_bundle(path, [IDENTITY])


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=0, max_size=32))
def test_store_header_parser_never_crashes(data):
    try:
        StoreHeader.parse(data)
    except HeaderProblem:
        pass


def _corpus(target: str) -> list[Path]:
    folder = CORPUS / target
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("case", _corpus("policy"), ids=lambda p: p.name)
def test_policy_corpus(case):
    try:
        parse_policy(case.read_text(encoding="utf-8", errors="replace"), source=case.name)
    except TracekitError:
        pass


@pytest.mark.parametrize("case", _corpus("bundle"), ids=lambda p: p.name)
def test_bundle_corpus(case, tmp_path):
    """Plain tar files; encrypted here so the reader gets past age."""
    path = tmp_path / "case.age"
    path.write_bytes(encrypt(case.read_bytes(), [IDENTITY.to_public()]))
    try:
        read_bundle(path, [IDENTITY])
    except TracekitError:
        pass


def test_corpus_exists():
    assert _corpus("policy") and _corpus("bundle"), "the regression corpus must not be empty"
    assert all(os.path.getsize(p) < 100_000 for p in _corpus("policy") + _corpus("bundle"))
