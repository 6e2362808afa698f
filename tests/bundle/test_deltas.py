"""Deltas never link: a person handed over in clear and marked later (issue 13, item 6).

The central team keeps every bundle. Whatever a later bundle says about a withheld
record must not be joinable to what an earlier bundle said about it in clear, or the
central team learns "this known person is now in a sensitive role" (and, with a policy
that carries the role category, which role). Marking such a person tells the tracer
which bundles had them and writes a recall request that only the vetted team receives.
"""

from __future__ import annotations

import io
import json
import tarfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pyrage import decrypt, x25519

from tests.conftest import PASSPHRASE
from tracekit.bundle.reader import open_bundle
from tracekit.bundle.writer import export_handover
from tracekit.records import Casebook, PersonInput
from tracekit.records.sensitive import SensitiveRoles
from tracekit.redaction.pseudonym import new_key
from tracekit.store import open_store

#: Fields whose values identify a record or person across bundles (not dates of illness).
STABLE_ID_FIELDS = ("ref", "person", "pseudonym", "case", "source_exposure", "updated_at")

#: A custom central policy asking for everything that could link: the pseudonym, the
#: person's reference, the role category, the time of the last change.
LINKING_POLICY = """
name = "linking"
role_category = true
[fields]
case = ["ref", "person", "pseudonym", "name", "test_date", "symptom_onset", "status", "source_exposure", "updated_at"]
contact = ["ref", "case", "person", "pseudonym", "name", "last_exposure", "trace_status", "updated_at"]
"""


def members(path: Path, identity: Any) -> dict[str, bytes]:
    plain = decrypt(path.read_bytes(), [identity])
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def records(content: dict[str, bytes]) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for name, data in sorted(content.items())
        if name.startswith("records/") and name.endswith(".jsonl")
        for line in data.splitlines()
    ]


def strings_in(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(strings_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(strings_in(v) for v in value)) if value else set()
    return set()


@pytest.fixture
def world(store, tmp_path):
    central, vetted = x25519.Identity.generate(), x25519.Identity.generate()
    book = Casebook(store, today=date(2020, 11, 1))
    roles = SensitiveRoles(book)
    store.conn.execute("INSERT INTO settings(key, value) VALUES('pseudonym.key', ?)", (new_key().hex(),))
    soon_marked = book.add_case(
        person=PersonInput(name="Quintessa Zarkovian", nhs_number="9990000018", date_of_birth="1980-02-03"),
        test_date="2020-10-20",
        asymptomatic=True,
    )
    colleague, _ = book.add_contact(
        soon_marked.ref,
        person=PersonInput(name="Bartholomew Yelverton", nhs_number="9990000026"),
        last_exposure="2020-10-19",
        setting="workplace",
    )
    ordinary = book.add_case(person=PersonInput(name="Olwen Ordinary"), test_date="2020-10-21", asymptomatic=True)
    as_contact, _ = book.add_contact(
        ordinary.ref,
        person_ref=soon_marked.person.ref,
        last_exposure="2020-10-20",
        setting="social",
    )
    book.add_contact(
        ordinary.ref, person=PersonInput(name="Ned Normal"), last_exposure="2020-10-20", setting="household"
    )
    roles.add_recipient("PHE", str(central.to_public()), "central-team")
    roles.add_recipient("Vetted", str(vetted.to_public()), "vetted-team")
    policy = tmp_path / "linking.toml"
    policy.write_text(LINKING_POLICY)
    out = tmp_path / "out"
    return {
        "store": store,
        "book": book,
        "roles": roles,
        "central": central,
        "vetted": vetted,
        "out": out,
        "policies": {"central-handover": "central-handover", "linking": str(policy)},
        "person": soon_marked.person.ref,
        "withheld_later": {soon_marked.ref, colleague.ref, as_contact.ref},
    }


def _touch(store: Any, refs: set[str]) -> None:
    """Change these records after the first bundle, so a delta carries them again."""
    later = "2999-01-01T00:00:00+00:00"
    for table in ("cases", "exposures"):
        store.conn.execute(
            f"UPDATE {table} SET updated_at = ? WHERE ref IN ({','.join('?' * len(refs))})", (later, *refs)
        )


@pytest.mark.parametrize("policy", ["central-handover", "linking"])
def test_stubs_of_a_person_marked_after_a_clear_handover_share_no_id_with_it(world, policy):
    chosen = world["policies"][policy]
    first = export_handover(world["store"], "PHE", policy_name=chosen, out_dir=world["out"], all_records=True)
    clear = [r for r in records(members(first.path, world["central"])) if not r["withheld"]]
    assert world["withheld_later"] <= {r["ref"] for r in clear}  # all three went in clear
    earlier_ids = {str(r[f]) for r in clear for f in STABLE_ID_FIELDS if r.get(f) and not isinstance(r[f], dict)}

    world["roles"].mark(world["person"], "counter-terrorism", "operational safety")
    _touch(world["store"], world["withheld_later"])
    second = export_handover(world["store"], "PHE", policy_name=chosen, out_dir=world["out"], since_last=True)
    content = members(second.path, world["central"])
    stubs = [r for r in records(content) if r["withheld"]]
    assert len(stubs) == 3 and second.changes_since == first.changes_until
    for stub in stubs:
        assert not strings_in(stub) & earlier_ids, stub
    report = json.loads(content["redaction-report.json"])
    assert not strings_in(report) & earlier_ids
    if policy == "linking":
        assert {s.get("role") for s in stubs} >= {"counter-terrorism"}  # the role is there, unlinkable
    # A contact stub of the marked case names the case's stub of this bundle, no C- reference.
    case_stub = next(s for s in stubs if "test_date" in s)
    assert any(s.get("case") == case_stub["ref"] for s in stubs if s is not case_stub)


def test_stub_ids_are_fresh_in_every_bundle(world):
    world["roles"].mark(world["person"], "victim", "refuge")
    one, two = (export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True) for _ in range(2))
    ids = [{r["ref"] for r in records(members(b.path, world["central"])) if r["withheld"]} for b in (one, two)]
    assert len(ids[0]) == 3 and not ids[0] & ids[1]


