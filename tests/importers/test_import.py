"""The import pass: what it writes, what it refuses, and what it never shows."""

from __future__ import annotations

import json
import os
import stat
from datetime import date

import pytest

from tests.importers.helpers import (
    CASE_HEADER,
    CONTACT_HEADER,
    NHS,
    STANDARD_CASES,
    TODAY,
    case_row,
    contact_row,
    count,
    import_standard_cases,
    run,
    spaced,
    write_csv,
    write_jsonl,
)
from tracekit import audit
from tracekit.errors import ExitCode, StoreExists, ValidationError
from tracekit.importers import ImportInvalid
from tracekit.records import Casebook, PersonInput

# --------------------------------------------------------------------- what is written


def test_cases_import_writes_people_cases_and_external_ids(store, tmp_path):
    summary = import_standard_cases(store, tmp_path)
    assert summary.committed and summary.rows_read == 3 and summary.imported == 3
    assert summary.people_created == 3 and summary.linked == 0
    assert count(store, "cases") == 3 and count(store, "people") == 3
    assert sorted(r[0] for r in store.conn.execute("SELECT external_id FROM external_ids WHERE kind = 'case'")) == [
        "LAB-1",
        "LAB-2",
        "LAB-3",
    ]
    imports = store.conn.execute("SELECT kind, file_name, input_sha256, finished_at, summary FROM imports").fetchall()
    assert imports[0][:2] == ("cases", "cases.csv") and len(imports[0][2]) == 64 and imports[0][3]
    assert json.loads(imports[0][4])["rows"]["imported"] == 3
    book = Casebook(store, today=TODAY)
    found = book.search_people("Lovelock")
    assert [p.name for p in found] == ["Ada Lovelock"]
    assert found[0].nhs_number == NHS[0] and found[0].phone == "+447700900101" and found[0].postcode == "SW1A 1AA"
    assert found[0].date_of_birth == date(1985, 3, 14)
    assert store.check().ok


def _rows(store, table, skip):
    cursor = store.conn.execute(f"SELECT * FROM {table} ORDER BY id")
    columns = [d[0] for d in cursor.description]
    return [tuple(v for c, v in zip(columns, row) if c not in skip) for row in cursor.fetchall()]


def test_rows_are_exactly_what_the_casebook_writes(store, tmp_path, passphrase):
    """Every computed column (name key, search terms, rule values, risk rank) matches."""
    from tests.conftest import CHEAP_KDF
    from tracekit.store import create_store

    with create_store(tmp_path / "manual.store", passphrase, kdf=CHEAP_KDF) as manual_store:
        book = Casebook(manual_store, today=TODAY)
        manual = book.add_case(
            person=PersonInput(
                name="Ada Lovelock",
                date_of_birth="14/03/1985",
                nhs_number=spaced(NHS[0]),
                phone="07700 900101",
                postcode="sw1a 1aa",
                occupation="teacher",
            ),
            test_date="20/10/2020",
            symptom_onset="18/10/2020",
        )
        contact, _ = book.add_contact(
            manual.ref,
            person=PersonInput(name="Dora Quill", phone="07700 900201"),
            last_exposure="2020-10-19",
            setting="workplace",
            proximity_m="1",
            duration_min="20",
            face_to_face=True,
        )
        run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, [STANDARD_CASES[0]]))
        run(
            store,
            "contacts",
            write_csv(
                tmp_path / "k.csv",
                CONTACT_HEADER,
                [
                    contact_row(
                        "K-1",
                        "LAB-1",
                        "Dora",
                        "Quill",
                        Tel="07700 900201",
                        Setting="workplace",
                        **{"Distance (m)": "1", "Duration (min)": "20", "Face to face": "yes"},
                    ),
                ],
            ),
        )
        volatile = {"ref", "created_at", "updated_at"}
        for table in ("people", "cases", "exposures"):
            assert _rows(store, table, volatile) == _rows(manual_store, table, volatile), table
        assert contact.clause == "face-to-face-1m"
        # The imported people are findable like the manual ones.
        imported = Casebook(store, today=TODAY)
        assert [p.name for p in imported.search_people("Quill")] == ["Dora Quill"]
        assert [p.name for p in imported.search_people("900101")] == ["Ada Lovelock"]


def test_contacts_by_external_id_and_by_reference(store, tmp_path):
    import_standard_cases(store, tmp_path)
    case_ref = store.conn.execute(
        "SELECT c.ref FROM cases c JOIN external_ids x ON x.record_id = c.id AND x.kind = 'case' WHERE x.external_id = 'LAB-2'"
    ).fetchone()[0]
    header = [*CONTACT_HEADER, "Case reference"]
    rows = [
        contact_row("K-1", "LAB-1", "Dora", "Quill") + [""],
        contact_row("K-2", "", "Eli", "Marsh", Setting="social") + [case_ref.lower().replace("-", " ")],
    ]
    summary = run(store, "contacts", write_csv(tmp_path / "k.csv", header, rows))
    assert summary.imported == 2
    linked = store.conn.execute(
        "SELECT c.ref FROM exposures e JOIN cases c ON c.id = e.case_id ORDER BY e.id"
    ).fetchall()
    assert linked[1][0] == case_ref
    statuses = {r[0] for r in store.conn.execute("SELECT trace_status FROM exposures")}
    assert statuses == {"not-yet-reached"}


