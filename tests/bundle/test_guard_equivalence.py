"""The leak guard's RE2 scan finds exactly what its Python rules find.

``reference_hits`` is the guard written plainly with Python's ``re``: for each person, each
of their written forms (tracekit.records.identity) searched in the folded text on its own;
postcode and date of birth checked line by line. Hypothesis builds protected people and
texts that mention them in many written forms: other case, Unicode case partners (Kelvin
sign, long s, dotless and dotted i), odd separators (tabs, no-break spaces, newlines,
commas), word characters glued on either side, numbers with spaces, dashes, brackets and
dots, and the awkward neighbours of a digit run. For every text the fast guard must give
the same hits, and its automata must flag exactly the kinds the Python rules find.
"""

from __future__ import annotations

import re
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracekit.records.identity import KIND_LABELS, fold, postcode_forms, python_pattern, written_forms
from tracekit.records.models import Person
from tracekit.redaction.guard import _GROUPS, PAIRED, Hit, LeakGuard


def reference_hits(people: list[Person], text: str) -> tuple[list[Hit], set[str]]:
    """Every (person, kind) found, and the groups of kinds found (as the automata group them)."""
    folded = fold(text)
    hits: set[Hit] = set()
    groups: set[str] = set()
    for person in people:
        for form in written_forms(person):
            if form.alone and re.search(python_pattern(form), folded):
                hits.add(Hit(person.ref, KIND_LABELS[form.kind]))
                groups.add(_GROUPS[form.kind])
        if person.postcode and person.date_of_birth:
            dates = [f for f in written_forms(person) if f.kind == "date_of_birth"]
            postcode = python_pattern(postcode_forms(person.postcode)[0])
            for line in folded.split("\n"):
                if re.search(postcode, line) and any(re.search(python_pattern(f), line) for f in dates):
                    hits.add(Hit(person.ref, PAIRED))
                    groups.add("paired")
    return sorted(hits), groups


STREETS = ["Hidden Lane", "St Mary's Road", "Ånström Avenue", "Quay Street"]
FORENAMES = ["Quintessa", "Ian", "Kit", "Ross", "José", "Zoë", "O'Neil", "Jean-Luc", "İlker", "Şule"]
SURNAMES = ["Zarkovian", "Kiss", "Strauß", "Müller", "Ó Briain", "Davis", "Lee", "d'Arcy"]
# Characters that Python's re.IGNORECASE treats as case partners of ASCII letters.
PARTNERS = {"k": ["K", "\u212a"], "s": ["S", "\u017f"], "i": ["I", "\u0130", "\u0131"]}
SEPARATORS = [" ", "  ", ",", ", ", " , ", "\t", "\n", "\xa0", "\u2003", "\r\n", "", "-", ".", "_"]
NEIGHBOURS = ["", " ", "x", "_", "1", "é", "\n", '"', ",", "'", "(", "+", "-", "."]


def person(index: int, forename: str, surname: str, dob: date | None, postcode: str | None) -> Person:
    return Person(
        id=index,
        ref=f"P-{index:06d}",
        name=f"{forename} {surname}",
        date_of_birth=dob,
        nhs_number=f"99900{index:04d}8",
        phone=f"+4477009{index:05d}",
        email=f"{forename[:1].lower()}.{surname.lower().replace(' ', '')}{index}@example.org",
        postcode=postcode,
        address=f"{index % 200 + 1} {STREETS[index % len(STREETS)]}, Barton",
    )


people_st = st.lists(
    st.builds(
        lambda i, f, s, d, p: (i, f, s, d, p),
        st.integers(0, 9999),
        st.sampled_from(FORENAMES),
        st.sampled_from(SURNAMES),
        st.one_of(st.none(), st.dates(date(1930, 1, 1), date(2020, 12, 31))),
        st.one_of(st.none(), st.sampled_from(["SW1A 2AB", "W1A 2AB", "KT1 1AA", "IS1 1SS"])),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda t: t[0],
)


@st.composite
def recase(draw, text: str) -> str:
    out = []
    for ch in text:
        choice = draw(st.integers(0, 3))
        if choice == 1:
            ch = ch.upper() if len(ch.upper()) == 1 else ch
        elif choice == 2:
            ch = ch.lower() if len(ch.lower()) == 1 else ch
        elif choice == 3 and ch.lower() in PARTNERS:
            ch = draw(st.sampled_from(PARTNERS[ch.lower()]))
        out.append(ch)
    return "".join(out)


@st.composite
def mention(draw, p: Person) -> str:
    """One written form of one of the person's details, possibly damaged."""
    kind = draw(
        st.sampled_from(
            ["name", "reversed", "surname", "email", "phone", "nhs", "postcode-dob", "dob", "address", "noise"]
        )
    )
    parts = p.name.split()
    sep = lambda: draw(st.sampled_from(SEPARATORS))  # noqa: E731
    if kind == "name":
        text = sep().join(draw(recase(part)) for part in parts)
    elif kind == "reversed":
        text = draw(recase(parts[-1])) + sep() + sep().join(draw(recase(part)) for part in parts[:-1])
    elif kind == "surname":
        text = draw(recase(parts[-1]))
    elif kind == "email":
        text = draw(recase(p.email or ""))
    elif kind in ("phone", "nhs"):
        national = (p.phone or "")[3:]
        digits = {
            "phone": draw(
                st.sampled_from([p.phone or "", "0" + national, national, "0044" + national, "+44(0)" + national])
            ),
            "nhs": p.nhs_number or "",
        }[kind]
        text = "".join(
            ch + (draw(st.sampled_from(["", "", " ", "-", "(", ")", ".", "/"])) if draw(st.booleans()) else "")
            for ch in digits
        )
        if draw(st.booleans()):
            text = (
                draw(st.sampled_from(["", "+", "1", "(", " ", "x", "٣"]))
                + text
                + draw(st.sampled_from(["", "1", " ", "x", ")", "٣"]))
            )
    elif kind in ("postcode-dob", "dob"):
        dob = p.date_of_birth or date(1999, 9, 9)
        form = draw(
            st.sampled_from(
                [
                    dob.isoformat(),
                    dob.strftime("%d/%m/%Y"),
                    f"{dob.day}/{dob.month}/{dob.year}",
                    dob.strftime("%d.%m.%Y"),
                    f"{dob.day}-{dob.month:02d}-{dob.year}",
                    f"{dob.day} {dob.strftime('%B')} {dob.year}",
                    f"{dob.day}th {dob.strftime('%b')} {dob.year}",
                    f"{dob.strftime('%B')} {dob.day}, {dob.year}",
                ]
            )
        )
        if kind == "dob":
            text = form
        else:
            postcode = draw(recase((p.postcode or "ZZ9 9ZZ").replace(" ", draw(st.sampled_from([" ", "", "  "])))))
            text = postcode + draw(st.sampled_from([" born ", ",", "\n", "\t"])) + form
    elif kind == "address":
        number, street = (p.address or "1 X Road").split(",")[0].split(" ", 1)
        street = street.replace("Road", draw(st.sampled_from(["Road", "Rd", "rd."]))).replace("Lane", "Ln")
        text = number + draw(st.sampled_from([" ", ", ", "  "])) + draw(recase(street))
    else:
        text = draw(st.text(alphabet="aeiouKkSsIıİ _,-.0123456789\n", max_size=12))
    return draw(st.sampled_from(NEIGHBOURS)) + text + draw(st.sampled_from(NEIGHBOURS))


@st.composite
def case(draw):
    specs = draw(people_st)
    people = [person(*spec) for spec in specs]
    pieces = draw(
        st.lists(st.one_of(st.sampled_from(people).flatmap(mention), st.sampled_from(NEIGHBOURS)), max_size=6)
    )
    return people, "".join(pieces)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case())
