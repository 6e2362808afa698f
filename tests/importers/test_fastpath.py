"""The importer's hot-path helpers give exactly what the general functions give."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tracekit.domain import identifiers as ids
from tracekit.domain.refs import REF_ALPHABET, RefKind, parse_ref
from tracekit.errors import ValidationError
from tracekit.importers.fastpath import (
    draw_block_refs,
    draw_refs,
    name_and_key,
    printable_text,
    search_terms_for,
)
from tracekit.records.casebook import search_terms
from tracekit.records.inputs import EXPOSURE_VALIDATORS, PERSON_VALIDATORS

names = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
    st.text(max_size=60),
    st.sampled_from(["Zoë  O’Neill", "  ada\tlovelock ", "ﬁona", "A" * 201, "x\u202ey", "", "   "]),
)


def _general(text: str):
    try:
        return ("ok", ids.normalise_name(text), ids.name_key(text))
    except ValidationError as error:
        return ("error", error.field, error.problem)


def _fast(text: str):
    try:
        name, key = name_and_key(text)
        return ("ok", name, key)
    except ValidationError as error:
        return ("error", error.field, error.problem)


@given(names)
@example("Ada  Lovelock")
@example("O'Brien-Smith")
def test_name_and_key_equals_the_general_functions(text):
    assert _fast(text) == _general(text)


@given(
    names.filter(lambda t: bool(t.strip())),
    st.one_of(st.none(), st.sampled_from(["+447700900123", "+33123456789"])),
    st.one_of(st.none(), st.sampled_from(["9990000018"])),
    st.one_of(st.none(), st.sampled_from(["SW1A 1AA", "M14 5AB"])),
)
def test_search_terms_for_equals_search_terms(text, phone, nhs, postcode):
    try:
        name, key = name_and_key(text)
    except ValidationError:
        return
    values = {"name": name, "phone": phone, "nhs_number": nhs, "postcode": postcode}
    assert search_terms_for(key, phone, nhs, postcode) == search_terms(values)


@pytest.mark.parametrize(
    ("validator", "limit", "collapse"),
    [(PERSON_VALIDATORS["address"], 500, True), (EXPOSURE_VALIDATORS["notes"], 10_000, False)],
)
@given(text=st.one_of(st.text(max_size=80), st.sampled_from(["a\nb", "  x  y ", "tab\there", "y" * 600, "\x07bell"])))
def test_printable_text_equals_the_validator(validator, limit, collapse, text):
    fast = printable_text(validator, limit, collapse=collapse)

    def outcome(fn):
        try:
            return ("ok", fn(text))
        except ValidationError as error:
            return ("error", error.problem)

    assert outcome(fast) == outcome(validator)


def test_draw_refs_are_canonical_references_of_their_kind():
    for kind in (RefKind.PERSON, RefKind.CASE, RefKind.EXPOSURE):
        refs = draw_refs(kind, 500)
        assert len(refs) == 500
        assert all(parse_ref(r, kind) == r for r in refs)


def test_draw_refs_use_the_whole_alphabet_evenly():
    refs = draw_refs(RefKind.PERSON, 20_000)
    counts = Counter(ch for ref in refs for ch in ref[2:])
    assert set(counts) == set(REF_ALPHABET)
    expected = 20_000 * 6 / 32
    assert all(abs(n - expected) < 0.1 * expected for n in counts.values())
    assert len(set(refs)) > 19_990  # collisions are possible (about 2**30 codes), and rare


def test_draw_block_refs_share_a_random_block_and_draw_the_rest_evenly():
    refs = draw_block_refs(RefKind.EXPOSURE, 20_000)
    assert all(parse_ref(r, RefKind.EXPOSURE) == r for r in refs)
    assert len({r[2:4] for r in refs}) == 1
    counts = Counter(ch for ref in refs for ch in ref[4:])
    expected = 20_000 * 4 / 32
    assert set(counts) == set(REF_ALPHABET)
    assert all(abs(n - expected) < 0.1 * expected for n in counts.values())
    # Each batch its own block, from the CSPRNG (20 draws all alike: probability 2**-190).
    assert len({draw_block_refs(RefKind.PERSON, 1)[0][2:4] for _ in range(20)}) > 1
    assert {r[2:4] for r in draw_block_refs(RefKind.CASE, 50, "7K")} == {"7K"}
