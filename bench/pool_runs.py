"""Pool several bench_casebook.py runs: each target command's paired difference from the
fixed cost, over every round of every run, with a bootstrap 90% interval of the median.

    python bench/pool_runs.py bench/out/bench_casebook-1m-session10b.json ...

A single run's median wanders by tens of milliseconds on a shared or virtual machine;
pooling the rounds of several runs (each paired within its own round) is steadier.
"""

from __future__ import annotations

import json
import random
import statistics
import sys

FIXED = "store info, EMPTY store, same KDF (fixed cost)"
UNLOCKED = " [unlocked]"
TARGETS = ("case show", "person search", "today")


def main() -> None:
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for name in sys.argv[1:]:
        with open(name, encoding="utf-8") as f:
            run = json.load(f)
        for label, samples in run["cli_samples_s"].items():
            if not label.startswith(TARGETS):
                continue
            fixed = FIXED + (UNLOCKED if label.endswith(UNLOCKED) else "")
            wall.setdefault(label, []).extend((c - b) * 1000 for c, b in zip(samples, run["cli_samples_s"][fixed]))
            cpu.setdefault(label, []).extend(
                (c - b) * 1000 for c, b in zip(run["cli_cpu_samples_s"][label], run["cli_cpu_samples_s"][fixed])
            )
    rng = random.Random(1)

    def interval(values: list[float]) -> tuple[float, float]:
        medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(2000))
        return medians[100], medians[1899]

    print("| command | rounds | wall: median beyond, paired (90% CI) | CPU: median beyond, paired (90% CI) |")
    print("|---|---:|---:|---:|")
    for label, values in wall.items():
        low, high = interval(values)
        cpu_low, cpu_high = interval(cpu[label])
        print(
            f"| {label} | {len(values)} | {statistics.median(values):+.1f} ({low:+.0f} to {high:+.0f}) | "
            f"{statistics.median(cpu[label]):+.1f} ({cpu_low:+.0f} to {cpu_high:+.0f}) |"
        )


if __name__ == "__main__":
    main()
