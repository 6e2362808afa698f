"""Policies, the pure redact function, CSV cells, the leak guard (statistics: test_statistics_differencing.py)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekit.errors import LeakBlocked, PolicyError
from tracekit.records.models import Person
from tracekit.redaction.apply import CsvLayout, csv_cell, redact
from tracekit.redaction.guard import LeakGuard
from tracekit.redaction.policy import BUILT_IN, get_policy, parse_policy
from tracekit.redaction.pseudonym import make_pseudonymiser, pseudonym

ORDINARY_CONTACT = {
    "ref": "E-AAAAAA",
    "case": "C-BBBBBB",
    "person": "P-CCCCCC",
    "name": "Olwen Ordinary",
    "name_key": "olwen ordinary",
    "date_of_birth": "1990-01-01",
    "nhs_number": "9990000018",
    "phone": "+447700900100",
    "email": None,
    "address": None,
    "postcode": "SW1A 1AA",
    "last_exposure": "2020-10-01",
    "setting": "household",
    "proximity_m": None,
    "duration_min": None,
    "face_to_face": False,
    "direct_contact": False,
    "close_contact": True,
    "clause": "household",
    "trace_status": "reached",
    "isolation_end": "2020-10-15",
    "ruleset": "england-2020-07-30",
    "notes": "gets home at 6",
    "updated_at": "2020-10-02T10:00:00+00:00",
    "self_role": None,
    "self_referral": None,
    "case_role": None,
    "case_referral": None,
    "released": False,
}


def contact(**changes):
    return {**ORDINARY_CONTACT, **changes}


# -- policies ---------------------------------------------------------------------------


def test_built_in_policies_exist_with_stable_hashes():
    assert set(BUILT_IN) == {"central-handover", "vetted-team", "statistics"}
    assert get_policy("central-handover").sha256 == get_policy("central-handover").sha256
    assert len({p.sha256 for p in BUILT_IN.values()}) == 3
    assert "notes" not in BUILT_IN["central-handover"].fields["contact"]


def test_custom_policy_round_trip():
    policy = parse_policy(
        'name = "minimal"\nrecipient_roles = ["central-team"]\n[fields]\ncontact = ["ref", "last_exposure", "pseudonym"]\n'
    )
    assert policy.fields == {"contact": ("ref", "last_exposure", "pseudonym")}
    assert policy.scope == "standard"


@pytest.mark.parametrize(
    "text, message",
    [
        ("name = ", "not valid TOML"),
        ('name = "x"\n[fields]\ncontact = ["ref", "secret_field"]', "unknown field(s) secret_field"),
        ('name = "x"\n[fields]\nperson = ["ref"]', "unknown record type"),
        ('name = "x"\n[fields]\ncontact = ["name"]', "must include 'ref'"),
        ('name = "central-handover"\n[fields]\ncontact = ["ref"]', "built-in"),
        ('name = "x"\nscope = "sensitive"\n[fields]\ncontact = ["ref"]', "unknown key(s) scope"),
        ('name = "x"\nrecipient_roles = ["anyone"]\n[fields]\ncontact = ["ref"]', "recipient_roles"),
        ('name = "x"\nkind = "statistics"\nstatistics = ["by_name"]', "'statistics' must be"),
        ('name = "x"', "needs a [fields] table"),
        ('name = "x\\u001b[2J"\n[fields]\ncontact = ["ref"]', "'name' holds control characters"),
        ('name = "x\\u202e"\n[fields]\ncontact = ["ref"]', "'name' holds control characters"),
        ('name = "x"\ndescription = "a\\rb"\n[fields]\ncontact = ["ref"]', "'description' holds control characters"),
    ],
)
def test_invalid_custom_policies_name_the_problem(text, message):
    with pytest.raises(
        PolicyError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
    ):
        parse_policy(text, source="test.toml")


def test_unknown_policy_name():
    with pytest.raises(PolicyError, match="no policy named"):
        get_policy("everything")


# -- redaction ---------------------------------------------------------------------------


def test_ordinary_record_keeps_allowed_fields_only():
    out = redact("contact", contact(), BUILT_IN["central-handover"])
    assert out["name"] == "Olwen Ordinary" and out["phone"] == "+447700900100"
    assert "notes" not in out and "self_role" not in out and "name_key" not in out
    assert out["withheld"] is False


def test_marked_contact_becomes_a_stub_with_markers():
    out = redact("contact", contact(self_role="victim", self_referral="R-DDDDDD"), BUILT_IN["central-handover"])
    marker = {"withheld": "sensitive-role", "referral": "R-DDDDDD"}
    assert out["name"] == marker and out["phone"] == marker and out["setting"] == marker
    assert out["last_exposure"] == "2020-10-01" and out["ref"].startswith("W-") and out["ref"] != "E-AAAAAA"
    assert out["withheld"] == "sensitive-role" and out["referral"] == "R-DDDDDD"
    assert "role" not in out  # the built-in central policy does not carry the role category
    assert "Olwen" not in repr(out) and "7700900100" not in repr(out)


def test_contact_of_marked_case_is_withheld_by_association():
    out = redact("contact", contact(case_role="undercover-officer", case_referral=None), BUILT_IN["central-handover"])
    assert out["withheld"] == "sensitive-by-association"
    assert out["name"] == {"withheld": "sensitive-by-association", "referral": None}


def test_released_contact_is_shown_but_its_case_is_not():
    out = redact("contact", contact(case_role="undercover-officer", released=True), BUILT_IN["central-handover"])
    assert out["name"] == "Olwen Ordinary"
    assert out["case"] == {"withheld": "sensitive-role", "referral": None}


def test_vetted_scope_carries_only_sensitive_records_in_full():
    vetted = BUILT_IN["vetted-team"]
    assert redact("contact", contact(), vetted) is None
    out = redact("contact", contact(self_role="victim"), vetted)
    assert out["name"] == "Olwen Ordinary" and out["notes"] == "gets home at 6" and out["role"] == "victim"


def test_custom_policy_cannot_unmask_sensitive_records():
    greedy = parse_policy(
        'name = "greedy"\nrole_category = true\n[fields]\ncontact = '
        + repr(list(BUILT_IN["vetted-team"].fields["contact"])).replace("'", '"')
    )
    out = redact("contact", contact(self_role="protected-witness"), greedy)
    assert "Olwen" not in repr(out) and out["notes"] == {"withheld": "sensitive-role", "referral": None}
    assert out["role"] == "protected-witness"  # only because this policy allows the category


def test_pseudonyms_are_keyed_and_stable():
    key = b"k" * 32
    pseudonymise = make_pseudonymiser(key)
    assert pseudonymise(contact()) == pseudonymise(contact(name="Someone Else"))  # NHS number decides
    assert pseudonymise(contact()) != make_pseudonymiser(b"x" * 32)(contact())
    assert pseudonymise(contact(nhs_number=None)) == pseudonym(key, "nd:olwen ordinary|1990-01-01")
    assert pseudonymise(contact()).startswith("PS-") and "9990000018" not in pseudonymise(contact())


@pytest.mark.parametrize(
    "value, cell",
    [
        ("=SUM(A1)", "'=SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("\tx", "'\tx"),
        ("\r=1", "'\r=1"),
        (" =1+1", "' =1+1"),
        ("\uff1dSUM(A1)", "'\uff1dSUM(A1)"),
        ("+", "'+"),
        ("+44 7700", "'+44 7700"),
        ("-1e5", "'-1e5"),
        ("- note", "'- note"),
        ("plain", "plain"),
        (" leading space", " leading space"),
        ("'quoted", "'quoted"),
        # a cell that is only a number is read as that number, never a formula: no prefix
        ("+447700900100", "+447700900100"),
        ("-2", "-2"),
        ("+1.5", "+1.5"),
        ("07700900100", "07700900100"),
        (None, ""),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (1.5, "1.5"),
        (190.0, "190"),
        (-0.0, "0"),
        ({"withheld": "sensitive-role", "referral": "R-1"}, ""),
    ],
)
def test_csv_cells_neutralise_formulas_but_not_numbers(value, cell):
    assert csv_cell(value) == cell


cell_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.sampled_from(["=1+1", "+44", "-", "@x", "\tx", "\rx", "\nx", "", "'", " =x", " x", "+447700900100", "-2"]),
    st.builds(
        lambda r, ref: {"withheld": r, "referral": ref},
        st.sampled_from(["sensitive-role", "sensitive-by-association"]),
        st.one_of(st.none(), st.just("R-7K2M9Q")),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(cell_values, min_size=1, max_size=8), st.sampled_from([False, "sensitive-role"]))
def test_csv_row_writes_what_csv_cell_writes(values, reason):
    """CsvLayout.row decides common cells inline; the CSV text must be the same as cell by
    cell, with the withheld status in its three columns and every marker's field named."""
    import csv
    import io

    columns = [f"c{i}" for i in range(len(values))]
    record = {**dict(zip(columns, values)), "withheld": reason}
    layout = CsvLayout([*columns, "missing", "withheld"])
    assert layout.header == [*columns, "missing", "withheld", "withheld_reason", "withheld_fields"]

    def written(row):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerow(row)
        return buffer.getvalue()

    markers = " ".join(c for c, v in zip(columns, values) if isinstance(v, dict))
    expected = [csv_cell(v) for v in values] + ["", "true" if reason else "false", reason or "", markers]
    assert written(layout.row(record)) == written(expected)


