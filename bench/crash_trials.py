"""Hundreds of SIGKILL trials: python bench/crash_trials.py [--trials N] [--only OP]

Each trial runs a real tracekit command in a child process, kills it with SIGKILL at a
random moment, then checks the store (see tests/crash.py). Prints counts per operation.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from common import machine  # noqa: E402

from tests import crash  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=100, help="trials per operation")
    parser.add_argument("--only", choices=sorted(crash.TRIALS))
    parser.add_argument("--seed", default="tracekit")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    failures = 0
    print(f"Machine: {machine()}")
    for operation in [args.only] if args.only else sorted(crash.TRIALS):
        counts: Counter[str] = Counter()
        started = time.perf_counter()
        for _ in range(args.trials):
            with tempfile.TemporaryDirectory() as tmp:
                outcome = crash.TRIALS[operation](Path(tmp), crash.random_delay(operation, rng))
            counts["finished" if outcome.finished else "killed"] += 1
            counts[f"state {outcome.state}"] += 1
            if outcome.problems:
                failures += 1
                counts["PROBLEM"] += 1
                print(f"  {operation} killed after {outcome.killed_after:.2f}s: {outcome.problems}")
        print(
            f"{operation}: {args.trials} trials in {time.perf_counter() - started:.0f} s: {dict(sorted(counts.items()))}"
        )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