def test_jsonl_import(store, tmp_path):
    path = write_jsonl(
        tmp_path / "cases.jsonl",
        [
            {
                "external_id": "J-1",
                "name": "Ada Lovelock",
                "nhs_number": int(NHS[0]),
                "test_date": "2020-10-20",
                "asymptomatic": True,
                "extra": "ignored",
            },
            {
                "external_id": "J-2",
                "name": "Basil Fenwick",
                "test_date": "20 Oct 2020",
                "symptom_onset": "2020-10-18",
                "phone": None,
            },
        ],
    )
    summary = run(store, "cases", path)
    assert summary.format == "jsonl" and summary.imported == 2
    assert summary.ignored_columns == ["extra"]


def test_xlsx_import(store, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    from datetime import datetime

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Case ID", "Name", "DOB", "NHS number", "Mobile", "Specimen date", "Asymptomatic"])
    sheet.append(
        ["X-1", "Ada Lovelock", datetime(1985, 3, 14), int(NHS[0]), "07700 900101", datetime(2020, 10, 20), True]
    )
    sheet.append(["X-2", "Basil Fenwick", "02/07/1990", None, 7700900102, "20/10/2020", "yes"])
    path = tmp_path / "cases.xlsx"
    workbook.save(path)
    summary = run(store, "cases", path)
    assert summary.format == "xlsx" and summary.imported == 2, summary.problems
    phones = sorted(r[0] for r in store.conn.execute("SELECT phone FROM people"))
    assert phones == ["+447700900101", "+447700900102"]


def test_stdin(store, tmp_path):
    import io

    data = write_csv(tmp_path / "c.csv", CASE_HEADER, STANDARD_CASES).read_bytes()
    summary = run(store, "cases", "-", stdin=io.BytesIO(data))
    assert summary.file == "<stdin>" and summary.imported == 3


# ------------------------------------------------------------------------ validation

BAD_ROWS = [
    # (cells, field, line) -- line 1 is the header
    (case_row("B-1", ""), "name", 2),
    (case_row("B-2", "Ok Name", NHS_number="999 000 0019"), "nhs_number", 3),
    (case_row("B-3", "Ok Name", Mobile="0770 09"), "phone", 4),
    (case_row("B-4", "Ok Name", Postcode="NOT A CODE"), "postcode", 5),
    (case_row("B-5", "Ok Name", Date_of_birth="04/13/1985"), "date_of_birth", 6),
    (case_row("B-6", "Ok Name", Specimen_date=""), "test_date", 7),
    (case_row("B-7", "Ok Name", Specimen_date="2099-01-01"), "test_date", 8),
    (case_row("B-8", "Ok Name", Onset_date="", Asymptomatic="no"), "symptom_onset", 9),
    (case_row("B-9", "Ok Name", Asymptomatic="perhaps"), "asymptomatic", 10),
    (case_row("", "Ok Name"), "external_id", 11),
    (case_row("B-11", "Ok Name", Role="spy"), "role", 12),
    (case_row("B-12", "Ok Name", Date_of_birth="21/10/2020"), "test_date", 13),
]


def test_every_validation_failure_with_its_line_and_nothing_written(store, tmp_path):
    good = [case_row(f"G-{i}", f"Good Person{i}") for i in range(3)]
    path = write_csv(tmp_path / "bad.csv", CASE_HEADER, [cells for cells, _, _ in BAD_ROWS] + good)
    before = count(store, "audit_log")
    with pytest.raises(ImportInvalid) as caught:
        run(store, "cases", path)
    error = caught.value
    assert error.exit_code == ExitCode.VALIDATION and isinstance(error, ValidationError)
    problems = {(p.line, p.field) for p in error.summary.problems}
    for _, field, line in BAD_ROWS:
        assert (line, field) in problems, (line, field, problems)
        assert f"line {line}" in error.message
    assert error.summary.invalid == len(BAD_ROWS)
    for problem in error.summary.problems:
        assert problem.expected, problem  # every problem says what was expected
    mobile = next(p for p in error.summary.problems if p.field == "phone")
    assert mobile.column == "Mobile"
    # Atomic: nothing at all was written, not even the audit entry or the import log.
    assert count(store, "cases") == count(store, "people") == count(store, "external_ids") == 0
    assert count(store, "imports") == 0 and count(store, "audit_log") == before


def test_messages_never_contain_cell_values(store, tmp_path):
    secret_phone, secret_nhs, secret_name = "0799 4412", "999 000 0019", "Zyx\x07Qwv"
    path = write_csv(
        tmp_path / "bad.csv",
        CASE_HEADER,
        [
            case_row("S-1", secret_name, NHS_number=secret_nhs, Mobile=secret_phone, Postcode="QQ9 9QQQ"),
        ],
    )
    with pytest.raises(ImportInvalid) as caught:
        run(store, "cases", path)
    text = caught.value.message + json.dumps(caught.value.summary.to_json())
    for value in ("0799", "4412", "0019", "Zyx", "Qwv", "QQ9"):
        assert value not in text


def test_a_bad_last_row_writes_nothing(store, tmp_path):
    rows = [case_row(f"G-{i}", f"Good Person{i}", Mobile="07700 900300") for i in range(2500)]
    rows.append(case_row("LAST", "Bad Date", Specimen_date="31/02/2020"))
    path = write_csv(tmp_path / "big.csv", CASE_HEADER, rows)
    with pytest.raises(ImportInvalid) as caught:
        run(store, "cases", path, batch_rows=500)
    assert [(p.line, p.field) for p in caught.value.summary.problems] == [(2502, "test_date")]
    assert count(store, "cases") == count(store, "people") == 0
    assert store.check().ok


def test_dry_run_validates_and_writes_nothing(store, tmp_path):
    path = write_csv(tmp_path / "c.csv", CASE_HEADER, STANDARD_CASES)
    before = count(store, "audit_log")
    summary = run(store, "cases", path, dry_run=True)
    assert summary.dry_run and not summary.committed and summary.imported == 3
    assert count(store, "cases") == 0 and count(store, "audit_log") == before
    bad = write_csv(tmp_path / "bad.csv", CASE_HEADER, [case_row("X", "")])
    with pytest.raises(ImportInvalid, match="dry run"):
        run(store, "cases", bad, dry_run=True)


def test_skip_invalid_writes_the_rejects_file(store, tmp_path):
    rows = [
        STANDARD_CASES[0],
        case_row("B-1", "Bad Phone", Mobile="12"),
        STANDARD_CASES[1],
        case_row("B-2", "Bad Date", Specimen_date="soon"),
    ]
    path = write_csv(tmp_path / "c.csv", CASE_HEADER, rows)
    rejects = tmp_path / "rejects.csv"
    summary = run(store, "cases", path, skip_invalid=True, rejects=rejects)
    assert summary.committed and summary.imported == 2 and summary.invalid == 2 and summary.skipped == 2
    assert count(store, "cases") == 2
    assert stat.S_IMODE(os.stat(rejects).st_mode) == 0o600
    import csv as csvmod

    assert rejects.read_bytes().startswith(b"\xef\xbb\xbf")  # the input's byte-order mark, kept
    with open(rejects, encoding="utf-8-sig", newline="") as handle:
        lines = list(csvmod.reader(handle))
    assert lines[0] == [*CASE_HEADER, "import_error"]
    assert [line[0] for line in lines[1:]] == ["B-1", "B-2"]
    assert lines[1][:-1] == rows[1]  # the row as read, for fixing and re-importing
    assert lines[1][-1].startswith("phone:") and "expected" in lines[1][-1]
    # The rejects file can be fixed and imported again: the import_error column is ignored.
    fixed = [line[:-1] for line in lines]
    fixed[1][CASE_HEADER.index("Mobile")] = "07700 900150"
    fixed[2][CASE_HEADER.index("Specimen date")] = "21/10/2020"
    again = write_csv(tmp_path / "fixed.csv", lines[0], [[*r, ""] for r in fixed[1:]])
    assert run(store, "cases", again).imported == 2
    unrelated = tmp_path / "notes.csv"
    unrelated.write_text("my,own,file\n", encoding="utf-8")
    with pytest.raises(StoreExists):
        run(store, "cases", path, skip_invalid=True, rejects=unrelated)
    assert unrelated.read_text(encoding="utf-8") == "my,own,file\n"


def test_strict_mode_can_still_write_rejects(store, tmp_path):
    path = write_csv(tmp_path / "c.csv", CASE_HEADER, [STANDARD_CASES[0], case_row("B", "")])
    rejects = tmp_path / "r.csv"
    with pytest.raises(ImportInvalid) as caught:
        run(store, "cases", path, rejects=rejects)
    assert caught.value.summary.rejects_file == str(rejects) and rejects.exists()
    assert count(store, "cases") == 0


def test_ragged_and_unreadable_rows(store, tmp_path):
    path = tmp_path / "k.jsonl"
    path.write_text(
        '{"external_id": "J1", "name": "Ada", "test_date": "2020-10-20", "asymptomatic": "yes"}\n'
        "{broken\n"
        '{"external_id": "J3", "name": {"first": "x"}, "test_date": "2020-10-20"}\n',
        encoding="utf-8",
    )
    with pytest.raises(ImportInvalid) as caught:
        run(store, "cases", path)
    lines = {(p.line, p.field) for p in caught.value.summary.problems}
    assert (2, "row") in lines and (3, "name") in lines
    csv_path = tmp_path / "r.csv"
    csv_path.write_text("ID,Name,Test date,Asymptomatic\nA,Ada,20/10/2020,yes,surprise\n", encoding="utf-8")
    with pytest.raises(ImportInvalid, match="cells but the header has"):
        run(store, "cases", csv_path)


def test_header_problems_stop_before_any_row(store, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("Name,Test date\nAda,20/10/2020\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="external_id"):
        run(store, "cases", path)
    path.write_text("ID,Name,Test date,Onset\n", encoding="utf-8")
    assert run(store, "cases", path).rows_read == 0


def test_unknown_case_and_other_contact_problems(store, tmp_path):
    import_standard_cases(store, tmp_path)
    rows = [
        contact_row("K-1", "LAB-404", "Dora", "Quill"),
        contact_row("K-2", "LAB-1", "Eli", "Marsh", Setting="garden"),
        contact_row("K-3", "LAB-1", "Ada", "Lovelock", NHS_No=NHS[0]),  # the case's own person
        contact_row("K-4", "", "Fay", "Stone"),
        contact_row("K-5", "LAB-1", "Gus", "Reed", **{"Date of last contact": ""}),
    ]
    with pytest.raises(ImportInvalid) as caught:
        run(store, "contacts", write_csv(tmp_path / "k.csv", CONTACT_HEADER, rows))
    problems = {(p.line, p.field) for p in caught.value.summary.problems}
    assert {(2, "case_external_id"), (3, "setting"), (4, "person"), (5, "case_ref"), (6, "last_exposure")} <= problems


def test_a_referred_case_takes_no_imported_contacts(store, tmp_path):
    import_standard_cases(store, tmp_path)
    store.conn.execute("UPDATE cases SET status = 'referred'")
    with pytest.raises(ImportInvalid, match="referred"):
        run(
            store,
            "contacts",
            write_csv(tmp_path / "k.csv", CONTACT_HEADER, [contact_row("K-1", "LAB-1", "Dora", "Quill")]),
        )


# ---------------------------------------------------------------------- idempotency


def test_reimport_changes_nothing_and_says_so(store, tmp_path):
    first = import_standard_cases(store, tmp_path)
    snapshot = [store.conn.execute(f"SELECT * FROM {t}").fetchall() for t in ("people", "cases", "external_ids")]
    second = import_standard_cases(store, tmp_path)
    assert first.imported == 3
    assert second.imported == 0 and second.unchanged == 3 and second.nothing_changed and second.committed
    assert snapshot == [
        store.conn.execute(f"SELECT * FROM {t}").fetchall() for t in ("people", "cases", "external_ids")
    ]
    entries = audit.entries(store.conn, action="import")
    assert [e.action for e in entries] == ["import.cases", "import.cases"]
    assert (
        "0 imported" in entries[1].reason and "3 unchanged" in entries[1].reason and first.sha256 in entries[1].reason
    )
    assert audit.verify(store.conn).ok


def test_a_repeated_external_id_in_one_file_is_an_error(store, tmp_path):
    rows = [STANDARD_CASES[0], STANDARD_CASES[1], case_row("LAB-1", "Someone Else")]
    with pytest.raises(ImportInvalid, match="repeats the external id of line 2"):
        run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows))
    # ... also when the repeat falls in a later batch.
    rows = [case_row(f"R-{i}", f"Person{i}") for i in range(30)] + [case_row("R-3", "Again")]
    with pytest.raises(ImportInvalid, match="earlier row of this file"):
        run(store, "cases", write_csv(tmp_path / "c2.csv", CASE_HEADER, rows), batch_rows=10)


def test_ids_refs_and_counts_stay_consistent_across_batches(store, tmp_path):
    rows = [case_row(f"R-{i}", f"Person Number{i}", Mobile=f"07700 900{i % 1000:03d}") for i in range(1234)]
    summary = run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows), batch_rows=100)
    assert summary.imported == 1234 == count(store, "cases") == count(store, "people")
    assert store.conn.execute("SELECT count(DISTINCT ref) FROM people").fetchone()[0] == 1234
    assert store.check().ok


