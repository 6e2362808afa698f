"""CLI: tracekit import cases|contacts|template, exit codes, JSON, stdin, rejects."""

from __future__ import annotations

import json
import os
import stat

from tests.conftest import PASSPHRASE
from tests.importers.helpers import (
    CASE_HEADER,
    CONTACT_HEADER,
    STANDARD_CASES,
    case_row,
    contact_row,
    csv_text,
    write_csv,
)
from tracekit.errors import ExitCode
from tracekit.store import open_store


def _counts(store_path):
    with open_store(store_path, bytearray(PASSPHRASE.encode())) as store:
        return {
            t: store.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("cases", "exposures", "people")
        }


def test_import_cases_then_contacts(cli_with_store, tmp_path, store_path):
    cases = write_csv(tmp_path / "cases.csv", CASE_HEADER, STANDARD_CASES)
    result = cli_with_store("import", "cases", str(cases))
    assert result.exit_code == 0, result.stderr
    assert "rows read" in result.stdout and "imported" in result.stdout
    contacts = write_csv(tmp_path / "contacts.csv", CONTACT_HEADER, [contact_row("K-1", "LAB-1", "Dora", "Quill")])
    result = cli_with_store("import", "contacts", str(contacts), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] and document["rows"]["imported"] == 1 and document["kind"] == "contacts"
    assert _counts(store_path) == {"cases": 3, "exposures": 1, "people": 4}
    again = cli_with_store("import", "cases", str(cases))
    assert again.exit_code == 0 and "Nothing changed" in again.stdout


def test_invalid_rows_exit_11_and_list_each_problem(cli_with_store, tmp_path, store_path):
    path = write_csv(
        tmp_path / "c.csv",
        CASE_HEADER,
        [STANDARD_CASES[0], case_row("B-1", "Bad Phone", Mobile="12"), case_row("B-2", "")],
    )
    result = cli_with_store("import", "cases", str(path))
    assert result.exit_code == ExitCode.VALIDATION
    assert (
        "line 3, column 'Mobile': phone" in result.stderr
        and "line 4" in result.stderr
        and "name: is required" in result.stderr
    )
    assert "nothing was imported" in result.stderr
    assert _counts(store_path)["cases"] == 0
    as_json = cli_with_store("import", "cases", str(path), "--json")
    assert as_json.exit_code == ExitCode.VALIDATION
    document = json.loads(as_json.stdout)
    assert document["ok"] is False and document["rows"]["invalid"] == 2 and len(document["problems"]) == 2
    assert json.loads(as_json.stderr)["error"]["code"] == "validation"


def test_skip_invalid_with_rejects_file(cli_with_store, tmp_path, store_path):
    path = write_csv(tmp_path / "c.csv", CASE_HEADER, [STANDARD_CASES[0], case_row("B-1", "Bad Phone", Mobile="12")])
    rejects = tmp_path / "rejects.csv"
    result = cli_with_store("import", "cases", str(path), "--skip-invalid", "--rejects", str(rejects))
    assert result.exit_code == 0, result.stderr
    assert "invalid row(s) skipped" in result.stderr
    assert stat.S_IMODE(os.stat(rejects).st_mode) == 0o600
    assert _counts(store_path)["cases"] == 1


def test_dry_run(cli_with_store, tmp_path, store_path):
    path = write_csv(tmp_path / "c.csv", CASE_HEADER, STANDARD_CASES)
    result = cli_with_store("import", "cases", str(path), "--dry-run")
    assert result.exit_code == 0 and "Dry run: nothing was written" in result.stdout
    assert _counts(store_path)["cases"] == 0


def test_stdin_map_and_mapping_file(cli_with_store, tmp_path, store_path):
    text = csv_text(["Ref", "Who", "When", "No symptoms", "Ward"], [["R-1", "Ada Lovelock", "20/10/2020", "yes", "7"]])
    mapping = tmp_path / "map.toml"
    mapping.write_text('[columns]\n"Ref" = "external_id"\n"Who" = "name"\n"Ward" = "ignore"\n', encoding="utf-8")
    result = cli_with_store("import", "cases", "-", "--mapping", str(mapping), "--map", "When=test_date", input=text)
    assert result.exit_code == 0, result.stderr
    assert _counts(store_path)["cases"] == 1


def test_format_option(cli_with_store, tmp_path):
    path = tmp_path / "c.txt"
    path.write_text('{"external_id": "J", "name": "Ada", "test_date": "2020-10-20", "asymptomatic": "yes"}\n')
    assert cli_with_store("import", "cases", str(path), "--format", "jsonl").exit_code == 0
    forced = cli_with_store("import", "cases", str(path), "--format", "csv")
    assert forced.exit_code == ExitCode.VALIDATION  # read as CSV, the header has no usable columns
    assert cli_with_store("import", "cases", str(path), "--format", "xml").exit_code == ExitCode.USAGE


def test_template_round_trip(cli_with_store, tmp_path, store_path):
    printed = cli_with_store("import", "template", "cases")
    assert printed.exit_code == 0 and printed.stdout.startswith("external_id,")
    cases, contacts = tmp_path / "cases.csv", tmp_path / "contacts.csv"
    assert cli_with_store("import", "template", "cases", "--output", str(cases)).exit_code == 0
    assert cli_with_store("import", "template", "contacts", "-o", str(contacts)).exit_code == 0
    assert stat.S_IMODE(os.stat(cases).st_mode) == 0o600
    assert cli_with_store("import", "cases", str(cases)).exit_code == 0
    assert cli_with_store("import", "contacts", str(contacts)).exit_code == 0
    assert _counts(store_path) == {"cases": 1, "exposures": 1, "people": 2}
    assert cli_with_store("import", "template", "cases", "-o", str(cases)).exit_code == ExitCode.STORE_EXISTS
    assert cli_with_store("import", "template", "people").exit_code == ExitCode.USAGE


def test_sensitive_rows_never_shown(cli_with_store, tmp_path):
    path = write_csv(
        tmp_path / "c.csv",
        CASE_HEADER,
        [
            case_row("S-1", "Perpetua Quillfeather", Mobile="07700 900555", Role="undercover"),
            case_row("S-2", "Perpetua Quillfeather", Mobile="07700 900555", Role="undercover", Specimen_date="bad"),
        ],
    )
    for args in ((), ("--json",), ("--skip-invalid",)):
        result = cli_with_store("import", "cases", str(path), *args)
        for text in (result.stdout, result.stderr):
            assert "Quillfeather" not in text and "900555" not in text
    listed = cli_with_store("case", "list", "--json")
    assert "Quillfeather" not in listed.stdout


def test_audit_records_one_entry_per_import(cli_with_store, tmp_path):
    path = write_csv(tmp_path / "c.csv", CASE_HEADER, STANDARD_CASES)
    cli_with_store("import", "cases", str(path))
    shown = json.loads(cli_with_store("audit", "show", "--json").stdout)["items"]
    imports = [e for e in shown if e["action"] == "import.cases"]
    assert len(imports) == 1 and "c.csv" in imports[0]["reason"] and "3 imported" in imports[0]["reason"]
    assert cli_with_store("audit", "verify").exit_code == 0
