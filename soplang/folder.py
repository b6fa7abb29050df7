"""The SOP files of a folder, and the check that spans them: every id used once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from soplang.problems import ParsedSop, Problem

README = "README.md"


def sop_files(dir_or_paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """The SOP files under a directory (recursively, README.md excluded) or in a list of paths."""
    items = [dir_or_paths] if isinstance(dir_or_paths, str | Path) else list(dir_or_paths)
    found: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found.extend(p for p in sorted(item.rglob("*.md")) if p.name != README)
        else:
            found.append(item)
    return found


def duplicate_id_problems(parsed: Iterable[ParsedSop]) -> Iterator[Problem]:
    """An error on each file whose `id` an earlier file already uses."""
    first: dict[str, ParsedSop] = {}
    for item in parsed:
        if item.spec is None:
            continue
        sop_id = item.spec.id
        if sop_id in first:
            other = first[sop_id]
            yield Problem(
                str(item.path),
                item.spec.line_of("id"),
                "error",
                f"id `{sop_id}` is already used by {other.path}:{other.spec.line_of('id') if other.spec else 1}; ids must be unique",
            )
        else:
            first[sop_id] = item