# ------------------------------------------------------------------------- linking


def test_known_people_are_linked_not_duplicated(store, tmp_path):
    book = Casebook(store, today=TODAY)
    known = book.add_case(
        person=PersonInput(name="Ada Lovelock", nhs_number=NHS[0]), test_date="2020-10-01", asymptomatic=True
    )
    other = book.add_case(
        person=PersonInput(name="Basil Fenwick", date_of_birth="1990-07-02", nhs_number=NHS[6]),
        test_date="2020-10-01",
        asymptomatic=True,
    )
    rows = [
        case_row("L-1", "A. Lovelock", NHS_number=spaced(NHS[0])),  # same NHS number
        case_row("L-2", "BASIL  FENWICK", Date_of_birth="02/07/1990"),  # same name and date of birth
        case_row("L-3", "Basil Fenwick", Date_of_birth="02/07/1990", NHS_number=NHS[5]),  # name+dob, NHS differs: new
        case_row("L-4", "Cara New", NHS_number=NHS[2]),  # new ...
        case_row("L-5", "Cara New", NHS_number=NHS[2]),  # ... then linked to the row above
    ]
    summary = run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows))
    assert summary.imported == 5 and summary.linked == 3 and summary.people_created == 2
    person_of = dict(
        store.conn.execute(
            "SELECT x.external_id, c.person_id FROM external_ids x JOIN cases c ON c.id = x.record_id WHERE x.kind = 'case'"
        )
    )
    assert person_of["L-1"] == known.person.id and person_of["L-2"] == other.person.id
    assert person_of["L-3"] not in (known.person.id, other.person.id)
    assert person_of["L-4"] == person_of["L-5"]
    # Linking never rewrites the stored details.
    assert book.get_person(known.person.ref).name == "Ada Lovelock"


