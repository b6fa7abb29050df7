"""The rejects file of `--skip-bad`: each bad row as it was read, with its file, line and reason."""

from __future__ import annotations

import csv
from pathlib import Path

from imports.run import Rejected


def write_rejects(path: Path, rejected: list[Rejected]) -> None:
    """CSV in UTF-8 with a BOM (Excel opens it right): 文件 file, 行 line, 原因 error, then the
    row's own columns."""
    columns: list[str] = []
    for row in rejected:
        columns += [c for c in row.cells if c not in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "line", "error", *columns])
        for row in rejected:
            writer.writerow(
                [row.where, row.line, row.reason, *(row.cells.get(c, "") for c in columns)]
            )
