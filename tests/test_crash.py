"""SIGKILL at random moments during export, passphrase change, referral and migration.

A few seeded trials per operation here; bench/crash_trials.py runs hundreds.
"""

from __future__ import annotations

import random

import pytest

from tests import crash
from tracekit.store import migrations as migrations_module


@pytest.mark.parametrize("operation", sorted(crash.TRIALS))
def test_killed_operation_leaves_a_consistent_store(operation, tmp_path):
    rng = random.Random(f"tracekit-{operation}")
    delays = [crash.random_delay(operation, rng) for _ in range(2)] + [30.0]  # the last one finishes
    states = []
    for number, delay in enumerate(delays):
        work = tmp_path / f"trial-{number}"
        work.mkdir()
        outcome = crash.TRIALS[operation](work, delay)
        assert outcome.problems == [], (operation, delay, outcome.problems)
        states.append(outcome.state)
    assert states[-1] == "after", "the uninterrupted run must complete"


def test_killed_migration_is_all_or_nothing(tmp_path):
    latest = len(migrations_module.MIGRATIONS)
    for number, delay in enumerate((0.3, 0.6, 0.9)):
        work = tmp_path / f"m{number}"
        work.mkdir()
        assert crash.migration_state_after_kill(work, delay) in (1, latest)