def test_linking_across_batches_and_by_person_external_id(store, tmp_path):
    header = [*CASE_HEADER, "Patient ID"]
    rows = [case_row(f"P-{i}", f"Person{i}") + [f"PAT-{i % 5}"] for i in range(20)]
    summary = run(store, "cases", write_csv(tmp_path / "c.csv", header, rows), batch_rows=3)
    assert summary.people_created == 5 and summary.linked == 15
    assert count(store, "people") == 5
    assert count(store, "external_ids") == 20 + 5


def test_ambiguous_match_is_a_row_problem(store, tmp_path):
    book = Casebook(store, today=TODAY)
    book.add_case(person=PersonInput(name="Ada Lovelock", nhs_number=NHS[0]), test_date="2020-10-01", asymptomatic=True)
    book.add_case(
        person=PersonInput(name="Ada Lovelock", date_of_birth="1985-03-14"),
        test_date="2020-10-01",
        asymptomatic=True,
        new_person=True,
    )
    path = write_csv(
        tmp_path / "c.csv",
        CASE_HEADER,
        [case_row("A-1", "Ada Lovelock", NHS_number=NHS[0], Date_of_birth="14/03/1985")],
    )
    with pytest.raises(ImportInvalid, match="matches 2 people"):
        run(store, "cases", path)


