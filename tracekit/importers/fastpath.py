"""Hot-path helpers of the importer, each proven equal to the function it stands for.

A bulk import runs these once or twice per row, where the general functions cost more
than the rest of the row's validation. Each helper takes a fast path for the common
case and falls back to the general function otherwise; tests/importers/test_fastpath.py
checks (with Hypothesis) that every result is the one the general function gives.
"""

from __future__ import annotations

import array
import secrets
from collections.abc import Callable

from tracekit.domain import identifiers as ids
from tracekit.domain.refs import REF_ALPHABET, REF_CODE_LENGTH, RefKind
from tracekit.records import identity

__all__ = ["draw_block_refs", "draw_refs", "name_and_key", "printable_text", "search_terms_for"]


def name_and_key(text: str) -> tuple[str, str]:
    """``(ids.normalise_name(text), ids.name_key(text))``.

    For printable ASCII (most names in practice) both are plain string operations:
    NFC and NFKD leave ASCII unchanged, it has no combining marks, format or control
    characters, no typographic apostrophes, and ``casefold`` is ``lower``.
    """
    if text.isascii() and text.isprintable():
        name = " ".join(text.split())
        if name and len(name) <= ids.NAME_MAX_LENGTH:
            return name, name.lower()
    name = ids.normalise_name(text)
    return name, ids.name_key(name)


def printable_text(validator: Callable[[str], str], max_length: int, *, collapse: bool) -> Callable[[str], str]:
    """``validator`` (an ``inputs._text`` check) with a fast path for printable text.

    Printable text has no control characters, so only the tidying and the length check
    remain (runs of whitespace become one space, or, for notes, only the ends are
    stripped). Anything else, and every error, goes to ``validator``.
    """

    def check(value: str) -> str:
        if value.__class__ is str and value.isprintable():
            text = " ".join(value.split()) if collapse else value.strip()
            if len(text) <= max_length:
                return text
        return validator(value)

    return check


#: ``casebook.search_terms`` for a person whose ``name_key`` is already known.
search_terms_for = identity.search_terms


assert len(REF_ALPHABET) == 32 and REF_CODE_LENGTH == 6, "draw_refs assumes 6 base32 characters (30 bits)"
#: Every pair of alphabet characters, indexed by 10 bits.
_PAIRS = [a + b for a in REF_ALPHABET for b in REF_ALPHABET]


def draw_refs(kind: RefKind, count: int) -> list[str]:
    """``count`` new references of ``kind``, as ``refs.new_ref`` draws them.

    The same form and distribution (each character uniform over the alphabet, from the
    operating system's CSPRNG via :mod:`secrets`), drawn 30 bits at a time from one
    ``token_bytes`` call instead of six ``secrets.choice`` calls per reference: about
    16 microseconds less per reference. Uniqueness is the caller's job, as with
    ``new_ref``.
    """
    words = array.array("I", secrets.token_bytes(4 * count))
    if words.itemsize != 4:  # pragma: no cover - every supported platform has 32-bit "I"
        words = array.array("L", secrets.token_bytes(words.itemsize * count))
    prefix = kind.value + "-"
    pairs = _PAIRS
    return [prefix + pairs[(w >> 20) & 1023] + pairs[(w >> 10) & 1023] + pairs[w & 1023] for w in words]


def draw_block_refs(kind: RefKind, count: int, block: str | None = None) -> list[str]:
    """``count`` new references of ``kind`` that share their first two characters, the
    ``block`` (drawn from the CSPRNG when not given); the other four characters of each
    are drawn as ``draw_refs`` draws them.

    A batch's references then land in one small region of the ``ref`` index (at a
    million records, the thousand or so references of one block, a few dozen pages)
    instead of a page each all over it: the index stays in the page cache and a batch
    re-encrypts a few pages, not thousands. Each reference keeps 30 bits from the CSPRNG
    (the block's 10 are shared by the batch); what that means for guessing them is in
    docs/security.md ("References").
    """
    if block is None:
        block = _PAIRS[secrets.randbelow(1024)]
    words = array.array("I", secrets.token_bytes(4 * count))
    if words.itemsize != 4:  # pragma: no cover - every supported platform has 32-bit "I"
        words = array.array("L", secrets.token_bytes(words.itemsize * count))
    prefix = kind.value + "-" + block
    pairs = _PAIRS
    return [prefix + pairs[(w >> 10) & 1023] + pairs[w & 1023] for w in words]
