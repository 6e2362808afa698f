"""Every written form of a marked person's details is caught by the note scrubber, the
reason check and the leak guard alike (tracekit.records.identity: one definition)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracekit.bundle.writer import _guard_chunk
from tracekit.errors import LeakBlocked, ValidationError
from tracekit.records.identity import WITHHELD_IN_TEXT, IdentityMatcher, check_reason, search_terms
from tracekit.records.models import Person
from tracekit.redaction.guard import MAX_LISTED, LeakGuard

ZOE = Person(
    id=1,
    ref="P-ZOE",
    name="Zoë Ånström-Price",
    date_of_birth=date(1980, 3, 4),
    nhs_number="9992000007",
    phone="+447700900555",
    email="zoe.ap@example.org",
    address="12 Hidden Lane, Barton",
    postcode="SW1A 2AB",
)
JO = Person(id=2, ref="P-JO", name="Jo Wu", phone="+447700900111")
PEOPLE = [ZOE, JO]

# (text, whether the guard counts it alone in a bundle record)
ITEM_7_FORMS = [
    ("12 Hidden Lane", True),
    ("12 hidden ln", True),
    ("12 Hidden Lane, Barton", True),
    ("+44 (0)7700 900555", True),
    ("0044 7700 900555", True),
    ("07700-900-555", True),
    ("Zoe Anstrom Price", True),
    ("ANSTROM-PRICE, Zoe", True),
    ("Jo Wu", True),
    ("jo  wu", True),
    ("999.200.0007", True),
    ("ZOE.AP@EXAMPLE.ORG", True),
    ("4 March 1980", False),
    ("4th March 1980", False),
    ("March 4, 1980", False),
    ("04-03-1980", False),
    ("04.03.1980", False),
    ("1980-03-04", False),
    ("SW1A2AB", False),
]


@pytest.mark.parametrize("text, alone", ITEM_7_FORMS)
def test_the_scrubber_withholds_every_written_form(text, alone):
    scrubbed = IdentityMatcher(PEOPLE).scrub(f"note: {text} (seen)", WITHHELD_IN_TEXT)
    assert scrubbed == f"note: {WITHHELD_IN_TEXT} (seen)"


@pytest.mark.parametrize("text, alone", ITEM_7_FORMS)
def test_the_reason_check_refuses_every_written_form_without_echoing_it(text, alone):
    with pytest.raises(ValidationError) as info:
        check_reason(f"because {text}", PEOPLE)
    assert text not in str(info.value) and ("P-ZOE" in str(info.value) or "P-JO" in str(info.value))


@pytest.mark.parametrize("text, alone", ITEM_7_FORMS)
def test_the_guard_catches_every_written_form(text, alone):
    guard = LeakGuard(PEOPLE)
    assert bool(guard.hits(f'{{"ref":"E-1","notes":"{text}"}}')) is alone
    # a postcode or date of birth counts together with the other on the same record line
    assert guard.hits(f'{{"postcode":"sw1a 2ab","notes":"{text}","dob":"4/3/1980"}}')


@pytest.mark.parametrize(
    "text",
    [
        "Jo called back",
        "Wu",
        "14 March 1980",
        "4 March 1981",
        "112 Hidden Lane",
        "12 Hidden Road",
        "Hidden Lane",
        "07700 900556",
        "9992000008",
        "SW1A 2AC",
        "ann.b@example.org",
        "Joanne Wuster",
        "a routine call",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert IdentityMatcher(PEOPLE).scrub(text, WITHHELD_IN_TEXT) == text
    assert check_reason(text, PEOPLE) == text
    assert LeakGuard(PEOPLE).hits(text) == []


def test_a_reason_naming_the_address_is_refused_before_it_reaches_the_audit_log():
    with pytest.raises(ValidationError, match="P-ZOE.*address"):
        check_reason("lives at 12 Hidden Lane", [ZOE])


# -- properties ----------------------------------------------------------------------------

SEPARATORS = st.sampled_from([" ", "-", ".", "", "  ", " - ", "(", ")"])


@st.composite
def written_phone(draw, e164: str) -> str:
    national = e164[3:]
    prefix = draw(st.sampled_from(["0", "+44", "+44 (0)", "0044", "44", "+44(0)", "00440"]))
    digits = list(national)
    out = "".join(d + (draw(SEPARATORS) if draw(st.booleans()) else "") for d in digits[:-1]) + digits[-1]
    return prefix + draw(st.sampled_from(["", " "])) + out


@st.composite
def written_name(draw, person: Person) -> str:
    forename, surname = person.name.split(" ", 1)
    unaccented = {"Zoë": "Zoe", "Ånström-Price": "Anstrom Price"}
    forename = draw(st.sampled_from([forename, unaccented.get(forename, forename)]))
    surname = draw(st.sampled_from([surname, unaccented.get(surname, surname), surname.replace("-", "")]))
    forename, surname = (draw(st.sampled_from([s, s.upper(), s.lower()])) for s in (forename, surname))
    return draw(st.sampled_from([f"{forename} {surname}", f"{surname}, {forename}", f"{forename}  {surname}"]))


@st.composite
def written_detail(draw) -> tuple[str, bool]:
    person = draw(st.sampled_from(PEOPLE))
    dob = ZOE.date_of_birth
    kind = draw(st.sampled_from(["name", "phone", "nhs", "address", "dob"]))
    if kind == "name":
        return draw(written_name(person)), True
    if kind == "phone":
        return draw(written_phone(person.phone)), True
    if kind == "nhs":
        sep = draw(SEPARATORS)
        return sep.join(["999", "200", "0007"]), True
    if kind == "address":
        street = draw(st.sampled_from(["Hidden Lane", "hidden ln", "HIDDEN LN.", "Hidden-Lane"]))
        return f"12{draw(st.sampled_from([' ', ', ']))}{street}", True
    day = draw(st.sampled_from([f"{dob.day}", f"{dob.day:02d}"]))
    month = draw(st.sampled_from([f"{dob.month}", f"{dob.month:02d}"]))
    sep = draw(st.sampled_from("/-."))
    return draw(
        st.sampled_from(
            [
                f"{day}{sep}{month}{sep}{dob.year}",
                f"{dob.day} March {dob.year}",
                f"{dob.day}th Mar {dob.year}",
                f"March {dob.day}, {dob.year}",
            ]
        )
    ), False


@settings(max_examples=150, deadline=None)
@given(written_detail(), st.sampled_from(["", "seen at ", "(", "called: "]), st.sampled_from(["", " today", "!", ")"]))
def test_any_written_form_is_caught_by_all_three(detail, before, after):
    text, alone = detail
    note = before + text + after
    assert IdentityMatcher(PEOPLE).scrub(note, WITHHELD_IN_TEXT) == before + WITHHELD_IN_TEXT + after, note
    with pytest.raises(ValidationError):
        check_reason(note, PEOPLE)
    guard = LeakGuard(PEOPLE)
    assert bool(guard.hits(note)) is alone
    assert guard.hits(f"SW1A 2AB {note}" if not alone else note)


ORDINARY_WORDS = [
    "called",
    "back",
    "price",
    "isolating",
    "lane",
    "march",
    "road",
    "tested",
    "positive",
    "work",
    "school",
    "mother",
    "Joanne",
    "Wuhan",
    "Zoey",
    "Anstruther",
    "Ann",
    "12",
    "13",
    "1980",
    "Barton",
]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(ORDINARY_WORDS), min_size=1, max_size=8),
    st.lists(st.integers(1000, 9999), max_size=2),
)
def test_ordinary_notes_are_not_touched(words, numbers):
    """Common words (a surname that is a word, "price", is; it is not among them) and
    other people's numbers pass the scrubber, the reason check and the guard."""
    note = " ".join(words + [f"07700 90{n}" for n in numbers if str(n) not in ("0555", "0111")])
    assert IdentityMatcher(PEOPLE).scrub(note, WITHHELD_IN_TEXT) == note.replace("price", WITHHELD_IN_TEXT)
    if "price" not in words:
        assert check_reason(note, PEOPLE) == " ".join(note.split())
    assert LeakGuard(PEOPLE).hits(note) == []