def test_the_same_person_twice_for_one_case(store, tmp_path):
    import_standard_cases(store, tmp_path)
    rows = [
        contact_row("K-1", "LAB-1", "Dora", "Quill", NHS_No=NHS[3]),
        contact_row("K-2", "LAB-1", "Dora", "Quill", NHS_No=NHS[3]),
        contact_row("K-3", "LAB-2", "Dora", "Quill", NHS_No=NHS[3]),
    ]
    with pytest.raises(ImportInvalid) as caught:
        run(store, "contacts", write_csv(tmp_path / "k.csv", CONTACT_HEADER, rows))
    assert [(p.line, p.field) for p in caught.value.summary.problems] == [(3, "person")]
    summary = run(store, "contacts", write_csv(tmp_path / "k2.csv", CONTACT_HEADER, [rows[0], rows[2]]))
    assert summary.imported == 2 and summary.linked == 1 and summary.people_created == 1


# --------------------------------------------------------------------- sensitive rows

SECRET = {"name": "Perpetua Quillfeather", "nhs": NHS[4], "phone": "07700 900555", "postcode": "M14 5QT"}


def _assert_no_secret(text: str) -> None:
    for value in ("Perpetua", "Quillfeather", NHS[4], "900555", "M14 5QT", "M145QT", "refuge at 3"):
        assert value not in text


@pytest.mark.parametrize(
    ("role_cell", "occupation", "role"),
    [
        ("undercover-officer", "", "undercover-officer"),
        ("Undercover", "", "undercover-officer"),
        ("witness", "", "protected-witness"),
        ("Refuge", "", "victim"),
        ("counter terrorism officer", "", "counter-terrorism"),
        ("", "Police Officer", "other"),
        ("", "detective sergeant", "other"),
        ("", "Prison officer (HMP)", "other"),
        ("none", "teacher", None),
    ],
)
def test_sensitive_triage(store, tmp_path, role_cell, occupation, role):
    path = write_csv(
        tmp_path / "c.csv",
        CASE_HEADER,
        [
            case_row(
                "S-1",
                SECRET["name"],
                NHS_number=SECRET["nhs"],
                Mobile=SECRET["phone"],
                Postcode=SECRET["postcode"],
                Role=role_cell,
                Occupation=occupation,
                Notes="lives at the refuge at 3 Example Street",
            ),
        ],
    )
    summary = run(store, "cases", path)
    marks = store.conn.execute("SELECT role, reason FROM person_roles").fetchall()
    if role is None:
        assert marks == [] and summary.marked == []
        return
    assert marks[0][0] == role
    assert marks[0][1] == ("import triage: occupation" if occupation else "import triage: role column")
    person_ref = store.conn.execute("SELECT ref FROM people").fetchone()[0]
    assert summary.marked == [{"person": person_ref, "record": summary.marked[0]["record"], "role": role}]
    _assert_no_secret(json.dumps(summary.to_json()))
    # Never in the search index, masked everywhere.
    book = Casebook(store, today=TODAY)
    assert book.search_people("Quillfeather") == [] and book.search_people("900555") == []
    assert store.conn.execute("SELECT search_terms FROM people").fetchone()[0] is None
    case = book.list_cases().items[0]
    assert case.person.masked and case.notes is not None and "Quillfeather" not in json.dumps(case.to_json())
    # Audited by reference only.
    entry = audit.entries(store.conn, action="role.mark")[0]
    assert entry.refs == [person_ref]
    _assert_no_secret(json.dumps(entry.to_json()))
    import_entry = audit.entries(store.conn, action="import.cases")[0]
    _assert_no_secret(json.dumps(import_entry.to_json()))


def test_sensitive_rows_are_withheld_from_rejects_and_messages(store, tmp_path):
    rows = [
        case_row(
            "S-1",
            SECRET["name"],
            NHS_number=SECRET["nhs"],
            Mobile=SECRET["phone"],
            Postcode=SECRET["postcode"],
            Role="protected witness",
            Specimen_date="not a date",
            Notes="lives at the refuge at 3 Example Street",
        ),
        case_row("S-2", SECRET["name"], NHS_number=SECRET["nhs"], Mobile=SECRET["phone"], Role="covert agent"),
        case_row("S-3", "Ordinary Person", Mobile="12"),
    ]
    rejects = tmp_path / "r.csv"
    summary = run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows), skip_invalid=True, rejects=rejects)
    assert summary.invalid == 3
    text = rejects.read_text(encoding="utf-8")
    _assert_no_secret(text)
    _assert_no_secret(json.dumps(summary.to_json()))
    import csv as csvmod

    lines = list(csvmod.reader(text.splitlines()))
    # A sensitive row is one line saying so: no cell, not even the external id.
    for line, source_line in ((lines[1], 2), (lines[2], 3)):
        assert line[:-1] == [""] * len(CASE_HEADER)
        assert line[-1].startswith(
            f"line {source_line} withheld: concerns a person in a sensitive role, so its "
            f"cells are not copied here; fix line {source_line} of c.csv itself and import "
            "c.csv again"
        )
    assert not any(cell in ("S-1", "S-2") for line in lines for cell in line) and "not a date," not in text
    assert "specimen" in lines[1][-1].lower() or "test_date" in lines[1][-1]  # the problems are still named
    assert lines[3][CASE_HEADER.index("Full name")] == "Ordinary Person"


