"""The CSV members are analyst-ready (issue 15, item 2): they load in the csv module and in
pandas with the types a reader expects, open in Excel as UTF-8, keep phone numbers intact,
and carry the withheld status in its own columns with the typed columns of a stub empty.

Before: no byte order mark, phones as '+44..., durations as 190.0, and stubs with
'withheld:sensitive-role' in test_type and setting and a withheld column mixing false and a reason.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from datetime import date

import pandas as pd
import pytest
from pyrage import decrypt, x25519

from tracekit.bundle.writer import export_handover
from tracekit.records import Casebook, PersonInput
from tracekit.records.sensitive import SensitiveRoles

OFFICER_PHONE = "07700 900321"


@pytest.fixture
def bundle(store, tmp_path):
    """A central handover of: an ordinary case with accented names and two contacts (one
    sharing the officer's landline), and an officer's case with a contact (stubs)."""
    book = Casebook(store, today=date(2020, 11, 1))
    roles = SensitiveRoles(book)
    officer = book.add_case(
        person=PersonInput(name="Quintessa Zarkovian", phone=OFFICER_PHONE),
        test_date="2020-10-20",
        test_type="lfd",
        asymptomatic=True,
    )
    book.add_contact(
        officer.ref,
        person=PersonInput(name="Bartholomew Yelverton"),
        last_exposure="2020-10-19",
        setting="workplace",
        duration_min="190",
        proximity_m="1",
    )
    ordinary = book.add_case(
        person=PersonInput(name="Zoë Brontë-Ångström", phone="07700 900323", postcode="EC1A 1BB"),
        test_date="2020-10-21",
        symptom_onset="2020-10-19",
    )
    book.add_contact(
        ordinary.ref,
        person=PersonInput(name="Renée Ordinary", phone="07700 900324"),
        last_exposure="2020-10-20",
        setting="household",
        duration_min="190",
        proximity_m="1.5",
        face_to_face=True,
    )
    book.add_contact(
        ordinary.ref,
        person=PersonInput(name="Ned Normal", phone=OFFICER_PHONE),
        new_person=True,
        last_exposure="2020-10-20",
        setting="social",
        duration_min="20",
        proximity_m="2",
    )
    roles.mark(officer.person.ref, "undercover-officer", "operational safety")
    identity = x25519.Identity.generate()
    roles.add_recipient("PHE", str(identity.to_public()), "central-team")
    out = tmp_path / "out"
    result = export_handover(store, "PHE", out_dir=out, all_records=True)
    with tarfile.open(fileobj=io.BytesIO(decrypt(result.path.read_bytes(), [identity]))) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    return {"members": members, "ordinary": ordinary}


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_every_csv_member_starts_with_a_byte_order_mark_and_is_rfc4180(bundle):
    csv_members = {name: data for name, data in bundle["members"].items() if name.endswith(".csv")}
    assert set(csv_members) == {"records/cases-00001.csv", "records/contacts-00001.csv"}
    for data in csv_members.values():
        assert data.startswith(b"\xef\xbb\xbfref,")  # UTF-8 BOM, then the header
        assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")  # CRLF line ends
    assert "Zoë Brontë-Ångström" in csv_members["records/cases-00001.csv"].decode("utf-8-sig")
    assert json.loads(bundle["members"]["manifest.json"])["version"] == 2  # the CSV members changed in version 2


def test_csv_module_reads_typed_values_and_withheld_columns(bundle):
    cases = _rows(bundle["members"]["records/cases-00001.csv"])
    olwen = next(row for row in cases if row["ref"] == bundle["ordinary"].ref)
    assert olwen["phone"] == "+447700900323"  # intact: no leading apostrophe
    assert (olwen["withheld"], olwen["withheld_reason"], olwen["withheld_fields"]) == ("false", "", "")
    assert olwen["test_type"] == "pcr" and olwen["symptom_onset"] == "2020-10-19" and olwen["asymptomatic"] == "false"
    stub = next(row for row in cases if row["withheld"] == "true")
    assert stub["withheld_reason"] == "sensitive-role" and stub["ref"].startswith("W-")
    for typed in ("test_type", "test_result", "name", "phone", "person", "date_of_birth", "updated_at"):
        assert stub[typed] == "", typed  # empty, never 'withheld:...'
    assert {"test_type", "name", "phone", "person"} <= set(stub["withheld_fields"].split())
    assert stub["test_date"] == "2020-10-20" and stub["asymptomatic"] == "true"  # the epidemiological picture stays
    assert not any("withheld:" in cell for row in cases for cell in row.values())

    contacts = _rows(bundle["members"]["records/contacts-00001.csv"])
    renee = next(row for row in contacts if row["setting"] == "household")
    assert (renee["duration_min"], renee["proximity_m"], renee["face_to_face"]) == ("190", "1.5", "true")
    ned = next(row for row in contacts if row["setting"] == "social")
    assert (ned["withheld"], ned["withheld_reason"]) == ("false", "")  # an ordinary record...
    assert ned["phone"] == "" and ned["withheld_fields"] == "phone"  # ...with the shared landline held back
    assert ned["proximity_m"] == "2" and ned["duration_min"] == "20"
    contact_stub = next(row for row in contacts if row["withheld"] == "true")
    assert contact_stub["withheld_reason"] == "sensitive-by-association"  # a contact of the officer's case
    assert (
        contact_stub["setting"] == ""
        and contact_stub["duration_min"] == ""
        and "setting" in contact_stub["withheld_fields"]
    )
    assert contact_stub["last_exposure"] == "2020-10-19"


def test_pandas_loads_the_members_with_numbers_as_numbers(bundle):
    """The documented load: identifiers as text (docs/bundle-format.md#csv-members), the rest inferred."""
    text_columns = {"phone": "string", "nhs_number": "string"}
    cases = pd.read_csv(io.BytesIO(bundle["members"]["records/cases-00001.csv"]), dtype=text_columns)
    assert list(cases.columns)[0] == "ref"  # the BOM is not part of the first name
    assert str(cases["withheld"].dtype) == "bool" and cases["withheld"].sum() == 1
    assert set(cases.loc[~cases["withheld"], "phone"]) == {"+447700900323"}
    stub = cases[cases["withheld"]].iloc[0]
    assert pd.isna(stub["test_type"]) and pd.isna(stub["phone"]) and stub["withheld_reason"] == "sensitive-role"
    assert pd.to_datetime(cases["test_date"]).notna().all()

    contacts = pd.read_csv(io.BytesIO(bundle["members"]["records/contacts-00001.csv"]), dtype=text_columns)
    ordinary = contacts[~contacts["withheld"]]
    assert str(contacts["duration_min"].dtype) == "float64"  # the stub's empty cell makes the column nullable
    assert list(ordinary["duration_min"]) == [190, 20]
    assert (
        str(
            pd.read_csv(io.BytesIO(_only_ordinary(bundle["members"]["records/contacts-00001.csv"])))[
                "duration_min"
            ].dtype
        )
        == "int64"
    )
    assert ordinary["withheld_reason"].isna().all()
    assert contacts.loc[contacts["withheld"], "setting"].isna().all()


def _only_ordinary(data: bytes) -> bytes:
    """The member without its stub lines: every duration is a whole number, so pandas reads int64."""
    lines = data.split(b"\r\n")
    header = lines[0].lstrip(b"\xef\xbb\xbf").split(b",")
    at = header.index(b"withheld")
    return (
        b"\r\n".join([lines[0], *(line for line in lines[1:] if line and line.split(b",")[at] == b"false")]) + b"\r\n"
    )


def test_csv_and_json_lines_hold_the_same_records(bundle):
    for record_type in ("cases", "contacts"):
        as_json = [json.loads(line) for line in bundle["members"][f"records/{record_type}-00001.jsonl"].splitlines()]
        as_csv = _rows(bundle["members"][f"records/{record_type}-00001.csv"])
        assert [r["ref"] for r in as_json] == [r["ref"] for r in as_csv]
        for j, c in zip(as_json, as_csv):
            assert c["withheld"] == ("true" if j["withheld"] else "false")
            assert c["withheld_reason"] == (j["withheld"] or "")
            assert c["withheld_fields"].split() == [k for k, v in j.items() if isinstance(v, dict)]
