"""Argon2id parameters and the 16-byte header."""

from __future__ import annotations

import pytest

from tracekit.crypto import kdf
from tracekit.crypto.header import HEADER_BYTES, HeaderProblem, StoreHeader
from tracekit.crypto.kdf import FLOOR_PARAMS, KdfParams, calibrate, derive_key


def test_floor_is_rfc9106_low_memory_profile():
    assert FLOOR_PARAMS.memory_kib == 64 * 1024
    assert FLOOR_PARAMS.time_cost == 3
    assert FLOOR_PARAMS.parallelism == 4


@pytest.mark.parametrize("seconds_at_floor", [0.001, 0.05, 0.2, 0.5, 3.0])
def test_calibration_never_goes_below_the_floor(monkeypatch, seconds_at_floor):
    monkeypatch.setattr(kdf, "_time_once", lambda params: seconds_at_floor)
    params = calibrate()
    assert params.meets_floor()
    assert params.within_bounds()


def test_calibration_raises_memory_first_on_fast_machines(monkeypatch):
    monkeypatch.setattr(kdf, "_time_once", lambda params: 0.05)
    params = calibrate(0.5)
    assert params.memory_log2 == kdf.CALIBRATION_MAX_MEMORY_LOG2
    assert params.time_cost > 3


def test_calibration_on_slow_machine_keeps_the_floor(monkeypatch):
    monkeypatch.setattr(kdf, "_time_once", lambda params: 2.0)
    assert calibrate(0.5) == FLOOR_PARAMS


def test_shipped_default_is_real_calibration(monkeypatch):
    """conftest makes default_params cheap for speed; the shipped one calibrates."""
    monkeypatch.undo()  # drop the conftest replacement for this test
    assert kdf.default_params.__name__ == "default_params"
    monkeypatch.setattr(kdf, "_time_once", lambda params: 0.01)
    assert kdf.default_params() == calibrate()
    assert kdf.default_params().meets_floor()


def test_real_calibration_meets_floor_on_this_machine():
    params = calibrate(0.05)  # a small target keeps the test quick; the floor still holds
    assert params.meets_floor()


def test_derivation_is_deterministic_and_salted():
    cheap = KdfParams(10, 1, 1)
    a = derive_key(b"passphrase", b"0123456789abcdef", cheap)
    assert a == derive_key(b"passphrase", b"0123456789abcdef", cheap)
    assert a != derive_key(b"passphrase", b"0123456789abcdeg", cheap)
    assert a != derive_key(b"passphrasf", b"0123456789abcdef", cheap)
    assert len(a) == 32 and isinstance(a, bytearray)


def test_derivation_refuses_out_of_bounds_parameters():
    with pytest.raises(ValueError):
        derive_key(b"x", b"0123456789abcdef", KdfParams(25, 1, 1))


def test_header_round_trip():
    header = StoreHeader.new(KdfParams(17, 4, 4))
    data = header.to_bytes()
    assert len(data) == HEADER_BYTES
    assert data[:2] == b"TK"
    assert StoreHeader.parse(data) == header


@pytest.mark.parametrize(
    "data, kind",
    [
        (b"SQLite format 3\x00", "not-a-store"),
        (b"XX" + bytes(14), "not-a-store"),
        (b"TK", "not-a-store"),
        (b"TK\x02" + bytes(13), "too-new"),
        (b"TK\x00" + bytes(13), "damaged"),
        (b"TK\x01\x30\x01\x01" + bytes(10), "damaged"),  # 2**48 KiB
        (b"TK\x01\x10\x00\x01" + bytes(10), "damaged"),  # zero passes
        (b"TK\x01\x10\x03\x40" + bytes(10), "damaged"),  # 64 lanes
    ],
)
def test_header_problems(data, kind):
    with pytest.raises(HeaderProblem) as info:
        StoreHeader.parse(data)
    assert info.value.kind == kind