def test_csv_formula_cells_never_reach_a_spreadsheet_unprefixed():
    """Whatever the text, a written cell either is a plain number or cannot start a formula."""
    import re

    number = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=st.sampled_from(list("=+-@\t\r\n 019.aA'\uff1d\uff0b")), max_size=6))
    def check(text):
        cell = csv_cell(text)
        assert cell == text or cell == "'" + text
        assert number.fullmatch(cell) or cell.lstrip(" ")[:1] not in set("=+-@\t\r\n\uff1d\uff0b")

    check()


# -- the leak guard ----------------------------------------------------------------------


def guarded() -> LeakGuard:
    person = Person(
        id=1,
        ref="P-SECRET",
        name="Quintessa Zarkovian",
        date_of_birth=date(1981, 3, 14),
        nhs_number="9990000018",
        phone="+447700900321",
        email="q.z@example.org",
        postcode="SW1A 2AB",
    )
    return LeakGuard([person])


@pytest.mark.parametrize(
    "text",
    [
        "Quintessa Zarkovian",
        "quintessa  zarkovian",
        "ZARKOVIAN, Quintessa",
        "07700 900321",
        "07700900321",
        "+44 7700 900321",
        "447700900321",
        "999 000 0018",
        "9990000018",
        "Q.Z@example.org",
        "SW1A 2AB born 1981-03-14",
        "sw1a2ab 14/03/1981",
    ],
)
def test_guard_catches_common_written_forms(text):
    with pytest.raises(LeakBlocked, match="E-TEST1.*P-SECRET"):
        guarded().check(f'{{"ref": "E-TEST1", "x": "{text}"}}', "E-TEST1")


@pytest.mark.parametrize("text", ["Quintessa Smith", "07700 900322", "SW1A 2AB", "1981-03-14", "9990000026"])
def test_guard_lets_unrelated_values_through(text):
    guarded().check(text, "E-TEST1")


def test_guard_message_names_references_not_values():
    with pytest.raises(LeakBlocked) as info:
        guarded().check("Quintessa Zarkovian", "C-REC1")
    assert "Quintessa" not in str(info.value) and "C-REC1" in str(info.value)