REJECT_SCRUB_FORMS = {  # the marked person's details as people write them in other rows
    "name": "Quillfeather",
    "given name": "PERPETUA",
    "phone": "+44 7700 900555",
    "phone, dashed": "07700-900-555",
    "NHS number": spaced(NHS[4]),
    "postcode": "m14 5qt",
    "email": "p.q@example.com",
    "date of birth": "4/5/1981",
}


def _marked_secret(store):
    from tracekit.records.sensitive import SensitiveRoles

    book = Casebook(store, today=TODAY)
    case = book.add_case(
        person=PersonInput(
            name=SECRET["name"],
            nhs_number=SECRET["nhs"],
            phone=SECRET["phone"],
            postcode=SECRET["postcode"],
            email="p.q@example.com",
            date_of_birth="1981-05-04",
        ),
        test_date="2020-10-01",
        asymptomatic=True,
    )
    SensitiveRoles(book).mark(case.person.ref, "victim", "court order")


def _assert_scrubbed(text: str) -> None:
    _assert_no_secret(text)
    for form in REJECT_SCRUB_FORMS.values():
        assert form.lower() not in text.lower(), form


def test_rejected_rows_are_scrubbed_of_a_marked_persons_details(store, tmp_path):
    """Issue 13 item 10: notes and other cells naming a marked person are not copied in clear."""
    _marked_secret(store)
    rows = [
        case_row(f"R-{i}", "Ordinary Person", Specimen_date="bad", Notes=f"visited by {form} on Monday")
        for i, form in enumerate(REJECT_SCRUB_FORMS.values())
    ]
    rows.append(case_row("R-occ", "Ordinary Person", Specimen_date="bad", Occupation="carer for Perpetua"))
    rejects = tmp_path / "r.csv"
    summary = run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows), skip_invalid=True, rejects=rejects)
    assert summary.invalid == len(rows)
    text = rejects.read_text(encoding="utf-8")
    _assert_scrubbed(text)
    assert text.count("[withheld] on Monday") == len(REJECT_SCRUB_FORMS)
    assert "carer for [withheld]" in text and text.count("Ordinary Person") == len(rows)


def test_rejected_rows_are_scrubbed_of_people_marked_later_in_the_same_file(store, tmp_path):
    """A person marked by a row further down (another batch), or whose own sensitive row was
    rejected, is scrubbed from earlier rejected rows too; JSON Lines as CSV."""
    for name, ext in (("csv", "c.csv"), ("jsonl", "c.jsonl")):
        mention = {
            "Case ID": f"{name}-1",
            "Full name": "Ordinary Person",
            "Specimen date": "bad",
            "Notes": "neighbour of Perpetua Quillfeather, 07700 900555",
            "Mobile": "",
            "Extra": {"said": "Mrs Quillfeather"},
        }
        later = case_row(f"{name}-2", SECRET["name"], Mobile=SECRET["phone"], Role="victim")
        rejected = case_row(f"{name}-3", "Tiberius Oddsock", NHS_number=NHS[5], Role="witness", Specimen_date="bad")
        other = {
            "Case ID": f"{name}-4",
            "Full name": "Another Person",
            "Specimen date": "bad",
            "Notes": f"Tiberius called from {spaced(NHS[5])}?",
        }
        if name == "csv":
            rows = [[mention.get(h, "") for h in CASE_HEADER], later, rejected, [other.get(h, "") for h in CASE_HEADER]]
            path = write_csv(tmp_path / ext, CASE_HEADER, rows)
        else:
            path = write_jsonl(
                tmp_path / ext, [mention, dict(zip(CASE_HEADER, later)), dict(zip(CASE_HEADER, rejected)), other]
            )
        rejects = tmp_path / f"r-{name}"
        summary = run(store, "cases", path, skip_invalid=True, rejects=rejects, batch_rows=1)
        assert summary.invalid == 3 and len(summary.marked) == 1
        text = rejects.read_text(encoding="utf-8")
        _assert_no_secret(text)
        assert "Tiberius" not in text and "Oddsock" not in text and spaced(NHS[5]) not in text
        assert "neighbour of [withheld], [withheld]" in text and "[withheld] called from [withheld]?" in text
        if name == "jsonl":
            assert json.loads(text.splitlines()[0])["Extra"] == "[withheld]"
            assert json.loads(text.splitlines()[1]) == {
                "import_error": json.loads(text.splitlines()[1])["import_error"]
            }


def test_a_row_linking_to_a_marked_person_is_withheld_from_rejects(store, tmp_path):
    from tracekit.records.sensitive import SensitiveRoles

    book = Casebook(store, today=TODAY)
    case = book.add_case(
        person=PersonInput(name=SECRET["name"], nhs_number=SECRET["nhs"]), test_date="2020-10-01", asymptomatic=True
    )
    SensitiveRoles(book).mark(case.person.ref, "victim", "court order")
    rejects = tmp_path / "r.csv"
    rows = [case_row("M-1", SECRET["name"], NHS_number=SECRET["nhs"], Specimen_date="bad")]
    run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows), skip_invalid=True, rejects=rejects)
    _assert_no_secret(rejects.read_text(encoding="utf-8"))


def test_marking_a_known_person_through_a_linked_row(store, tmp_path):
    book = Casebook(store, today=TODAY)
    book.add_case(
        person=PersonInput(name=SECRET["name"], nhs_number=SECRET["nhs"]), test_date="2020-10-01", asymptomatic=True
    )
    assert len(book.search_people("Quillfeather")) == 1
    rows = [case_row("M-1", SECRET["name"], NHS_number=SECRET["nhs"], Role="undercover")]
    summary = run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows))
    assert summary.linked == 1 and len(summary.marked) == 1
    assert book.search_people("Quillfeather") == []
    assert store.conn.execute("SELECT role FROM person_roles").fetchall() == [("undercover-officer",)]
    assert store.check().ok


