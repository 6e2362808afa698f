"""What an import tells a team lead (issue 14 items 10-14): grouped problems with their cause
and fix, "would" counts and no unreal references before a commit, marks counted by role, the
lines of contacts outside their case's infectious period, and a rejects file that can be fixed
and imported again."""

from __future__ import annotations

import csv
import json
import re

import pytest

from tests.importers.helpers import (
    CASE_HEADER,
    CONTACT_HEADER,
    case_row,
    contact_row,
    import_standard_cases,
    run,
    write_csv,
)
from tracekit.errors import ExitCode, StoreExists
from tracekit.importers import ImportInvalid

LAB_HEADER = ["Specimen ID", "Patient name", "Specimen date", "Onset date", "Ward"]
REFERENCE = re.compile(r"\b[CPE]-[0-9A-Z]{6}\b")


def _lab_rows(n: int, onset: str = "") -> list[list[str]]:
    return [[f"LAB-{i}", f"Patient Number{i}", "20/10/2020", onset, "7"] for i in range(n)]


# ------------------------------------------------------------------- item 10: grouped


def test_problems_are_grouped_by_kind_with_count_lines_cause_and_fix(store, tmp_path):
    path = write_csv(tmp_path / "lab.csv", LAB_HEADER, _lab_rows(130))
    with pytest.raises(ImportInvalid) as caught:
        run(store, "cases", path)
    message = caught.value.message
    assert message.count("symptom_onset: is required") == 1 and "130 rows" in message
    assert "lines 2, 3, 4, 5, 6 and 125 more" in message and "more problems" not in message
    assert "likely cause: the file has no asymptomatic column" in message
    assert "fix: give the onset dates, or add an asymptomatic column saying yes" in message
    (group,) = caught.value.summary.to_json()["problem_groups"]
    assert group["count"] == 130 and group["column"] == "Onset date" and group["lines"][:3] == [2, 3, 4]
    assert "asymptomatic" in group["cause"] and "--map" in group["fix"]


def test_a_column_empty_or_wrong_in_every_row_is_named_with_the_unmapped_columns(store, tmp_path):
    header = ["Specimen ID", "Patient name", "Specimen date", "Collected", "Asymptomatic"]
    rows = [[f"L-{i}", f"Patient Number{i}", "", "20/10/2020", "yes"] for i in range(3)]
    with pytest.raises(ImportInvalid) as caught:
        run(store, "cases", write_csv(tmp_path / "a.csv", header, rows))
    (group,) = caught.value.summary.problem_groups.values()
    assert group.cause == "column 'Specimen date' is empty in every row"
    assert '--map "Your Column=test_date"' in group.fix and "'Collected'" in group.fix
    rows = [[f"L-{i}", f"Patient Number{i}", "week 43", "", "yes"] for i in range(3)]
    with pytest.raises(ImportInvalid) as caught:
        run(store, "cases", write_csv(tmp_path / "b.csv", header, rows))
    (group,) = caught.value.summary.problem_groups.values()
    assert group.count == 3 and "every row fails this check" in group.cause


def test_problem_groups_count_past_the_listed_problems(store, tmp_path):
    rows = [case_row(f"B-{i}", "", Mobile="12") for i in range(60)]  # 120 problems, 100 listed
    with pytest.raises(ImportInvalid) as caught:
        run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows))
    document = caught.value.summary.to_json()
    assert len(document["problems"]) == 100 and document["problems_total"] == 120
    assert sorted(g["count"] for g in document["problem_groups"]) == [60, 60]


# --------------------------------------------------------- item 11: "would", no refs


def test_a_failed_strict_import_says_would_and_gives_no_references(store, tmp_path):
    rows = [case_row("S-1", "Perdita Vane", Role="undercover"), case_row("OK-1", "Ada Lovelock"), case_row("B-1", "")]
    with pytest.raises(ImportInvalid) as caught:
        run(store, "cases", write_csv(tmp_path / "c.csv", CASE_HEADER, rows))
    document = caught.value.summary.to_json()
    assert document["committed"] is False
    assert document["rows"]["imported"] == 0 and document["rows"]["would_import"] == 2
    assert document["people_created"] == 0 and document["people_would_be_created"] == 2
    assert document["marked_sensitive"] == [] and document["rows"]["would_mark_sensitive"] == 1
    assert document["marked_by_role"] == {"undercover-officer": 1}
    assert not REFERENCE.search(json.dumps(document))


