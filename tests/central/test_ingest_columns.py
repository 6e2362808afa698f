"""The column-at-a-time check of ordinary records (``_RecordTable.plain_rows``) against the
record-at-a-time one (``_RecordTable.row``): it must never accept what ``row`` refuses, and
must write exactly the cells ``row`` writes. No database needed."""

from __future__ import annotations

import copy
import math

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekit.central.ingest import _RecordTable, _Refused
from tracekit.redaction.policy import BUILT_IN

CASE = {
    "ref": "C-7K2M9Q",
    "person": "P-7K2M9Q",
    "pseudonym": "PS-" + "ab" * 12,
    "name": "Olwen Ordinary",
    "date_of_birth": "1980-03-04",
    "nhs_number": "9990000018",
    "phone": "+447700900401",
    "email": None,
    "address": "1 High Street",
    "postcode": "LS1 4AP",
    "test_date": "2020-10-20",
    "test_type": "pcr",
    "test_result": "positive",
    "symptom_onset": "2020-10-19",
    "asymptomatic": False,
    "status": "open",
    "infectious_start": "2020-10-17",
    "infectious_end": "2020-10-29",
    "isolation_end": "2020-10-30",
    "ruleset": "england-2020-05-28",
    "updated_at": "2020-10-30T09:00:00+00:00",
    "withheld": False,
}
CONTACT = {
    "ref": "E-7K2M9Q",
    "case": "C-7K2M9Q",
    "person": "P-8K2M9Q",
    "pseudonym": None,
    "name": "Ned Normal",
    "date_of_birth": None,
    "nhs_number": None,
    "phone": "07700 900324",
    "email": None,
    "address": None,
    "postcode": None,
    "last_exposure": "2020-10-19",
    "setting": "household",
    "proximity_m": 1.5,
    "duration_min": 20,
    "face_to_face": True,
    "direct_contact": False,
    "close_contact": True,
    "clause": "face-to-face-1m",
    "trace_status": "reached",
    "isolation_end": "2020-11-02",
    "ruleset": "england-2020-05-28",
    "updated_at": "2020-10-30T09:00:00.123456Z",
    "withheld": False,
}
BASE = {"case": CASE, "contact": CONTACT}
POLICY = BUILT_IN["central-handover"]

#: Values tracekit never writes where a checked value goes, and some it does.
ODD_VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    10**9,
    10**9 + 1,
    1.5,
    -0.5,
    1e9,
    1.0000001e9,
    math.inf,
    math.nan,
    "",
    "x",
    "pcr",
    "2020-02-30",
    "2020-10-20\n",
    "2020-10-20\nC-7K2M9Q",
    "C-7K2M9Q",
    "W-" + "A" * 16,
    "C-7K2M9Q\nC-7K2M9Q",
    "P-7K2M9Q",
    "PS-" + "0" * 24,
    "PS-" + "0" * 23 + "G",
    "E-7K2M9Q",
    "R-7K2M9Q",
    "2020-10-30T09:00:00+00:00",
    "tab\there",
    "back\\slash",
    {"withheld": "sensitive-role", "referral": None},
    {"withheld": "x"},
    [],
    ["2020-10-20"],
    {},
]


def _row_path(layout: _RecordTable, records: list[dict], first: int) -> list[str] | None:
    rows = []
    for number, record in enumerate(records, first):
        try:
            row, _ = layout.row(copy.deepcopy(record), ["1", str(number), "2"])
        except _Refused:
            return None
        rows.append("\t".join(row))
    return rows


def _check(record_type: str, records: list[dict]) -> list[str] | None:
    layout = _RecordTable(record_type, set(POLICY.fields[record_type]))
    records = [
        orjson.loads(orjson.dumps(r)) if not any(isinstance(v, float) and math.isnan(v) for v in r.values()) else r
        for r in records
    ]
    fast = layout.plain_rows([copy.deepcopy(r) for r in records], 7, "1", "2")
    slow = _row_path(layout, records, 7)
    if fast is not None:
        assert slow is not None, "the column check accepted a batch the record check refuses"
        assert fast == slow
    return fast


def test_ordinary_records_as_tracekit_writes_them_take_the_column_path_with_the_same_cells():
    for record_type, base in BASE.items():
        assert _check(record_type, [base, dict(base, ref=base["ref"][:-1] + "R"), dict(base, person=None)]) is not None


@settings(max_examples=300, deadline=None)
@given(
    record_type=st.sampled_from(["case", "contact"]),
    changes=st.lists(
        st.tuples(
            st.integers(0, 2),
            st.sampled_from(sorted(set(CASE) | set(CONTACT) | {"referral", "notes", "extra"})),
            st.sampled_from(range(len(ODD_VALUES))) | st.just(-1),
        ),
        max_size=4,
    ),
)
def test_the_column_path_never_accepts_what_the_record_path_refuses(record_type, changes):
    records = [dict(BASE[record_type]) for _ in range(3)]
    for which, name, value in changes:
        if value < 0:
            records[which].pop(name, None)
        else:
            records[which][name] = ODD_VALUES[value]
    _check(record_type, records)
