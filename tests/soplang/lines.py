"""Where a fragment sits in a file's text, so tests follow an edited shipped SOP instead of fixed numbers."""

from __future__ import annotations


def line_of(text: str, fragment: str) -> int:
    """The 1-based number of the first line of `text` containing `fragment`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            return number
    raise AssertionError(f"no line contains {fragment!r}")
