"""Aggregate counts with small-number suppression: pure functions over counts.

Every count from 1 to 4 is shown as ``"<5"`` (primary suppression). Each table also has a
total; if exactly one cell of a table were suppressed, the total minus the visible cells
would give it away, so the smallest other visible cell is suppressed too (secondary
suppression), and a total of 1 to 4 is itself suppressed. Zero is shown as 0: an empty
cell reveals no one.
"""

from __future__ import annotations

from typing import Any

from tracekit.redaction.policy import SUPPRESSION_THRESHOLD

SUPPRESSED = "<5"


def _primary(count: int) -> bool:
    return 0 < count < SUPPRESSION_THRESHOLD


def _determined(hidden: list[tuple[int, bool]], hidden_sum: int) -> bool:
    """Whether a reader who knows the hidden cells' sum could pin any one of them down.

    Each hidden cell is known to lie in [1, 4] (primary) or [5, inf) (secondary); cell i
    is determined when its lowest and highest feasible values coincide.
    """
    inf = float("inf")
    bounds = [(1, SUPPRESSION_THRESHOLD - 1) if primary else (SUPPRESSION_THRESHOLD, inf) for _, primary in hidden]
    for i, (lo, hi) in enumerate(bounds):
        others_lo = sum(b[0] for j, b in enumerate(bounds) if j != i)
        others_hi = sum(b[1] for j, b in enumerate(bounds) if j != i)
        low = max(lo, hidden_sum - others_hi)
        high = min(hi, hidden_sum - others_lo)
        if low == high:
            return True
    return False


def suppress_table(counts: dict[str, int]) -> dict[str, Any]:
    """``{"rows": [{"value", "count"}], "total": n|"<5", "suppressed": {"primary", "secondary"}}``."""
    keys = sorted(counts)
    hidden = {k for k in keys if _primary(counts[k])}
    primary = len(hidden)
    total = sum(counts.values())
    total_hidden = _primary(total)
    secondary = 0
    while hidden and not total_hidden:
        cells = [(counts[k], k in hidden and _primary(counts[k])) for k in hidden]
        if not _determined(cells, sum(counts[k] for k in hidden)):
            break
        candidates = sorted((counts[k], k) for k in keys if k not in hidden and counts[k] > 0)
        if not candidates:
            total_hidden = True  # nothing left to hide behind: hide the total instead
            break
        hidden.add(candidates[0][1])
        secondary += 1
    rows = [{"value": k, "count": SUPPRESSED if k in hidden else counts[k]} for k in keys]
    return {
        "rows": rows,
        "total": SUPPRESSED if total_hidden else total,
        "suppressed": {"primary": primary, "secondary": secondary},
    }


def recoverable_cells(table: dict[str, Any]) -> list[str]:
    """Suppressed cells a reader could work out exactly from the visible cells and total.

    Used by tests (and usable by a recipient's own checks); mirrors :func:`_determined`
    with the reader's knowledge: visible counts, the total, and that a "<5" cell is 1 to 4
    unless it was hidden by secondary suppression (which a reader cannot tell apart, so
    this is the strict reading: every hidden cell is taken as 1 to 4 or 5 and over).
    """
    hidden = [r for r in table["rows"] if r["count"] == SUPPRESSED]
    if not hidden or table["total"] == SUPPRESSED:
        return []
    hidden_sum = table["total"] - sum(r["count"] for r in table["rows"] if r["count"] != SUPPRESSED)
    # A reader does not know which hidden cells are primary: each is 1 or more.
    if len(hidden) == 1:
        return [hidden[0]["value"]]
    if hidden_sum == len(hidden):
        return [r["value"] for r in hidden]  # all must be 1
    return []