def test_dry_run_prints_no_references(cli_with_store, tmp_path):
    path = write_csv(
        tmp_path / "c.csv",
        CASE_HEADER,
        [case_row("S-1", "Perdita Vane", Role="undercover"), case_row("OK-1", "Ada Lovelock")],
    )
    for args in ((), ("--json",)):
        result = cli_with_store("import", "cases", str(path), "--dry-run", *args)
        assert result.exit_code == 0, result.stderr
        assert not REFERENCE.search(result.stdout + result.stderr)
    assert "would be marked sensitive" in cli_with_store("import", "cases", str(path), "--dry-run").stdout


# ----------------------------------------------------------- item 12: counts by role


def test_many_marks_are_counted_by_role_and_linked_rows_count_as_sensitive(cli_with_store, tmp_path):
    rows = [case_row(f"S-{i}", f"Officer Number{i}", Role="undercover") for i in range(25)]
    rows += [case_row(f"W-{i}", f"Witness Number{i}", Role="witness") for i in range(5)]
    result = cli_with_store("import", "cases", str(write_csv(tmp_path / "c.csv", CASE_HEADER, rows)))
    assert result.exit_code == 0, result.stderr
    assert not REFERENCE.search(result.stdout)
    assert "protected-witness 5" in result.stdout and "undercover-officer 25" in result.stdout
    assert "tracekit role list" in result.stdout
    # The same people again under new external ids (linked by name and date of birth) are
    # about marked people, so their rows count as sensitive.
    rows = [case_row(f"D-{i}", f"Dated Officer{i}", Date_of_birth="01/01/1980", Role="undercover") for i in range(3)]
    assert cli_with_store("import", "cases", str(write_csv(tmp_path / "d.csv", CASE_HEADER, rows))).exit_code == 0
    again = [
        case_row(f"E-{i}", f"Dated Officer{i}", Date_of_birth="01/01/1980", Specimen_date="21/10/2020")
        for i in range(3)
    ]
    document = json.loads(
        cli_with_store("import", "cases", str(write_csv(tmp_path / "e.csv", CASE_HEADER, again)), "--json").stdout
    )
    assert document["rows"]["imported"] == 3 and document["rows"]["linked"] == 3
    assert document["rows"]["marked_sensitive"] == 0 and document["rows"]["sensitive"] == 3


# ------------------------------------------------- item 13: outside the infectious period


def test_contacts_outside_the_infectious_period_are_listed_by_line(store, tmp_path):
    import_standard_cases(store, tmp_path)
    case_ref = store.conn.execute(
        "SELECT c.ref FROM cases c JOIN external_ids x ON x.record_id = c.id AND x.kind = 'case' "
        "WHERE x.external_id = 'LAB-1'"
    ).fetchone()[0]
    rows = [
        contact_row("K-1", "LAB-1", "Dora", "Quill"),
        contact_row("K-2", "LAB-1", "Eli", "Marsh", Date_of_last_contact="01/10/2020"),
    ]
    summary = run(store, "contacts", write_csv(tmp_path / "k.csv", CONTACT_HEADER, rows))
    assert summary.outside_infectious_period == 1
    assert summary.to_json()["outside_infectious_period_lines"] == [{"line": 3, "case": case_ref}]


def test_the_outside_warning_names_the_lines(cli_with_store, tmp_path):
    cases = write_csv(tmp_path / "c.csv", CASE_HEADER, [case_row("LAB-1", "Ada Lovelock")])
    assert cli_with_store("import", "cases", str(cases)).exit_code == 0
    rows = [contact_row("K-1", "LAB-1", "Eli", "Marsh", Date_of_last_contact="01/10/2020")]
    result = cli_with_store("import", "contacts", str(write_csv(tmp_path / "k.csv", CONTACT_HEADER, rows)))
    assert result.exit_code == 0, result.stderr
    assert re.search(r"outside their case's infectious period.*line 2 \(C-", " ".join(result.stderr.split()))


# ------------------------------------------------------- item 14: fix and retry


