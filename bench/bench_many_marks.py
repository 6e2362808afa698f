"""The case book's views with thousands of marked people (an import marking a sensitive occupation).

    python bench/bench_many_marks.py [--marked 500 2000] [--runs 5]

For each count: a fresh store (floor KDF, in a temporary directory, deleted after) with that
many marked people, 3,000 others, 200 open cases and 2,000 contacts whose notes name a
person (most of them marked). Timed in process, each run on a Casebook that has just
forgotten its marks:

- reading the marked people (``marked_people``: one query and the former details);
- building the note scrubber (``IdentityMatcher`` of every marked person's written forms);
- building the protected identifier keys (``ProtectedKeys``);
- ``list_contacts(limit=100)`` from cold (the builds it needs included) and warm.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, summary, table, time_call

PASSPHRASE = "bench many marks passphrase"


def make_store(path: Path, marked: int) -> object:
    from tracekit.crypto.kdf import FLOOR_PARAMS
    from tracekit.store import create_store

    store = create_store(path, bytearray(PASSPHRASE.encode()), kdf=FLOOR_PARAMS)
    with store.transaction() as c:
        c.executemany(
            "INSERT INTO people(ref, name, name_key, phone, address, date_of_birth, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?)",
            [
                (
                    f"P-{i:06d}",
                    f"Person{i} Surname{i % 97}",
                    f"person{i} surname{i % 97}",
                    f"+4477009{i:05d}",
                    f"{i} High Street, Town",
                    "1980-01-01",
                    "2020-10-01",
                    "2020-10-01",
                )
                for i in range(marked + 3000)
            ],
        )
        c.executemany(
            "INSERT INTO person_roles(person_id, role, marked_at) VALUES (?, 'undercover-officer', '2020-10-01')",
            [(i,) for i in range(1, marked + 1)],
        )
        c.executemany(
            "INSERT INTO cases(ref, person_id, test_date, test_type, test_result, status, created_at, updated_at,"
            " ruleset_id, infectious_start, infectious_end, isolation_end) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    f"C-{j:06d}",
                    marked + 1 + j,
                    "2020-10-10",
                    "pcr",
                    "positive",
                    "open",
                    "2020-10-10",
                    "2020-10-10",
                    "uk-2020-10",
                    "2020-10-06",
                    "2020-10-20",
                    "2020-10-20",
                )
                for j in range(200)
            ],
        )
        c.executemany(
            "INSERT INTO exposures(ref, case_id, person_id, last_exposure, setting, trace_status, ruleset_id,"
            " close_contact, risk_rank, isolation_end, created_at, updated_at, face_to_face, direct_contact, notes)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    f"E-{k:06d}",
                    1 + k % 200,
                    marked + 300 + k,
                    "2020-10-09",
                    "household",
                    "not-yet-reached",
                    "uk-2020-10",
                    1,
                    1,
                    "2020-10-19",
                    "2020-10-10",
                    "2020-10-10",
                    0,
                    0,
                    f"met Person{k} at home",
                )
                for k in range(2000)
            ],
        )
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marked", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from tracekit.records import Casebook

    print(machine())
    for marked in args.marked:
        with tempfile.TemporaryDirectory() as tmp:
            store = make_store(Path(tmp) / "marks.store", marked)
            rows = measure(Casebook(store, today=date(2020, 10, 15)), args.runs)
            store.close()
        print(f"\n{marked} marked people (reading them included in each build):\n{table(rows)}")


def measure(book: Any, runs: int) -> list[tuple[str, dict[str, float]]]:
    def fresh() -> Any:
        book.forget_marks()
        return book._load_marks()

    def cold_list() -> object:
        book.forget_marks()
        return book.list_contacts(limit=100)

    return [
        ("read the marked people", summary(time_call(fresh, runs))),
        ("build the note scrubber", summary(time_call(lambda: fresh().scrubber, runs))),
        ("build the protected keys", summary(time_call(lambda: fresh().keys, runs))),
        ("list_contacts(limit=100), cold", summary(time_call(cold_list, runs))),
        ("list_contacts(limit=100), warm", summary(time_call(lambda: book.list_contacts(limit=100), runs))),
    ]


if __name__ == "__main__":
    main()
