"""A progress bar on stderr for long library calls that report ``progress(done, total)``.

Shown only at a terminal and without ``--quiet`` or ``--json``, so scripts and pipes see
nothing; it never carries record contents, only counts.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from tracekit.cli.context import err, settings

#: Seconds between redraws (the library may report after every batch).
MIN_INTERVAL = 0.2


@contextlib.contextmanager
def counting(label: str, unit: str) -> Iterator[Callable[[int, int], None] | None]:
    """Yield ``update(done, total)`` drawing "label [bar] done/total unit", or None when
    no bar should be drawn (the library then skips reporting)."""
    console = err()
    if settings().quiet or settings().json or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = progress.add_task(label, total=None)
    last = [0.0]

    def update(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] < MIN_INTERVAL and done < total:
            return
        last[0] = now
        progress.update(task, completed=done, total=total)

    with progress:
        yield update
