"""Argon2id key derivation: passphrase -> 32-byte SQLCipher raw key.

The parameters live in the store file's 16-byte header (see :mod:`tracekit.crypto.header`)
and the whole header is the Argon2 salt, so the parameters are bound into the key: a
header edited to ask for cheaper parameters derives a different key and the store does
not open. Parameters read from a file are bounded (:data:`MAX_MEMORY_LOG2`,
:data:`MAX_TIME_COST`, :data:`MAX_PARALLELISM`) so a tampered file cannot ask for
unbounded memory or time.

New stores get parameters calibrated on this machine to about half a second of unlock
time, never below RFC 9106's second recommended ("low-memory") profile: 64 MiB, t=3, p=4.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

KEY_BYTES = 32

#: RFC 9106 section 4, second recommended option: the floor for new stores.
FLOOR_MEMORY_LOG2 = 16  # 2**16 KiB = 64 MiB
FLOOR_TIME_COST = 3
FLOOR_PARALLELISM = 4

#: The largest memory calibration will choose (256 MiB); time cost rises after that.
CALIBRATION_MAX_MEMORY_LOG2 = 18

#: Upper bounds accepted when reading a header: refuse anything costlier.
MAX_MEMORY_LOG2 = 20  # 1 GiB
MAX_TIME_COST = 32
MAX_PARALLELISM = 16
#: Lower bounds accepted when reading a header (Argon2's own minimum is 8 KiB per lane).
MIN_MEMORY_LOG2 = 3

TARGET_UNLOCK_SECONDS = 0.5


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost parameters: memory ``2**memory_log2`` KiB, passes, lanes."""

    memory_log2: int
    time_cost: int
    parallelism: int

    @property
    def memory_kib(self) -> int:
        return 1 << self.memory_log2

    def within_bounds(self) -> bool:
        return (
            MIN_MEMORY_LOG2 <= self.memory_log2 <= MAX_MEMORY_LOG2
            and 1 <= self.time_cost <= MAX_TIME_COST
            and 1 <= self.parallelism <= MAX_PARALLELISM
            and self.memory_kib >= 8 * self.parallelism
        )

    def meets_floor(self) -> bool:
        return (
            self.memory_log2 >= FLOOR_MEMORY_LOG2
            and self.time_cost >= FLOOR_TIME_COST
            and self.parallelism >= FLOOR_PARALLELISM
        )

    def describe(self) -> str:
        mib = self.memory_kib / 1024
        size = f"{mib:g} MiB" if mib >= 1 else f"{self.memory_kib} KiB"
        return f"Argon2id m={size} t={self.time_cost} p={self.parallelism}"


FLOOR_PARAMS = KdfParams(FLOOR_MEMORY_LOG2, FLOOR_TIME_COST, FLOOR_PARALLELISM)


def derive_key(passphrase: bytes | bytearray, salt: bytes, params: KdfParams) -> bytearray:
    """Derive the 32-byte store key. The caller zeroes the result when done."""
    from argon2.low_level import Type, hash_secret_raw

    if not params.within_bounds():
        raise ValueError("KDF parameters out of bounds")
    raw = hash_secret_raw(
        bytes(passphrase),
        salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=KEY_BYTES,
        type=Type.ID,
    )
    return bytearray(raw)


def _time_once(params: KdfParams) -> float:
    start = time.perf_counter()
    derive_key(b"calibration passphrase", b"tracekit-calibrate", params)
    return time.perf_counter() - start


def calibrate(target_seconds: float = TARGET_UNLOCK_SECONDS) -> KdfParams:
    """Choose parameters that take about ``target_seconds`` here, never below the floor.

    Memory is raised first (it is what makes guessing on GPUs expensive), up to
    256 MiB, then the number of passes, up to :data:`MAX_TIME_COST`.
    """
    elapsed = _time_once(FLOOR_PARAMS)
    memory_log2 = FLOOR_MEMORY_LOG2
    # Cost grows about linearly with memory: double it while the estimate stays in budget.
    while memory_log2 < CALIBRATION_MAX_MEMORY_LOG2 and elapsed * 2 <= target_seconds:
        memory_log2 += 1
        elapsed *= 2
    time_cost = int(FLOOR_TIME_COST * target_seconds / elapsed) if elapsed > 0 else MAX_TIME_COST
    time_cost = max(FLOOR_TIME_COST, min(MAX_TIME_COST, time_cost))
    return KdfParams(memory_log2, time_cost, FLOOR_PARALLELISM)


def default_params() -> KdfParams:
    """Parameters for a new store or a passphrase change: calibrated on this machine.

    Tests replace this function (in-process) with cheap parameters; the shipped default
    is never weakened.
    """
    return calibrate()