def test_fast_guard_finds_what_the_python_rules_find(example):
    people, text = example
    guard = LeakGuard(people)
    hits, groups = reference_hits(people, text)
    assert guard.flagged(text) == groups, text
    assert guard.hits(text) == hits, text


@pytest.mark.parametrize(
    "text, kind",
    [
        ("Zoë\u00a0DAVIS", "name"),
        ("ZOË davis", "name"),
        ("zoë,davis", "name"),
        ("Davis ,\tZoë", "name"),
        ("\u212ait Lee", "name"),
        ("Kit Lee", "name"),
        ("xZoë Davis", None),
        ("Zoë Davisx", None),
        ("Zoë_Davis", None),
        ("Zoe Davis", "name"),
        ("Zoe\u0308 Davis", "name"),
        ("Zoë-Davis", "name"),
        ("(07700) 900-321", "phone number"),
        ("+44 7700 900321", "phone number"),
        ("1 07700 900321", "phone number"),
        ("107700900321", None),
        ("077009003211", None),
        ("٣07700900321", None),
        ("+07700900321", "phone number"),
        ("+44 (0)7700 900321", "phone number"),
        ("0044 7700 900321", "phone number"),
        ("SW1A 2AB 1981-03-14", "postcode with date of birth"),
        ("sw1a2ab\t14/3/1981", "postcode with date of birth"),
        ("SW1A 2AB, 14th March 1981", "postcode with date of birth"),
        ("SW1A 2AB\n1981-03-14", None),
        ("W1A 2AB 1981-03-14", None),
        ("SW1A 2AB 1981-03-15", None),
        ("SW1A 2AB 4/3/1981", None),
        ("12 Hidden Lane", "address"),
        ("12, HIDDEN LN.", "address"),
        ("112 Hidden Lane", None),
        ("Hidden Lane", None),
    ],
)
def test_written_forms(text, kind):
    people = [
        Person(
            id=1,
            ref="P-1",
            name="Zoë Davis",
            phone="+447700900321",
            postcode="SW1A 2AB",
            date_of_birth=date(1981, 3, 14),
            address="12 Hidden Lane, Barton",
        ),
        Person(id=2, ref="P-2", name="Kit Lee"),
    ]
    hit = LeakGuard(people).find(text)
    assert (hit.kind if hit else None) == kind
    assert LeakGuard(people).hits(text) == reference_hits(people, text)[0]


def test_bytes_and_str_give_the_same_answer():
    people = [Person(id=1, ref="P-1", name="Zoë Davis", email="z.d@example.org")]
    guard = LeakGuard(people)
    for text in ("a ZOË DAVIS b", "Z.D@EXAMPLE.ORG", "nothing here"):
        assert guard.find(text) == guard.find(text.encode("utf-8"))


def test_many_people_scan_a_large_text_quickly():
    """The reason for RE2: 2,000 people over 2 MB took Python's engine minutes."""
    import time

    people = [
        Person(
            id=i,
            ref=f"P-{i}",
            name=f"Forename{i} Surname{i}",
            email=f"f{i}@example.org",
            phone=f"+4477009{i:05d}",
            nhs_number=f"99{i:08d}",
            postcode="SW1A 2AB",
            date_of_birth=date(1950, 1, 1),
        )
        for i in range(2000)
    ]
    guard = LeakGuard(people)
    line = '{"ref":"E-ABC123","name":"Ordinary Person","phone":"+447700123456","date_of_birth":"1950-01-01","postcode":"EC1A 1BB"}\n'
    text = (line * (2_000_000 // len(line))).encode()
    started = time.perf_counter()
    assert guard.find(text) is None
    assert time.perf_counter() - started < 20
