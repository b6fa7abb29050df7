"""What an import refuses: a whole file (FileRefused) or one row (RowError), each in plain words."""

from __future__ import annotations


class FileRefused(Exception):
    """The file cannot be read at all (format, size, encoding, headers); `problems` are
    complete `file:line: error: …` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class RowError(ValueError):
    """One cell or row is wrong; the reader adds the file, line and column."""
