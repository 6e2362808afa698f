"""Fuzzing the bundle reader: mutated manifests and mutated tar headers, signed by the attacker.

Whatever the bundle holds, ``open`` ends in success or a tracekit error (never a crash,
exit 1), writes nothing outside ``--out``, and leaves in ``--out`` either nothing or
exactly one folder named by a valid bundle id. Bounded in time for the suite.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bundle import hostile
from tracekit.bundle.reader import open_bundle
from tracekit.errors import TracekitError

MEMBERS = {"records/cases-00001.jsonl": hostile.RECORD, "redaction-report.json": b"{}"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["../x", "/etc/x", "records/cases-00001.jsonl", "[/x]", "\x1b[2J", "1"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


@st.composite
def mutated_manifests(draw):
    manifest = copy.deepcopy(hostile.valid_manifest(MEMBERS))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(manifest) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = manifest
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(json_values)
        else:
            parent[path[-1]] = draw(json_values)
    return manifest


def _assert_contained(tmp_path: Path, before: set[str]) -> None:
    outside = {
        str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if "out" not in p.relative_to(tmp_path).parts[:1]
    }
    assert outside == before
    out = tmp_path / "out"
    if out.exists():
        entries = list(out.iterdir())
        assert len(entries) <= 1
        if entries:
            assert re.fullmatch(r"[0-9a-f]{32}", entries[0].name) and entries[0].is_dir()


def _open(tmp_path: Path, data: bytes) -> None:
    import shutil

    shutil.rmtree(tmp_path / "out", ignore_errors=True)
    path = tmp_path / "fuzz.tar.age"
    path.write_bytes(data)
    before = {
        str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if "out" not in p.relative_to(tmp_path).parts[:1]
    }
    try:
        open_bundle(path, [hostile.IDENTITY], tmp_path / "out")
    except TracekitError:
        pass
    _assert_contained(tmp_path, before)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated_manifests())
def test_mutated_manifests_never_crash_or_escape(tmp_path, manifest):
    _open(tmp_path, hostile.bundle(MEMBERS, manifest=json.dumps(manifest).encode()))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=6), st.booleans())
def test_mutated_tar_headers_never_crash_or_escape(tmp_path, changes, fix_checksum):
    tar = bytearray(hostile.tar_bytes(hostile.signed_members(MEMBERS)))
    header_starts = [i for i in range(0, len(tar), 512) if tar[i + 257 : i + 263] == b"ustar\0"]
    for offset, value in changes:
        start = header_starts[(offset // 512) % len(header_starts)]
        tar[start + offset % 512] = value
        if fix_checksum:  # so the mutation gets past the checksum and reaches the parser
            block = tar[start : start + 512]
            block[148:156] = b" " * 8
            tar[start + 148 : start + 156] = f"{sum(block):06o}\0 ".encode()
    _open(tmp_path, hostile.seal(bytes(tar)))