def _read_rejects(path):
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def test_the_fix_and_retry_loop(cli_with_store, tmp_path, store_path):
    source = write_csv(
        tmp_path / "c.csv",
        CASE_HEADER,
        [
            case_row("OK-1", "Ada Lovelock"),
            case_row("S-1", "Perdita Vane", Role="undercover", Specimen_date="soon"),
            case_row("B-1", "Basil Fenwick", Mobile="12"),
        ],
    )
    rejects = tmp_path / "rejects.csv"
    first = cli_with_store("import", "cases", str(source), "--skip-invalid", "--rejects", str(rejects))
    assert first.exit_code == 0, first.stderr
    assert rejects.read_bytes().startswith(b"\xef\xbb\xbf")  # as the input
    lines = _read_rejects(rejects)
    withheld, ordinary = lines[1], lines[2]
    assert withheld[:-1] == [""] * len(CASE_HEADER) and "fix line 3 of c.csv itself" in withheld[-1]
    assert "importing this file skips this line" in withheld[-1]
    # Running the same command again, as advised, replaces tracekit's own rejects file.
    again = cli_with_store("import", "cases", str(source), "--skip-invalid", "--rejects", str(rejects))
    assert again.exit_code == 0, again.stderr
    assert _read_rejects(rejects) == lines
    # Fix the ordinary row in the rejects file and import it, strictly: the withheld line is skipped.
    ordinary[CASE_HEADER.index("Mobile")] = "07700 900150"
    write_csv(rejects, lines[0], [withheld, ordinary])
    fixed = cli_with_store("import", "cases", str(rejects), "--json")
    assert fixed.exit_code == 0, fixed.stderr
    document = json.loads(fixed.stdout)
    assert document["rows"]["imported"] == 1 and document["rows"]["withheld_skipped"] == 1
    # The withheld row is fixed in the source file, and the source imported again.
    write_csv(
        source,
        CASE_HEADER,
        [
            case_row("OK-1", "Ada Lovelock"),
            case_row("S-1", "Perdita Vane", Role="undercover"),
            case_row("B-1", "Basil Fenwick", Mobile="12"),
        ],
    )
    last = cli_with_store("import", "cases", str(source), "--skip-invalid", "--rejects", str(rejects), "--json")
    assert last.exit_code == 0, last.stderr
    rows = json.loads(last.stdout)["rows"]
    assert rows["imported"] == 1 and rows["unchanged"] == 2 and rows["invalid"] == 0  # B-1 went in fixed
    assert _read_rejects(rejects) == [lines[0]]  # nothing is left to fix: the old rejects are gone


def test_rejects_never_replaces_a_file_tracekit_did_not_write(cli_with_store, tmp_path):
    source = write_csv(tmp_path / "c.csv", CASE_HEADER, [case_row("B-1", "Basil Fenwick", Mobile="12")])
    mine = tmp_path / "mine.csv"
    mine.write_text("name,notes\nsomething,of mine\n", encoding="utf-8")
    result = cli_with_store("import", "cases", str(source), "--skip-invalid", "--rejects", str(mine))
    assert result.exit_code == ExitCode.STORE_EXISTS
    assert "not a rejects file tracekit wrote" in result.stderr
    assert mine.read_text(encoding="utf-8") == "name,notes\nsomething,of mine\n"


def test_json_lines_rejects_round_trip_skips_withheld_lines(store, tmp_path):
    from tests.importers.helpers import write_jsonl

    source = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {
                "external_id": "S-1",
                "name": "Perdita Vane",
                "role": "undercover",
                "test_date": "soon",
                "asymptomatic": "yes",
            },
            {
                "external_id": "B-1",
                "name": "Basil Fenwick",
                "phone": "12",
                "test_date": "2020-10-20",
                "asymptomatic": "yes",
            },
        ],
    )
    rejects = tmp_path / "r.jsonl"
    run(store, "cases", source, skip_invalid=True, rejects=rejects)
    withheld, ordinary = (json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines())
    assert list(withheld) == ["import_error"] and "fix line 1 of c.jsonl itself" in withheld["import_error"]
    ordinary["phone"] = "07700 900150"
    rejects.write_text(json.dumps(withheld) + "\n" + json.dumps(ordinary) + "\n", encoding="utf-8")
    summary = run(store, "cases", rejects)
    assert summary.imported == 1 and summary.withheld_skipped == 1 and summary.invalid == 0
    link = tmp_path / "link.jsonl"
    link.symlink_to(rejects)
    with pytest.raises(StoreExists):  # a symbolic link is never followed, even to a rejects file
        run(store, "cases", source, skip_invalid=True, rejects=link)