# -- the guard lists every hit of an export ----------------------------------------------


def test_the_guard_lists_every_hit_in_one_run():
    guard = LeakGuard(PEOPLE)
    lines = [
        '{"ref":"E-1","notes":"nothing"}',
        '{"ref":"E-2","notes":"Zoe Anstrom Price"}',
        '{"ref":"E-3","notes":"call 0044 7700 900555 or Jo Wu"}',
        '{"ref":"E-4","notes":"12 Hidden Ln"}',
    ]
    _guard_chunk(guard, ("\n".join(lines) + "\n").encode(), ["E-1", "E-2", "E-3", "E-4"])
    with pytest.raises(LeakBlocked) as info:
        guard.raise_if_blocked()
    message = str(info.value)
    for expected in ("E-2: P-ZOE (name)", "E-3: P-ZOE (phone number)", "E-3: P-JO (name)", "E-4: P-ZOE (address)"):
        assert expected in message
    assert "E-1" not in message and "Hidden" not in message and "7700" not in message
    assert "handover-guide.md" in (info.value.hint or "")


def test_the_guard_bounds_its_list_and_counts_the_rest():
    guard = LeakGuard([JO])
    for index in range(MAX_LISTED + 5):
        guard.scan("Jo Wu", f"E-{index}")
    with pytest.raises(LeakBlocked, match="and 5 more"):
        guard.raise_if_blocked()
    assert len(guard.listed) == MAX_LISTED


def test_search_terms_carry_the_national_phone_form():
    assert (
        search_terms("zoe", "+447700900555", None, "SW1A 2AB")
        == "zoe | +447700900555 | 07700900555 | SW1A 2AB | SW1A2AB"
    )
