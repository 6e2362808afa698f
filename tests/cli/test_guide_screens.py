"""docs/guide-tracer.md shows its screens (`today` piped, at 80 and at 60 columns, and the
record pages, trees and lists of the story) exactly as tracekit prints them: the screens
are made again from the guide's story and compared with the guide."""

from __future__ import annotations

from pathlib import Path

from tests.cli import guide_screens


def test_the_guide_shows_its_screens_as_tracekit_prints_them(tmp_path: Path) -> None:
    shown = guide_screens.screens(tmp_path)
    guide = guide_screens.GUIDE.read_text(encoding="utf-8")
    assert set(shown) == set(guide_screens.SCREENS)
    for marker, text in shown.items():
        assert guide_screens.in_guide(guide, marker) == guide_screens.block(marker, text), (
            f"{marker} in docs/guide-tracer.md differs from what tracekit prints; "
            "rewrite it with: PYTHONPATH=. python -m tests.cli.guide_screens --write"
        )
    # and the screens are what they claim to be: no line padded with spaces, none wider
    # than the terminal they were taken on
    for marker, screen in guide_screens.SCREENS.items():
        lines = shown[marker].splitlines()
        assert all(line == line.rstrip() for line in lines), marker
        if screen.columns is not None:
            assert all(len(line) <= screen.columns for line in lines), marker
    for piped in ("today-wide", "case-show", "contact-list"):
        assert max(len(line) for line in shown[piped].splitlines()) > 80  # piped: not fitted to 80