def test_known_people_marked_in_different_batches_all_leave_the_search_index(store, tmp_path):
    """The importer takes the people it marks out of the index once, at the end (in id
    order, for speed): every one of them, whichever batch marked them, and nobody else."""
    from tests.records.helpers import fts_terms

    book = Casebook(store, today=TODAY)
    surnames = ["Quillfeather", "Marchbanks", "Oddingley", "Pettigrew"]
    for i, surname in enumerate(surnames):
        book.add_case(
            person=PersonInput(name=f"Ada {surname}", nhs_number=NHS[i]), test_date="2020-10-01", asymptomatic=True
        )
    rows = []
    for i, surname in enumerate(surnames):
        rows.append(case_row(f"N-{i}", f"Newcomer Zanzibarr{i}", Specimen_date="2020-10-02"))
        if i % 2 == 0:  # the first and third are marked, in different batches
            rows.append(case_row(f"M-{i}", f"Ada {surname}", NHS_number=NHS[i], Role="protected witness"))
    summary = run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows), batch_rows=2)
    assert len(summary.marked) == 2
    terms = fts_terms(store)
    assert "fea" not in terms and "ngl" not in terms  # quillFEAther, oddiNGLey: gone
    assert "rch" in terms and "tti" in terms  # maRCHbanks, peTTIgrew: kept
    assert book.search_people("Quillfeather") == [] and book.search_people("Oddingley") == []
    assert [p.name for p in book.search_people("Marchbanks")] == ["Ada Marchbanks"]
    assert len(book.search_people("Zanzibarr")) == 4
    assert store.check().ok


def test_a_person_the_import_made_and_then_marked_is_never_in_the_search_index(store, tmp_path):
    """New people go into the index at the end of the import: one created by an early row
    and marked by a later one (another batch) is left out, and the index stays sound."""
    from tests.records.helpers import fts_terms

    rows = [
        case_row("N-1", "Ada Quillfeather", NHS_number=NHS[0], Specimen_date="2020-10-02"),
        case_row("N-2", "Bob Marchbanks", Specimen_date="2020-10-02"),
        case_row("M-1", "Ada Quillfeather", NHS_number=NHS[0], Specimen_date="2020-10-03", Role="victim"),
    ]
    summary = run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows), batch_rows=1)
    assert summary.people_created == 2 and len(summary.marked) == 1
    terms = fts_terms(store)
    assert "qui" not in terms and "fea" not in terms and "rch" in terms
    book = Casebook(store, today=TODAY)
    assert book.search_people("Quillfeather") == [] and len(book.search_people("Marchbanks")) == 1
    assert store.conn.execute("SELECT count(*) FROM people WHERE search_terms IS NULL").fetchone()[0] == 1
    assert store.check().ok
    with store.transaction() as conn:
        conn.execute("INSERT INTO people_fts(people_fts, rank) VALUES ('integrity-check', 0)")


def _secure_delete_setting(store) -> int:  # type: ignore[no-untyped-def]
    return store.conn.execute("SELECT v FROM people_fts_config WHERE k = 'secure-delete'").fetchone()[0]


def _residue_setting(store) -> str | None:  # type: ignore[no-untyped-def]
    found = store.conn.execute("SELECT value FROM settings WHERE key = 'search_index.residue'").fetchone()
    return found[0] if found else None


def test_people_an_import_marks_leave_by_delete_markers_and_the_next_referral_merges_them_away(
    store, store_path, tmp_path
):
    """An import takes the known people it marks out of the index by delete markers:
    search and the index's vocabulary lose them at once, their trigrams stay in the
    index's pages (the residue, which the setting records), secure delete is on again
    for everything else, and a referral merges the residue away before it commits.

    Each surname's first trigram is the only term of the index starting with its letter,
    so it is stored whole in the index's pages (terms are prefix-compressed) and a scan
    of the raw blocks can see it: the positive control is the residue itself."""
    from pyrage import x25519

    from tests.plaintext import decrypted_pages
    from tests.records.helpers import fts_blobs, fts_terms
    from tracekit.records.sensitive import SensitiveRoles

    book = Casebook(store, today=TODAY)
    surnames = ["Xjzqv", "Marchbanks", "Yqpfb", "Kvbgj"]
    for i, surname in enumerate(surnames):
        book.add_case(
            person=PersonInput(name=f"Ada {surname}", nhs_number=NHS[i]), test_date="2020-10-01", asymptomatic=True
        )
    rows = [
        case_row("M-0", "Ada Xjzqv", NHS_number=NHS[0], Role="victim"),
        case_row("N-0", "Newcomer Zanzibarr", Specimen_date="2020-10-02"),
        case_row("M-2", "Ada Yqpfb", NHS_number=NHS[2], Role="undercover"),
    ]
    summary = run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows), batch_rows=1)
    assert len(summary.marked) == 2
    assert book.search_people("Xjzqv") == [] and book.search_people("Yqpfb") == []
    assert [p.name for p in book.search_people("Marchbanks")] == ["Ada Marchbanks"]
    assert len(book.search_people("Zanzibarr")) == 1
    terms = fts_terms(store)
    assert {"xjz", "yqp"}.isdisjoint(terms) and "rch" in terms and "zib" in terms
    assert b"xjz" in fts_blobs(store) and b"yqp" in fts_blobs(store)  # the residue
    assert _residue_setting(store) == "1" and _secure_delete_setting(store) == 1
    assert store.check().ok
    roles = SensitiveRoles(book)
    # Marking by command is a secure removal: nothing of Kvbgj's lingers.
    assert b"kvb" in fts_blobs(store)
    roles.mark(book.search_people("Kvbgj")[0].ref, "victim", "court order")
    assert b"kvb" not in fts_blobs(store)
    # A referral (of either marked person) leaves no trigram of any of them in the pages.
    roles.add_recipient("Vetted", str(x25519.Identity.generate().to_public()), "vetted-team")
    marked_ref = store.conn.execute("SELECT p.ref FROM people p WHERE p.nhs_number = ?", (NHS[0],)).fetchone()[0]
    roles.refer(marked_ref)
    blobs = fts_blobs(store)
    assert b"xjz" not in blobs and b"yqp" not in blobs
    # Nor anywhere in the file, free pages and the unused space of pages included: the
    # referred person is gone (the other marked person keeps their record, name and all).
    pages = decrypted_pages(store_path, bytes(store.key))
    assert b"xjz" not in pages and b"yqpfb" in pages
    assert _residue_setting(store) is None and _secure_delete_setting(store) == 1
    assert [p.name for p in book.search_people("Marchbanks")] == ["Ada Marchbanks"]
    assert len(book.search_people("Zanzibarr")) == 1
    assert store.check().ok


