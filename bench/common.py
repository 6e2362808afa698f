"""Small helpers shared by the benchmarks: timing commands and printing tables."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence


def time_command(argv: Sequence[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    """Wall-clock seconds of ``runs`` runs of a command (after one warm-up run)."""
    full_env = {**os.environ, **(env or {})}
    subprocess.run(argv, env=full_env, capture_output=True, check=True)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=full_env, capture_output=True, check=True)
        samples.append(time.perf_counter() - start)
    return samples


def time_call(fn: Callable[[], object], runs: int) -> list[float]:
    fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "min_ms": ordered[0] * 1000,
        "max_ms": ordered[-1] * 1000,
        "runs": len(ordered),
    }


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"


def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    lines = ["| what | median ms | min ms | max ms | runs |", "|---|---:|---:|---:|---:|"]
    for label, s in rows:
        lines.append(f"| {label} | {s['median_ms']:.1f} | {s['min_ms']:.1f} | {s['max_ms']:.1f} | {int(s['runs'])} |")
    return "\n".join(lines)
