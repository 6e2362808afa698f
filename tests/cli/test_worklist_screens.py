"""docs/guide-tracer.md shows `today` piped, at 80 and at 60 columns exactly as it prints:
the screens are made again from the guide's story and compared with the guide."""

from __future__ import annotations

from pathlib import Path

from tests.cli import worklist_screens


def test_the_guide_shows_the_worklist_as_tracekit_prints_it(tmp_path: Path) -> None:
    shown = worklist_screens.screens(tmp_path)
    guide = worklist_screens.GUIDE.read_text(encoding="utf-8")
    for marker, text in shown.items():
        assert worklist_screens.in_guide(guide, marker) == worklist_screens.block(marker, text), (
            f"{marker} in docs/guide-tracer.md differs from what tracekit prints; "
            "rewrite it with: PYTHONPATH=. python -m tests.cli.worklist_screens --write"
        )
    # and the screens are what they claim to be
    for marker, width in worklist_screens.SCREENS.items():
        lines = shown[marker].splitlines()
        assert all(line == line.rstrip() for line in lines)
        if width is not None:
            assert all(len(line) <= width for line in lines)
    assert max(len(line) for line in shown["today-wide"].splitlines()) > 80  # piped: not fitted to 80
