"""Record references: generation, canonical form and forgiving parsing."""

from __future__ import annotations

import re
import secrets

import pytest

from tracekit.domain.refs import REF_ALPHABET, REF_CODE_LENGTH, RefKind, new_ref, parse_ref
from tracekit.errors import ValidationError

CANONICAL = re.compile(r"[CPER]-[0-9A-HJKMNP-TV-Z]{6}")


def test_alphabet_is_crockford_base32() -> None:
    assert len(REF_ALPHABET) == len(set(REF_ALPHABET)) == 32
    assert set(REF_ALPHABET) == set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") - set("ILOU")
    assert REF_CODE_LENGTH == 6


def test_kinds_and_prefixes() -> None:
    assert {kind.name: kind.value for kind in RefKind} == {
        "CASE": "C",
        "PERSON": "P",
        "EXPOSURE": "E",
        "REFERRAL": "R",
    }
    assert RefKind.PERSON.noun == "person"
    assert RefKind.PERSON.example == "P-7K2M9Q"


@pytest.mark.parametrize("kind", list(RefKind))
def test_new_refs_are_canonical_and_parse_to_themselves(kind: RefKind) -> None:
    for _ in range(200):
        ref = new_ref(kind)
        assert CANONICAL.fullmatch(ref)
        assert ref[0] == kind.value
        assert RefKind(ref[0]) is kind
        assert parse_ref(ref, kind) == ref


def test_new_refs_use_every_symbol_and_only_those() -> None:
    seen = "".join(new_ref(RefKind.CASE)[2:] for _ in range(3000))  # 18,000 symbols
    assert set(seen) == set(REF_ALPHABET)


def test_new_refs_draw_from_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []

    def choice(alphabet: str) -> str:
        drawn.append(alphabet)
        return "Z"

    monkeypatch.setattr(secrets, "choice", choice)
    assert new_ref(RefKind.REFERRAL) == "R-ZZZZZZ"
    assert drawn == [REF_ALPHABET] * 6


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("C-7K2M9Q", "C-7K2M9Q"),
        ("c-7k2m9q", "C-7K2M9Q"),
        ("C7K2M9Q", "C-7K2M9Q"),
        (" c 7k2 m9q ", "C-7K2M9Q"),
        ("C-7K2-M9Q", "C-7K2M9Q"),
        ("C\u20137K2M9Q", "C-7K2M9Q"),  # en dash, as pasted from a document
        ("C - 7K 2M 9Q", "C-7K2M9Q"),
        ("P-7K2M9O", "P-7K2M90"),  # O is read as zero
        ("E-0OIL1l", "E-001111"),  # O as 0; I, L and l as 1
        ("r-ioloio", "R-101010"),
    ],
)
def test_parsing_forgives_what_a_phone_call_gets_wrong(text: str, expected: str) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "C",
        "C-",
        "C-7K2M9",  # too short
        "C-7K2M9QQ",  # too long
        "7K2M9Q",  # no prefix
        "X-7K2M9Q",  # unknown kind
        "C-7K2M9U",  # U is not in the alphabet
        "C-7K2M9*",
        "C-7K2M9Q\x00",
        "C_7K2M9Q",
        "C-\uff17K2M9Q",  # full-width 7
        "C-7K2M9\u0131",  # dotless i, which upper-cases to I
        "\u0441-7K2M9Q",  # Cyrillic es, which looks like C
    ],
)
def test_malformed_references_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_ref(text)
    error = caught.value
    assert error.field == "reference"
    assert error.problem == "is not a valid reference"
    assert error.expected is not None and "C-7K2M9Q" in error.expected


def test_expected_kind_shapes_the_message() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_ref("garbage", RefKind.PERSON)
    assert caught.value.expected == "a reference like P-7K2M9Q"


def test_a_reference_of_another_kind_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_ref("p-7k2m9q", expected_kind=RefKind.CASE)
    error = caught.value
    assert error.problem == "is a person reference, not a case reference"
    assert error.expected == "a reference like C-7K2M9Q"
    assert parse_ref("p-7k2m9q", expected_kind=RefKind.PERSON) == "P-7K2M9Q"


def test_the_article_fits_the_kind() -> None:
    """Issue 14: "is an exposure reference", not "is a exposure reference"."""
    with pytest.raises(ValidationError) as caught:
        parse_ref("e-7k2m9q", expected_kind=RefKind.PERSON)
    assert caught.value.problem == "is an exposure reference, not a person reference"
    with pytest.raises(ValidationError) as caught:
        parse_ref("p-7k2m9q", expected_kind=RefKind.EXPOSURE)
    assert caught.value.problem == "is a person reference, not an exposure reference"
    with pytest.raises(ValidationError) as caught:
        parse_ref("garbage")
    assert "E for an exposure" in caught.value.expected
