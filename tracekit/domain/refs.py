"""Short record references that are easy to read out over the phone.

A reference such as ``C-7K2M9Q`` is a kind prefix, a dash and six characters of
Douglas Crockford's base32 alphabet (``0-9`` and ``A-Z`` without ``I``, ``L``, ``O``
and ``U``), so no two characters sound or look alike. References are random (drawn
with :mod:`secrets`), carry no personal data and never change for the life of the
record. Six characters give 32**6 (about a billion) codes: the store must still refuse
a duplicate and draw again.
"""

from __future__ import annotations

import secrets
from enum import Enum

from tracekit.errors import ValidationError

__all__ = ["REF_ALPHABET", "REF_CODE_LENGTH", "RefKind", "new_ref", "parse_ref"]

#: Crockford's base32 alphabet.
REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REF_CODE_LENGTH = 6
_EXAMPLE_CODE = "7K2M9Q"
#: What a caller may say or type for a character that is not in the alphabet, as
#: Crockford's decoding rules allow: O is 0, I and L are 1. (U stays invalid.)
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})
#: Spaces and the dashes people type or paste (hyphen, hyphen-minus, en and em dash,
#: minus sign) are ignored anywhere in a reference.
_IGNORED = str.maketrans("", "", " \t-\u2010\u2011\u2012\u2013\u2014\u2212")


class RefKind(Enum):
    """The kind of record a reference names; the value is the reference's prefix."""

    CASE = "C"
    PERSON = "P"
    EXPOSURE = "E"
    REFERRAL = "R"

    @property
    def noun(self) -> str:
        """The kind in words, for messages: ``"case"``, ``"person"``..."""
        return self.name.lower()

    @property
    def a_noun(self) -> str:
        """The kind in words with its article: ``"a case"``, ``"an exposure"``..."""
        return f"{'an' if self.noun[0] in 'aeiou' else 'a'} {self.noun}"

    @property
    def example(self) -> str:
        """An example reference of this kind, for messages: ``"P-7K2M9Q"``."""
        return f"{self.value}-{_EXAMPLE_CODE}"


def new_ref(kind: RefKind) -> str:
    """A new random reference of ``kind`` in its canonical form, e.g. ``"P-7K2M9Q"``."""
    code = "".join(secrets.choice(REF_ALPHABET) for _ in range(REF_CODE_LENGTH))
    return f"{kind.value}-{code}"


def _expected(kind: RefKind | None) -> str:
    if kind is not None:
        return f"a reference like {kind.example}"
    kinds = ", ".join(f"{k.value} for {k.a_noun}" for k in RefKind)
    return f"a reference like {RefKind.CASE.example} ({kinds})"


def parse_ref(text: str, expected_kind: RefKind | None = None) -> str:
    """Read a reference the way it may be typed during a call; return its canonical form.

    Forgiving where that is safe: case does not matter, spaces and dashes anywhere are
    ignored, and O is read as 0, I and L as 1. So ``"c 7k2m 9q"`` gives ``"C-7K2M9Q"``.
    When ``expected_kind`` is given, a reference of another kind is an error. The kind
    of any canonical reference is ``RefKind(ref[0])``. Errors (field ``reference``) do
    not repeat what was typed.
    """
    compact = text.translate(_IGNORED)
    # Checked before upper-casing, which maps some non-ASCII letters to ASCII ones.
    ascii_only = compact.isascii()
    compact = compact.upper()
    kind = next((k for k in RefKind if compact[:1] == k.value), None)
    code = compact[1:].translate(_READ_AS)
    if not ascii_only or kind is None or len(code) != REF_CODE_LENGTH or any(char not in REF_ALPHABET for char in code):
        raise ValidationError("reference", "is not a valid reference", expected=_expected(expected_kind))
    if expected_kind is not None and kind is not expected_kind:
        raise ValidationError(
            "reference",
            f"is {kind.a_noun} reference, not {expected_kind.a_noun} reference",
            expected=_expected(expected_kind),
        )
    return f"{kind.value}-{code}"
