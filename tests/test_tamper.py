"""Tampering with the store file: every flipped byte is refused at opening or reported by check."""

from __future__ import annotations

from datetime import date

from tests.conftest import CHEAP_KDF
from tracekit.records import Casebook, PersonInput
from tracekit.store import create_store
from tracekit.store.tamper import sweep

PAGE = 4096
RESERVE = 80
PASSPHRASE = b"tamper test passphrase"


def structured_offsets(size: int) -> list[int]:
    """All header bytes, then in every page: first byte, middle, last data byte, IV, HMAC."""
    offsets = set(range(16))
    for start in range(0, size, PAGE):
        offsets.update(
            {
                start + (16 if start == 0 else 0),
                start + PAGE // 2,
                start + PAGE - RESERVE - 1,
                start + PAGE - RESERVE + 3,
                start + PAGE - 10,
            }
        )
    return sorted(o for o in offsets if o < size)


def test_every_sampled_flip_is_caught(tmp_path):
    path = tmp_path / "s.store"
    with create_store(path, bytearray(PASSPHRASE), kdf=CHEAP_KDF) as store:
        book = Casebook(store, today=date(2020, 11, 1))
        case = book.add_case(
            person=PersonInput(name="Tamper Test", phone="07700 900001"), test_date="2020-10-01", asymptomatic=True
        )
        book.add_contact(
            case.ref, person=PersonInput(name="Second Person"), last_exposure="2020-09-30", setting="household"
        )
    offsets = structured_offsets(path.stat().st_size)
    result = sweep(path, tmp_path / "work.store", offsets, PASSPHRASE)
    assert result.missed == [], f"undetected flips at offsets {result.missed[:20]}"
    assert result.flips == len(offsets) and result.refused >= 16  # every header byte refuses to open