def test_stubs_follow_the_ordinary_records_so_their_place_says_nothing(world):
    world["roles"].mark(world["person"], "victim", "refuge")
    bundle = export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True)
    content = members(bundle.path, world["central"])
    for name in ("records/cases-00001.jsonl", "records/contacts-00001.jsonl"):
        withheld = [bool(json.loads(line)["withheld"]) for line in content[name].splitlines()]
        assert withheld == sorted(withheld) and any(withheld)  # every stub after every ordinary record


def test_marking_names_the_bundles_that_carried_the_person_in_clear(world):
    first = export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True)
    stats = export_handover(world["store"], "PHE", policy_name="statistics", out_dir=world["out"], all_records=True)
    others = {ref for (ref,) in world["store"].query("SELECT ref FROM exposures")} - world["withheld_later"]
    for table in ("cases", "exposures", "people"):  # past the boundary second of the first bundle
        world["store"].conn.execute(f"UPDATE {table} SET updated_at = '2000-01-01T00:00:00+00:00'")
    _touch(world["store"], others)  # a delta with records on either side of theirs, not theirs
    delta = export_handover(world["store"], "PHE", out_dir=world["out"], since_last=True)
    assert delta.record_counts["contacts"] == len(others) and delta.record_counts["cases"] == 0
    mark = world["roles"].mark(world["person"], "protected-witness", "court order")
    assert [h.bundle_id for h in mark.handed_over_in_clear] == [first.bundle_id]  # not the statistics bundle
    assert set(mark.handed_over_in_clear[0].refs) == world["withheld_later"]  # their case, as contact, their contact
    assert mark.handed_over_in_clear[0].file_name == first.path.name and mark.recall
    assert stats.bundle_id not in json.dumps(mark.to_json())


def test_marking_someone_never_handed_over_writes_no_recall(world):
    mark = world["roles"].mark(world["person"], "victim", "refuge")
    assert mark.handed_over_in_clear == [] and mark.recall is None
    assert world["store"].query("SELECT count(*) FROM recalls") == [(0,)]


def test_the_recall_goes_in_the_next_vetted_bundle_and_never_a_central_one(world, tmp_path):
    first = export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True)
    mark = world["roles"].mark(world["person"], "undercover-officer", "operational safety")
    _touch(world["store"], world["withheld_later"])
    central = export_handover(world["store"], "PHE", out_dir=world["out"], since_last=True)
    central_content = members(central.path, world["central"])
    assert not [n for n in central_content if n.startswith("recalls/")]
    assert mark.recall.encode() not in b"".join(central_content.values())
    assert first.bundle_id.encode() not in b"".join(central_content.values())  # nothing points back

    vetted = export_handover(world["store"], "Vetted", out_dir=world["out"], since_last=True)
    content = members(vetted.path, world["vetted"])
    recall = json.loads(content[f"recalls/{mark.recall}.json"])
    assert recall["person"] == world["person"] and recall["role"] == "undercover-officer"
    assert [b["bundle_id"] for b in recall["bundles"]] == [first.bundle_id]
    assert set(recall["bundles"][0]["records"]) == world["withheld_later"]
    assert json.loads(content["manifest.json"])["record_counts"]["recalls"] == 1
    # the reader accepts the member (it refuses names it does not know)
    _, opened = open_bundle(vetted.path, [world["vetted"]], tmp_path / "opened")
    assert (opened / f"recalls/{mark.recall}.json").exists()
    # the next vetted delta does not repeat it (once it is past the inclusive boundary second)
    world["store"].conn.execute("UPDATE recalls SET created_at = '2000-01-01T00:00:00+00:00'")
    again = export_handover(world["store"], "Vetted", out_dir=world["out"], since_last=True)
    assert not [n for n in members(again.path, world["vetted"]) if n.startswith("recalls/")]


def test_role_mark_tells_the_tracer_which_bundles_had_the_person(world, request):
    first = export_handover(world["store"], "PHE", out_dir=world["out"], all_records=True)
    person = world["person"]
    cli = request.getfixturevalue("cli_with_store")  # closes the store for the CLI to open
    result = cli("role", "mark", person, "--role", "victim", "--reason", "refuge")
    assert result.exit_code == 0, result.stderr
    assert first.path.name in result.stdout and "Recall request" in result.stdout
    assert "in clear" in result.stderr and "Zarkovian" not in result.stdout + result.stderr
    with open_store(world["store"].path, bytearray(PASSPHRASE.encode())) as store:
        actions = [r[0] for r in store.query("SELECT action FROM audit_log ORDER BY seq")]
    assert actions[-2:] == ["role.mark", "recall.create"]
