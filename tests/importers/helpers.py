"""Made-up people and files for the import tests.

Every identifier is reserved for tests: NHS numbers from 999 000 0000 upwards (valid
check digits), Ofcom's drama phone ranges, example.com addresses, made-up names.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

from tracekit.domain.identifiers import is_valid_nhs_number
from tracekit.importers import ImportOptions, import_file

TODAY = date(2020, 11, 1)
NHS = ("9990000018", "9990000026", "9990000034", "9990000042", "9990000050", "9990000069", "9990000077", "9990000085")
assert all(is_valid_nhs_number(n) for n in NHS)

CASE_HEADER = [
    "Case ID",
    "Full name",
    "Date of birth",
    "NHS number",
    "Mobile",
    "Postcode",
    "Occupation",
    "Role",
    "Specimen date",
    "Onset date",
    "Asymptomatic",
    "Notes",
]
CONTACT_HEADER = [
    "Contact ID",
    "Case ID",
    "First name",
    "Surname",
    "DOB",
    "NHS No",
    "Tel",
    "Email",
    "Address",
    "Postcode",
    "Occupation",
    "Role",
    "Date of last contact",
    "Setting",
    "Distance (m)",
    "Duration (min)",
    "Face to face",
    "Notes",
]


def spaced(nhs: str) -> str:
    return f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}"


def case_row(ext: str, name: str, **fields: str) -> list[str]:
    values = {
        "Case ID": ext,
        "Full name": name,
        "Specimen date": "20/10/2020",
        "Onset date": "18/10/2020",
        "Asymptomatic": "no",
        **{k.replace("_", " "): v for k, v in fields.items()},
    }
    return [values.get(h, "") for h in CASE_HEADER]


def contact_row(ext: str, case: str, first: str, last: str, **fields: str) -> list[str]:
    values = {
        "Contact ID": ext,
        "Case ID": case,
        "First name": first,
        "Surname": last,
        "Date of last contact": "19/10/2020",
        "Setting": "household",
        **{k.replace("_", " "): v for k, v in fields.items()},
    }
    return [values.get(h, "") for h in CONTACT_HEADER]


def csv_text(header: list[str], rows: list[list[str]], *, delimiter: str = ",", newline: str = "\r\n") -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_csv(path: Path, header: list[str], rows: list[list[str]], *, bom: bool = True, **kw: Any) -> Path:
    path.write_bytes((("\ufeff" if bom else "") + csv_text(header, rows, **kw)).encode("utf-8"))
    return path


def write_jsonl(path: Path, objects: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects), encoding="utf-8")
    return path


def run(store: Any, kind: str, path: Path | str, **options: Any):
    options.setdefault("today", TODAY)
    stdin = options.pop("stdin", None)
    return import_file(store, kind, path, ImportOptions(**options), stdin=stdin)


def count(store: Any, table: str) -> int:
    return store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


STANDARD_CASES = [
    case_row(
        "LAB-1",
        "Ada Lovelock",
        Date_of_birth="14/03/1985",
        NHS_number=spaced(NHS[0]),
        Mobile="07700 900101",
        Postcode="sw1a 1aa",
        Occupation="teacher",
    ),
    case_row("LAB-2", "Basil Fenwick", Date_of_birth="02/07/1990", Mobile="07700 900102", Occupation="nurse"),
    case_row("LAB-3", "Cressida Thorn", NHS_number=NHS[1], Onset_date="", Asymptomatic="yes"),
]


def import_standard_cases(store: Any, tmp_path: Path):
    return run(store, "cases", write_csv(tmp_path / "cases.csv", CASE_HEADER, STANDARD_CASES))