def test_a_refused_import_leaves_the_index_and_its_setting_as_they_were(store, tmp_path):
    from tests.records.helpers import fts_blobs, fts_terms

    book = Casebook(store, today=TODAY)
    book.add_case(person=PersonInput(name="Ada Xjzqv", nhs_number=NHS[0]), test_date="2020-10-01", asymptomatic=True)
    before = fts_terms(store), fts_blobs(store)
    rows = [
        case_row("M-0", "Ada Xjzqv", NHS_number=NHS[0], Role="victim"),
        case_row("BAD", "Bad Date", Specimen_date="not a date"),
    ]
    with pytest.raises(ImportInvalid):
        run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows))
    assert (fts_terms(store), fts_blobs(store)) == before
    assert _secure_delete_setting(store) == 1 and _residue_setting(store) is None
    assert len(book.search_people("Xjzqv")) == 1


def test_contacts_of_a_sensitive_case_are_withheld_by_association(store, tmp_path):
    run(
        store,
        "cases",
        write_csv(tmp_path / "c.csv", CASE_HEADER, [case_row("S-1", SECRET["name"], Role="undercover-officer")]),
    )
    run(
        store,
        "contacts",
        write_csv(
            tmp_path / "k.csv", CONTACT_HEADER, [contact_row("K-1", "S-1", "Colleague", "Unknown", Setting="workplace")]
        ),
    )
    exposure = Casebook(store, today=TODAY).list_contacts().items[0]
    assert exposure.withheld


def test_xlsx_on_stdin(store, tmp_path):
    import io

    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    workbook.active.append(["Case ID", "Name", "Specimen date", "Asymptomatic"])
    workbook.active.append(["X-1", "Ada Lovelock", "20/10/2020", "yes"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    summary = run(store, "cases", "-", stdin=io.BytesIO(buffer.getvalue()))
    assert summary.format == "xlsx" and summary.imported == 1


def test_case_lookups_survive_cache_eviction(store, tmp_path, monkeypatch):
    """Regression: a batch's cases were looked up in a cache its own additions could evict."""
    import random

    from tracekit.importers import engine

    monkeypatch.setattr(engine, "CASE_CACHE_LIMIT", 3)
    run(
        store,
        "cases",
        write_csv(tmp_path / "c.csv", CASE_HEADER, [case_row(f"LAB-{i}", f"Case{i}") for i in range(20)]),
    )
    rng = random.Random(7)
    rows = [contact_row(f"K-{i}", f"LAB-{rng.randrange(20)}", "Contact", f"Number{i}") for i in range(300)]
    summary = run(store, "contacts", write_csv(tmp_path / "k.csv", CONTACT_HEADER, rows), batch_rows=25)
    assert summary.imported == 300


def test_marking_by_import_someone_handed_over_in_clear_writes_a_recall(store, tmp_path):
    from pyrage import x25519

    from tracekit.bundle.writer import export_handover
    from tracekit.records.sensitive import SensitiveRoles

    book = Casebook(store, today=TODAY)
    case = book.add_case(
        person=PersonInput(name=SECRET["name"], nhs_number=SECRET["nhs"]), test_date="2020-10-01", asymptomatic=True
    )
    SensitiveRoles(book).add_recipient("PHE", str(x25519.Identity.generate().to_public()), "central-team")
    bundle = export_handover(store, "PHE", out_dir=tmp_path / "out", all_records=True)
    rows = [case_row("M-1", SECRET["name"], NHS_number=SECRET["nhs"], Role="undercover")]
    summary = run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows))
    (marked,) = summary.marked
    assert marked["handed_over_in_clear"] == [bundle.bundle_id] and marked["recall"]
    recall = json.loads(store.conn.execute("SELECT content FROM recalls").fetchone()[0])
    assert recall["person"] == case.person.ref and case.ref in recall["bundles"][0]["records"]
    _assert_no_secret(json.dumps(recall))
